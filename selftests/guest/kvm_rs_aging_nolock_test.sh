#!/bin/sh
# x86 guest test: with kvm-rs's lockless aging (the default), no aging
# notifier call takes mmu_lock. Runs access_tracking_perf_test (page_idle:
# clear_young and test_young on every page of the VM) with the MMU the
# test line chose, and reads kvm-rs's aging counters before and after:
# locked_calls (aging handler calls on the 6.12 path, under mmu_lock) must
# not move, and the lockless walker of that MMU must have run and found
# young SPTEs (tdp_passes/tdp_young with the TDP MMU, passes/young with
# the shadow MMU). With kvm_rs.lockless_aging=0 the opposite must hold,
# which shows that the counter can fail the test.
# needs: access_tracking_perf_test
fail() { echo "kvm_rs_aging_nolock_test: $*"; exit 1; }
A=/sys/kernel/debug/kvm_rs/aging
for f in locked_calls tdp_passes tdp_young passes young; do
	[ -r "$A/$f" ] || fail "no $A/$f"
done
snap() { for f in locked_calls tdp_passes tdp_young passes young; do echo "$f $(cat "$A/$f")"; done; }
delta() { # name: after - before
	echo $(($(sed -n "s/^$1 //p" /tmp/nolock.after) - $(sed -n "s/^$1 //p" /tmp/nolock.before)))
}
tdp=$(cat /sys/module/kvm/parameters/tdp_mmu)
# Without CONFIG_KVM_RS_AB_TEST there is no switch: aging is always lockless.
mode=$(cat /sys/module/kvm_rs/parameters/lockless_aging 2>/dev/null || echo 1)
snap >/tmp/nolock.before
/kvmrs/bin/access_tracking_perf_test -v 2 -b 16M || fail "access_tracking_perf_test failed"
snap >/tmp/nolock.after
locked=$(delta locked_calls)
if [ "$tdp" = Y ]; then walks=$(delta tdp_passes) young=$(delta tdp_young); else walks=$(delta passes) young=$(delta young); fi
echo "tdp_mmu=$tdp lockless_aging=$mode: locked_calls +$locked, lockless walks +$walks, young +$young"
if [ "$mode" = 1 ]; then
	[ "$locked" = 0 ] || fail "$locked aging calls took mmu_lock with lockless aging on"
	[ "$walks" -gt 0 ] || fail "the lockless walker never ran"
	[ "$young" -gt 0 ] || fail "the lockless walker found nothing young"
else
	[ "$locked" -gt 0 ] || fail "lockless_aging=0, but no aging call was counted under mmu_lock"
	[ "$walks" = 0 ] || fail "lockless_aging=0, but the lockless walker ran $walks times"
fi
