# kvm-rs: user-facing targets. See README.md.
SHELL := /bin/bash
ARCH ?= x86_64
DEBUG ?= 0
export ARCH DEBUG
KVMRS_CACHE ?= $(HOME)/.cache/kvm-rs
export KVMRS_CACHE
HOST_CARGO := cargo
HOST_DIR := rust/host
KRUSTC ?= /usr/bin/rustc
# Lints the kernel applies to Rust code (a subset that plain rustc knows).
KLINTS := -Dunsafe_op_in_unsafe_fn -Drust_2018_idioms -Dnon_ascii_idents \
	-Wmissing_docs -Dunreachable_pub -Dwarnings

.PHONY: all deps run check check-host check-core-1.85 vm-test bench bench-host \
	kernel module selftests initramfs fmt clean help

all: help
help:
	@echo "make deps | run [ARCH=x86_64|arm64] | check | check-host | vm-test ARCH=.. |"
	@echo "     bench [ARCH=..] | bench-host | kernel ARCH=.. [DEBUG=1] | fmt"

deps:
	@bash scripts/deps.sh

# --- host side --------------------------------------------------------------
check-core-1.85:
	@echo "==> core files with the kernel toolchain ($$($(KRUSTC) --version))"
	@$(KRUSTC) --edition=2021 --crate-type=lib --crate-name=kvm_rs_core_check \
		--emit=metadata -o /tmp/kvm_rs_core_check.rmeta $(KLINTS) \
		$(HOST_DIR)/core_check.rs

check-host: deps check-core-1.85
	@bash scripts/check-host.sh

bench-host: deps
	@bash scripts/bench-host.sh

fmt:
	rustfmt --config-path .rustfmt.toml rust/*.rs rust/core/*.rs $(HOST_DIR)/src/*.rs $(HOST_DIR)/tests/*.rs $(HOST_DIR)/benches/*.rs

# --- kernel and VMs -----------------------------------------------------------
kernel: deps
	@bash scripts/kernel.sh build

module: deps
	@bash scripts/kernel.sh module

selftests: kernel
	@bash scripts/selftests.sh

# The initramfs itself is assembled by scripts/vm.sh for each run.
initramfs: selftests
	@true

vm-test: initramfs
	@bash scripts/vm-test.sh

run: initramfs
	@bash scripts/vm.sh run

bench: deps
	@bash scripts/bench.sh

check: deps
	@bash scripts/check.sh

clean:
	rm -rf $(HOST_DIR)/target out
