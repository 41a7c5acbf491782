#!/usr/bin/env bash
# `make bench [ARCH=...]`: host benchmarks, then the VM A/B benchmarks of
# selftests/bench.<arch> in one boot (variants alternated round by round).
# Output: a table on stdout, out/bench-<arch>.json, out/bench-<arch>.svg.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$KVMRS_ROOT"
ARCH=${ARCH:-x86_64}
ROUNDS=${ROUNDS:-7}
if [ "${BENCH_HOST:-1}" = 1 ]; then
	bash scripts/bench-host.sh
fi
spec=selftests/bench.$ARCH
[ -f "$spec" ] || die "no VM benchmark spec $spec"
make --no-print-directory initramfs ARCH="$ARCH" >/dev/null
mkdir -p out
list=out/bench-$ARCH.list
python3 scripts/bench_report.py gen "$spec" "$ROUNDS" >"$list"
step "VM benchmark $ARCH: $(grep -vc '^#' "$list") runs ($ROUNDS rounds per variant, alternating)"
# Failing runs are reported by the report, not fatal here. vm.sh's TCG
# default (one thread on x86): multi-threaded TCG would run the ager and
# the vCPUs really in parallel, but fails about one nested run in ten and
# once crashed the guest kernel (pipeline.rst); KVMRS_TCG=multi to try.
KVMRS_LIST=$list TESTS= bash scripts/vm.sh test || true
python3 scripts/bench_report.py report "$spec" "out/vm-$ARCH-bench-$ARCH.log" "out/bench-$ARCH"
