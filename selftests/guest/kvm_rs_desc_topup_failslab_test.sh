#!/bin/sh
# x86 guest test: the top-up of the shadow MMU's pte_list_desc cache (the
# descriptors kvm-rs links into rmaps) fails during the rmap stress test.
# KVM tops the cache up before it takes mmu_lock; a failed top-up fails
# the fault with -ENOMEM from KVM_RUN before any SPTE is installed, and
# userspace retries. This is why kvm-rs's rmap add never has to fail for
# lack of memory (kvm_mmu_memory_cache_alloc() under mmu_lock BUG()s
# rather than return NULL, so no injection can reach kvm-rs itself).
# Expected: the test passes (every page holds its last pattern), the
# injected failures were all consumed, at least one reached userspace as
# ENOMEM, and the runner finds no splat in the kernel log.
# Needs slab_nomerge on the kernel command line: SLUB refuses per-cache
# failslab on a merged cache.
# needs: rmap_aging_stress_test
fail() { echo "kvm_rs_desc_topup_failslab_test: $*"; cleanup; exit 1; }
F=/sys/kernel/debug/failslab
C=/sys/kernel/slab/pte_list_desc
cleanup() {
	echo 0 >"$F/probability" 2>/dev/null
	echo N >"$F/cache-filter" 2>/dev/null
	echo 0 >"$C/failslab" 2>/dev/null
}
[ -d "$F" ] || { echo "no $F (CONFIG_FAILSLAB)"; exit 4; }
[ -d "$C" ] || fail "no $C: kvm not loaded?"
[ -L "$C" ] && fail "$C is an alias of a merged cache (boot with slab_nomerge)"
echo 1 >"$C/failslab" || fail "cannot set $C/failslab"
echo Y >"$F/cache-filter" || fail "cache-filter"
# GFP_KERNEL_ACCOUNT may reclaim: do not exempt such allocations.
echo N >"$F/ignore-gfp-wait" || fail "ignore-gfp-wait"
# No stack dump per failure (the runner counts a Call Trace as a splat).
echo 0 >"$F/verbose"
echo 1 >"$F/interval"
echo 0 >"$F/space"
echo 25 >"$F/times"
echo 100 >"$F/probability"
bin=/kvmrs/bin/rmap_aging_stress_test
out=$("$bin" -v 2 -b 8M -d 4 -e 1 2>&1); rc=$?
echo "$out"
left=$(cat "$F/times")
cleanup
[ "$rc" -eq 0 ] || fail "stress test failed under fault injection (exit $rc)"
[ "$left" = 0 ] || fail "only $((25 - left)) of 25 injected failures happened"
echo "$out" | grep -q 'retried [1-9]' || fail "no ENOMEM reached the vCPUs"
echo "25 pte_list_desc allocations failed; KVM_RUN returned ENOMEM and was retried"
