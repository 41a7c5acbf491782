#!/bin/sh
# arm64 guest test: the stage-2 TLB conflict abort path. Emulators never
# report a TLB conflict, so kvm_rs.s2_inject_conflict=N makes the next N
# stage-2 aborts take that path: kvm_handle_guest_abort() counts the
# conflict, invalidates the VMID on this CPU and lets the vCPU retry the
# access, which then faults again and is handled normally. Expected: every
# injection is consumed and counted once, and the tests running meanwhile
# pass with their data checks (the relax test's per-vCPU slots; the split
# test's dirty log and page contents, with the BBML2 break skip on, the
# one case where a real conflict abort could follow). Its line in
# vm-tests.arm64 reserves the 2 MiB hugepages the split test needs.
# needs: kvm_rs_s2_relax_test kvm_rs_s2_split_test
fail() { echo "kvm_rs_s2_conflict_test: $*"; echo 0 >"$P/s2_inject_conflict"; exit 1; }
P=/sys/module/kvm_rs/parameters
C=/sys/kernel/debug/kvm_rs/s2/conflict_abort
[ -w "$P/s2_inject_conflict" ] || fail "no $P/s2_inject_conflict"
[ -r "$C" ] || fail "no $C"

# run <injections> <command...>
run() {
	n=$1; shift
	c0=$(cat "$C")
	echo "$n" >"$P/s2_inject_conflict" || fail "cannot set s2_inject_conflict"
	"$@" || fail "'$*' failed with $n conflict aborts injected"
	left=$(cat "$P/s2_inject_conflict")
	echo 0 >"$P/s2_inject_conflict"
	c1=$(cat "$C")
	used=$((n - left))
	echo "kvm_rs_s2_conflict_test: $1: $used of $n injected conflicts taken, conflict_abort +$((c1 - c0))"
	[ "$left" -eq 0 ] || fail "$1: $left of $n injections were not taken (fewer stage-2 aborts than expected?)"
	[ $((c1 - c0)) -eq "$n" ] || fail "$1: conflict_abort counted $((c1 - c0)), expected $n"
}

B=/kvmrs/bin
for mode in 0 1; do
	echo "$mode" >"$P/s2_mode"
	run 500 $B/kvm_rs_s2_relax_test -v 2 -p 256 -r 60
done
echo 1 >"$P/s2_mode"
echo 1 >"$P/s2_bbml2"
run 200 $B/kvm_rs_s2_split_test -b 16M -p 4
echo 0 >"$P/s2_bbml2"
echo "kvm_rs_s2_conflict_test: ok"
