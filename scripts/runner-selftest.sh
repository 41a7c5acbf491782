#!/usr/bin/env bash
# Proves that the VM runner can fail: a failing test, a guest WARNING and a
# hung guest must each make `vm.sh test` exit non-zero with a clear message.
# Prints one TAP line per case and "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$KVMRS_ROOT"
ARCH=${ARCH:-x86_64}
pass=0 fail=0 n=0
expect_fail() { # name, list, expected message regex, [env...]
	local name=$1 list=$2 rx=$3 out rc
	shift 3
	n=$((n + 1))
	out=$(env "$@" KVMRS_LIST="selftests/runner/$list" TESTS= bash scripts/vm.sh test 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && echo "$out" | grep -qE "$rx"; then
		pass=$((pass + 1)); echo "ok $n - runner fails on $name: $(echo "$out" | grep -E "$rx" | head -1)"
	else
		fail=$((fail + 1)); echo "not ok $n - runner did not fail on $name (exit $rc)"; echo "$out" | tail -20
	fi
}
expect_fail "a failing test" fail.list 'FAIL: 1 test\(s\) failed: deliberate_fail'
expect_fail "a guest WARNING" warn.list 'FAIL: kernel splat in the guest log'
expect_fail "a hung guest" hang.list 'FAIL: guest hung' VM_TIMEOUT=60
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
