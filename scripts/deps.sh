#!/usr/bin/env bash
# Install everything kvm-rs needs on a Debian 12 (bookworm) machine.
# Idempotent: when everything is present it only checks and exits (~1 s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

RUST_PIN=1.85.0+dfsg3-1~deb12u3
BINDGEN_VERSION=0.69.5

SUDO=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || die "not root and sudo is missing: install the 'sudo' package or run as root"
	SUDO=sudo
fi

export DEBIAN_FRONTEND=noninteractive

# Packages from bookworm (main suite).
MAIN_PKGS=(
	build-essential flex bison bc cpio kmod libelf-dev libssl-dev python3
	clang lld llvm libclang-dev
	busybox-static
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross
	linux-source-6.12
	xz-utils git rsync
	python3-docutils
)
# Pinned Rust for the kernel build (6.12 does not build with 1.96).
RUST_PKGS=(
	"rustc-web=$RUST_PIN" "rust-web-src=$RUST_PIN"
	"libstd-rust-web-dev=$RUST_PIN" "libstd-rust-web-1.85=$RUST_PIN"
)
# QEMU must come from bookworm-backports: the installed qemu-utils is from there.
BPO_PKGS=(qemu-system-x86 qemu-system-arm)

missing_pkgs() {
	local p name want ver
	for p in "$@"; do
		name=${p%%=*}
		want=
		[ "$name" != "$p" ] && want=${p#*=}
		ver=$(dpkg-query -W -f='${Status} ${Version}\n' "$name" 2>/dev/null |
			awk '$3=="installed"{print $4}' || true)
		if [ -z "$ver" ] || { [ -n "$want" ] && [ "$ver" != "$want" ]; }; then
			echo "$p"
		fi
	done
}

apt_updated=0
apt_update() {
	[ $apt_updated = 1 ] && return 0
	step "apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed"
	apt_updated=1
}

apt_install() { # [apt options --] packages...
	local opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	[ $# -eq 0 ] && return 0
	apt_update
	step "apt-get install ${*}"
	if ! $SUDO apt-get install -y -qq --no-install-recommends --allow-downgrades --allow-change-held-packages "${opts[@]}" "$@" >/tmp/kvm-rs-apt.log 2>&1; then
		# Name the package that cannot be installed.
		local p
		for p in "$@"; do
			$SUDO apt-get install -s -y --allow-downgrades --allow-change-held-packages "${opts[@]}" "$p" >/dev/null 2>&1 ||
				die "cannot install Debian package '$p' (see /tmp/kvm-rs-apt.log)"
		done
		tail -20 /tmp/kvm-rs-apt.log >&2
		die "apt-get install failed for: $*"
	fi
}

# 1. The backports suite, derived from the machine's own Debian source entry.
ensure_backports() {
	if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		return 0
	fi
	local src=/etc/apt/sources.list.d/debian.sources uri key
	if [ -f "$src" ]; then
		uri=$(awk '/^URIs:/{u=$2} /^Suites:.*bookworm( |$)/{print u; exit}' "$src")
		key=$(awk '/^Signed-By:/{print $2; exit}' "$src")
	else
		uri=$(awk '$1=="deb" && $3=="bookworm"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
		key=/usr/share/keyrings/debian-archive-keyring.gpg
	fi
	[ -n "$uri" ] || die "no Debian bookworm entry in the apt sources: cannot add bookworm-backports"
	step "adding bookworm-backports ($uri)"
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
		"$uri" "${key:-/usr/share/keyrings/debian-archive-keyring.gpg}" |
		$SUDO tee /etc/apt/sources.list.d/kvm-rs-backports.sources >/dev/null
	apt_updated=0
}

ensure_backports
mapfile -t need < <(missing_pkgs "${MAIN_PKGS[@]}" "${RUST_PKGS[@]}")
[ ${#need[@]} -gt 0 ] && apt_install -- "${need[@]}"
mapfile -t need < <(missing_pkgs "${BPO_PKGS[@]}")
[ ${#need[@]} -gt 0 ] && apt_install -t bookworm-backports -- "${need[@]}"
# Keep apt from upgrading the kernel's Rust away from the pin.
$SUDO apt-mark hold rustc-web rust-web-src libstd-rust-web-dev libstd-rust-web-1.85 >/dev/null

# 2. The arm64 static busybox, from Debian's arm64 busybox-static package.
BB_ARM64=${KVMRS_CACHE}/busybox-arm64
if [ ! -x "$BB_ARM64" ]; then
	step "fetching arm64 busybox-static (private arm64 package list, system untouched)"
	alist=$KVMRS_CACHE/apt-arm64
	mkdir -p "$alist/lists/partial" "$alist/archives/partial"
	aopt=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
		-o Dir::State::Lists="$alist/lists" -o Dir::Cache::Archives="$alist/archives"
		-o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="")
	apt-get "${aopt[@]}" update -qq >/dev/null 2>&1 || die "cannot fetch the arm64 package list for 'busybox-static:arm64'"
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get "${aopt[@]}" download busybox-static:arm64 >/dev/null 2>&1) ||
		die "cannot download Debian package 'busybox-static:arm64'"
	dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$tmp/x"
	install -m755 "$tmp/x/bin/busybox" "$BB_ARM64"
	rm -rf "$tmp"
fi

# 3. bindgen (Debian's 0.60 is too old for 6.12).
if ! "$BINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	step "cargo install bindgen-cli $BINDGEN_VERSION"
	command -v cargo >/dev/null || die "cargo is missing: install a Rust toolchain (rustup) first"
	cargo install --locked --quiet "bindgen-cli@$BINDGEN_VERSION" ||
		die "cannot install crate 'bindgen-cli@$BINDGEN_VERSION'"
fi

# 4. The host crate's crates (proptest, loom, criterion), pinned by Cargo.lock.
if [ -f "$KVMRS_ROOT/rust/host/Cargo.toml" ]; then
	(cd "$KVMRS_ROOT/rust/host" && cargo fetch -q) || die "cargo fetch failed for rust/host (crates: see rust/host/Cargo.toml)"
fi
ok "dependencies present ($(/usr/bin/rustc --version), bindgen $("$BINDGEN" --version | awk '{print $2}'))"
