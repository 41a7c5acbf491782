# Shared helpers for kvm-rs scripts (sourced).
# shellcheck shell=bash
KVMRS_ROOT=${KVMRS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
KVMRS_CACHE=${KVMRS_CACHE:-$HOME/.cache/kvm-rs}
BINDGEN=${BINDGEN:-$HOME/.cargo/bin/bindgen}
KRUSTC=${KRUSTC:-/usr/bin/rustc}
RUST_LIB_SRC=${RUST_LIB_SRC:-/usr/src/rustc-1.85.0/library}
KVER=6.12.117
KSRC_TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.12.tar.xz}

_t0=${_t0:-$(date +%s)}
step() { printf '==> [%4ss] %s\n' "$(($(date +%s) - _t0))" "$*"; }
ok() { printf '==> [%4ss] ok: %s\n' "$(($(date +%s) - _t0))" "$*"; }
die() { printf 'kvm-rs: error: %s\n' "$*" >&2; exit 1; }
