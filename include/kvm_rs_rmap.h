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
 * Return values: >= 0 as documented, or a negative errno: -ENOMEM (the
 * descriptor cache was empty; the rmap is unchanged), -ENOENT (SPTE not in
 * the rmap), -ENODATA (remove from an empty rmap), -EINVAL (bad SPTE
 * pointer or a corrupt descriptor), -EBUSY (the head changed while locked,
 * or two writers raced). Every negative value except -ENOMEM is data
 * corruption: report it with KVM_BUG_ON_DATA_CORRUPTION().
 */
#ifndef KVM_RS_RMAP_H
#define KVM_RS_RMAP_H

#include <linux/types.h>

#define KVM_RS_RMAP_MANY	0x1UL
#define KVM_RS_RMAP_LOCKED	0x2UL
/* sizeof(struct pte_list_desc) as kvm-rs lays it out (14 entries). */
#define KVM_RS_PTE_LIST_DESC_SIZE	128

/* Descriptor memory: a zeroed struct pte_list_desc that never sleeps. */
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

/* Counters of the lockless aging path (debugfs: kvm_rs/aging/). */
enum kvm_rs_age_stat {
	KVM_RS_AGE_PASSES,
	KVM_RS_AGE_RMAPS_VISITED,
	KVM_RS_AGE_YOUNG,
	KVM_RS_AGE_CMPXCHG_FAILED,
	KVM_RS_AGE_LOCK_SPINS,
	KVM_RS_AGE_NR_STATS,
};

/* Runtime switch: 1 = kvm-rs lockless aging, 0 = the 6.12 locked path. */
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
/* Reads one aging counter (enum kvm_rs_age_stat), summed over CPUs. */
u64 kvm_rs_age_stat(u32 stat);
/* Internal (kvm-rs's Rust calls its C half): account one aging call. */
void kvm_rs_age_account(u64 visited, u64 young, u64 cmpxchg_failed, u64 spins);

#endif /* KVM_RS_RMAP_H */
