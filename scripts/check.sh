#!/usr/bin/env bash
# `make check`: every test — host checks, then the x86_64 and arm64 VM runs
# (kernel and selftests from the cache when nothing changed). Ends with the
# combined "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$KVMRS_ROOT"
ARCHES=${CHECK_ARCHES:-x86_64 arm64}
tp=0 tf=0 bad=()
count() { # log file: adds its last "N passed, N failed" line
	local l
	l=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
	if [ -z "$l" ]; then tf=$((tf + 1)); return; fi
	tp=$((tp + $(echo "$l" | awk '{print $1}')))
	tf=$((tf + $(echo "$l" | awk '{print $3}')))
}
mkdir -p out
step "host checks"
make --no-print-directory check-host 2>&1 | tee out/check-host.log
[ "${PIPESTATUS[0]}" = 0 ] || bad+=(host)
count out/check-host.log
for a in $ARCHES; do
	step "VM tests: $a"
	make --no-print-directory vm-test ARCH="$a" 2>&1 | tee "out/check-$a.log"
	[ "${PIPESTATUS[0]}" = 0 ] || bad+=("$a")
	count "out/check-$a.log"
done
# The runner itself must be able to fail (x86 boots in seconds).
step "VM runner self-test (a failing test, a guest WARN and a hang must fail)"
ARCH=x86_64 bash scripts/runner-selftest.sh 2>&1 | tee out/check-runner.log
[ "${PIPESTATUS[0]}" = 0 ] || bad+=(runner-selftest)
count out/check-runner.log
step "make check done: ${bad[*]:-all green}"
echo "$tp passed, $tf failed"
[ ${#bad[@]} -eq 0 ]
