#!/usr/bin/env bash
# `make vm-test`: every VM boot of one architecture's test list, then one
# combined "N passed, N failed" line.
#
#   selftests/vm-tests.$ARCH          the main boot (scripts/vm.sh's defaults)
#   selftests/vm-tests.$ARCH.mttcg    x86_64: a second boot with
#                                     multi-threaded TCG, for in-kernel races
#                                     (the KUnit suite's kthreads) that need
#                                     two guest CPUs really running at once;
#                                     the main x86 boot uses one TCG thread
#                                     (Documentation/pipeline.rst, "Emulation
#                                     flakes", which concern nested guests).
# TESTS=<regex> applies to every boot; a boot whose list it does not match
# is skipped.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
ARCH=${ARCH:-x86_64}
[ "$ARCH" = aarch64 ] && ARCH=arm64
tp=0 tf=0 ts=0 bad=()
matches() { # list: does the filter select a line of it?
	awk -v f="${TESTS:-.}" '!/^#/ && NF >= 5 && ($1 " " $3) ~ f { n++ } END { exit !n }' "$1"
}
boot() { # label, env...
	local label=$1 l out
	shift
	out=$(mktemp)
	env "$@" bash "$here/vm.sh" test 2>&1 | tee "$out"
	[ "${PIPESTATUS[0]}" = 0 ] || bad+=("$label")
	l=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	if [ -z "$l" ]; then tf=$((tf + 1)); else
		tp=$((tp + $(echo "$l" | awk '{print $1}')))
		tf=$((tf + $(echo "$l" | awk '{print $3}')))
		ts=$((ts + $(echo "$l" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p' | grep . || echo 0)))
	fi
	rm -f "$out"
}
main=$KVMRS_ROOT/selftests/vm-tests.$ARCH
matches "$main" && boot "$ARCH" ARCH="$ARCH"
mt=$KVMRS_ROOT/selftests/vm-tests.$ARCH.mttcg
if [ -f "$mt" ] && matches "$mt"; then
	step "second boot: $(basename "$mt") with multi-threaded TCG"
	boot "$ARCH-mttcg" ARCH="$ARCH" KVMRS_TCG=multi KVMRS_LIST="$mt"
fi
[ ${#bad[@]} -gt 0 ] && echo "failed boots: ${bad[*]}" >&2
echo "$tp passed, $tf failed$([ "$ts" -gt 0 ] && echo ", $ts skipped")"
[ ${#bad[@]} -eq 0 ] && [ "$tf" -eq 0 ]
