/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvm-rs: x86 shadow-MMU rmaps with a per-head lock bit, and lockless aging.
 *
 * struct kvm_rmap_head.val: 0 = empty; bit 0 clear = the only SPTE pointer;
 * bit 0 set = (val & ~3) points to a struct pte_list_desc chain; bit 1 =
 * KVM_RS_RMAP_LOCKED, a spin bit. Code that changes a chain holds
 * kvm->mmu_lock for write and goes through kvm_rs_rmap_add/remove/zap_all,
 * which hold the bit while changing it; code that only reads a chain under
 * mmu_lock masks the bit off. kvm_rs_rmap_age() needs no mmu_lock.
 *
 * The bit is a bit spinlock: kvm-rs disables preemption (through
 * kvm_rs_preempt_disable()) from before it takes the bit until after it
 * releases it, on both sides, and every path out of a function releases
 * it, including the ones that return an error.
 *
 * Return values: >= 0 as documented, or a negative errno: -ENOENT (SPTE
 * not in the rmap), -ENODATA (remove from an empty rmap), -EINVAL (bad
 * SPTE pointer, a corrupt descriptor, or a LOCKED value to publish),
 * -EBUSY (the head changed while locked, or two writers raced), -EUCLEAN
 * (kvm_rs_rmap_add() only: the SPTE was added, but the head had changed
 * while locked; with every other error the SPTE was not added). Each is
 * data corruption or a broken caller; the head is unlocked on return.
 * Descriptor allocation cannot fail (see struct kvm_rs_desc_ops).
 */
#ifndef KVM_RS_RMAP_H
#define KVM_RS_RMAP_H

#include <linux/types.h>

#define KVM_RS_RMAP_MANY	0x1UL
#define KVM_RS_RMAP_LOCKED	0x2UL
/* sizeof(struct pte_list_desc) as kvm-rs lays it out (14 entries). */
#define KVM_RS_PTE_LIST_DESC_SIZE	128

/*
 * Descriptor memory: a zeroed struct pte_list_desc, without sleeping, never
 * NULL (KVM tops its cache up before mmu_lock and BUG()s on an empty one).
 */
typedef void *(*kvm_rs_desc_alloc_fn)(void *ctx);
typedef void (*kvm_rs_desc_free_fn)(void *ctx, void *desc);

struct kvm_rs_desc_ops {
	kvm_rs_desc_alloc_fn alloc;
	kvm_rs_desc_free_fn free;
	void *ctx;
};

/* Called once per SPTE of a zapped chain, after it left the rmap. */
typedef void (*kvm_rs_spte_fn)(void *ctx, u64 *sptep);
/* Called with the old value of each A/D-disabled SPTE made access-tracked. */
typedef void (*kvm_rs_tracked_fn)(void *ctx, u64 old_spte);

struct kvm_rs_age_params {
	u64 accessed_mask;	/* shadow_accessed_mask */
	u64 acc_track_mask;	/* shadow_acc_track_mask */
};

/*
 * The SPTE encodings kvm-rs's aging rule relies on (arch/x86/kvm/mmu/spte.h);
 * mmu.c static_assert()s them against KVM's own definitions.
 */
#define KVM_RS_SPTE_MMU_PRESENT_MASK		0x800
#define KVM_RS_SPTE_TDP_AD_MASK			0x30000000000000
#define KVM_RS_SPTE_TDP_AD_DISABLED		0x10000000000000
#define KVM_RS_ACC_TRACK_SAVED_BITS_MASK	0x5
#define KVM_RS_ACC_TRACK_SAVED_BITS_SHIFT	54
#define KVM_RS_SHADOW_NONPRESENT_VALUE		0x8000000000000000
#define KVM_RS_FROZEN_SPTE			0x80000000000005a0

