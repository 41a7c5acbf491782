#!/usr/bin/env bash
# Static builds of the 6.12 KVM selftests and of kvm-rs's selftests/kvm/.
# Output: $KVMRS_CACHE/selftests-<arch>/ (skipped when nothing changed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
ARCH=${ARCH:-x86_64}
[ "$ARCH" = aarch64 ] && ARCH=arm64
O=$(bash "$here/kernel.sh" print-dir)
KSRC=${KVMRS_KSRC:-$KVMRS_CACHE/linux}
OUT=$KVMRS_CACHE/selftests-$ARCH
KST=$KSRC/tools/testing/selftests/kvm
[ -d "$O/usr/include" ] || die "no installed headers in $O/usr/include: run 'make kernel ARCH=$ARCH' first"

case $ARCH in
x86_64) mk=(ARCH=x86_64) ;;
arm64) mk=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
	command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc missing: install Debian package 'gcc-aarch64-linux-gnu' (make deps)" ;;
esac

key="$(cd "$KSRC" && git rev-parse HEAD 2>/dev/null || echo ext) $(cat "$O/.kvmrs-built" 2>/dev/null | cut -d' ' -f1) $(cd "$KVMRS_ROOT" && find selftests/kvm -type f | sort | xargs cat | sha256sum | cut -c1-16)"
if [ -f "$OUT/.kvmrs-key" ] && [ "$(cat "$OUT/.kvmrs-key")" = "$key" ]; then
	ok "selftests for $ARCH up to date ($OUT)"
	exit 0
fi

# Our tests live in kvmrs/ inside the upstream directory (untracked there).
rm -rf "$KST/kvmrs"
mkdir -p "$KST/kvmrs" "$OUT" "$OUT"/kvmrs/{common,x86_64,aarch64}
cp -r "$KVMRS_ROOT"/selftests/kvm/. "$KST/kvmrs/"
step "building KVM selftests for $ARCH (static)"
t0=$(date +%s)
if ! make -C "$KST" -f kvmrs/Makefile -j"$(($(nproc) + 1))" "${mk[@]}" OUTPUT="$OUT" \
	KHDR_INCLUDES="-isystem $O/usr/include" EXTRA_CFLAGS=-static LDFLAGS=-static \
	>"$OUT/.build.log" 2>&1; then
	grep -nE 'error|Error' "$OUT/.build.log" | head -30 >&2 || true
	tail -20 "$OUT/.build.log" >&2
	die "selftest build failed (log: $OUT/.build.log)"
fi
echo "$key" >"$OUT/.kvmrs-key"
ok "selftests built in $(($(date +%s) - t0)) s: $(find "$OUT" -maxdepth 3 -type f -perm -u+x | wc -l) binaries"