/* Results of kvm_rs_age_spte(). */
#define KVM_RS_SPTE_OLD		0	/* not young, nothing written */
#define KVM_RS_SPTE_YOUNG	1	/* young (test_only: nothing written) */
#define KVM_RS_SPTE_CLEARED	2	/* young, Accessed cleared */
#define KVM_RS_SPTE_TRACKED	3	/* young, made access-tracked */
#define KVM_RS_SPTE_LOST	4	/* young, SPTE changed under the cmpxchg */

/* Counters of the aging paths (debugfs: kvm_rs/aging/), per CPU. */
enum kvm_rs_age_stat {
	KVM_RS_AGE_PASSES,		/* lockless rmap walks */
	KVM_RS_AGE_RMAPS_VISITED,	/* non-empty rmaps locked and walked */
	KVM_RS_AGE_YOUNG,		/* rmaps with a young SPTE */
	KVM_RS_AGE_CMPXCHG_FAILED,	/* SPTE exchanges lost (left young) */
	KVM_RS_AGE_LOCK_SPINS,		/* spins on a held lock bit */
	KVM_RS_AGE_TDP_PASSES,		/* lockless TDP MMU walks */
	KVM_RS_AGE_TDP_YOUNG,		/* young TDP MMU leaf SPTEs */
	KVM_RS_AGE_LOCKED_CALLS,	/* aging handler calls under mmu_lock */
	KVM_RS_AGE_NR_STATS,
};

/*
 * Runtime switch (CONFIG_KVM_RS_AB_TEST only): 1 = kvm-rs lockless aging,
 * 0 = the 6.12 locked path.
 */
extern unsigned int kvm_rs_lockless_aging;

/* Adds @sptep; returns the number of SPTEs that were already there. */
int kvm_rs_rmap_add(unsigned long *head, u64 *sptep,
		    const struct kvm_rs_desc_ops *ops);
/* Removes @sptep; 0 on success. */
int kvm_rs_rmap_remove(unsigned long *head, u64 *sptep,
		       const struct kvm_rs_desc_ops *ops);
/* Empties the rmap, calling @fn on every SPTE; 1 if it was not empty. */
int kvm_rs_rmap_zap_all(unsigned long *head, kvm_rs_spte_fn fn, void *ctx,
			const struct kvm_rs_desc_ops *ops);
/* Number of SPTEs, for a head that only this writer can change. */
unsigned int kvm_rs_rmap_count(unsigned long *head);
/*
 * Ages @nr consecutive rmap heads without mmu_lock; 1 if any SPTE was
 * young, 0 if none. With @test_only, stops at the first young SPTE and
 * writes nothing.
 */
int kvm_rs_rmap_age(unsigned long *heads, unsigned long nr, bool test_only,
		    const struct kvm_rs_age_params *params,
		    kvm_rs_tracked_fn on_tracked, void *ctx);
/*
 * Ages one SPTE whose page table stays alive for the call (TDP MMU: under
 * rcu_read_lock()), from the value @old_spte the caller read and checked
 * (a present leaf): the SPTE is only changed by a cmpxchg from @old_spte.
 * Returns KVM_RS_SPTE_*.
 */
int kvm_rs_age_spte(u64 *sptep, u64 old_spte, bool test_only,
		    const struct kvm_rs_age_params *params);
/* Reads one aging counter (enum kvm_rs_age_stat), summed over CPUs. */
u64 kvm_rs_age_stat(u32 stat);
/* Adds @n to aging counter @stat (enum kvm_rs_age_stat) on this CPU. */
void kvm_rs_age_count(u32 stat, u64 n);
/* Internal (kvm-rs's Rust calls its C half): account one aging call. */
void kvm_rs_age_account(u64 visited, u64 young, u64 cmpxchg_failed, u64 spins);
/* Internal (kvm-rs's Rust core calls its C half): preempt_disable/enable. */
void kvm_rs_preempt_disable(void);
void kvm_rs_preempt_enable(void);

#endif /* KVM_RS_RMAP_H */
