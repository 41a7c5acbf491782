/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvm-rs: arm64 stage-2 decisions (rust/core/s2.rs through rust/s2_ffi.rs).
 *
 * Pure functions over stage-2 descriptors, 4K granule without LPA2; the
 * caller (the host build of arch/arm64/kvm/hyp/pgtable.c) keeps doing the
 * cmpxchg, the cache maintenance and the TLB invalidation they ask for.
 * See Documentation/arm64-stage2.rst of kvm-rs.
 */
#ifndef KVM_RS_S2_H
#define KVM_RS_S2_H

#include <linux/types.h>

/* kvm_rs_s2_map_decide() results (enum MapDecision in s2.rs). */
#define KVM_RS_S2_MAP_SAME		0	/* -EAGAIN, write nothing */
#define KVM_RS_S2_MAP_PERMS_ONLY	1	/* -EAGAIN, relax does it */
#define KVM_RS_S2_MAP_INSTALL		2	/* old not valid: no TLBI */
#define KVM_RS_S2_MAP_FULL_BBM		3	/* break, TLBI, make */
#define KVM_RS_S2_MAP_BREAK_SKIPPED	4	/* BBML2: cmpxchg, TLBI VMID */
#define KVM_RS_S2_MAP_BUSY		5	/* locked by another walker */

/* kvm_rs_s2_tlbi_plan() results (enum TlbiPlan in s2.rs). */
#define KVM_RS_S2_TLBI_NONE		0
#define KVM_RS_S2_TLBI_LOCAL_IPA	1	/* __kvm_tlb_flush_vmid_ipa_nsh */
#define KVM_RS_S2_TLBI_BCAST_IPA	2	/* __kvm_tlb_flush_vmid_ipa */
#define KVM_RS_S2_TLBI_BCAST_VMID	3	/* __kvm_tlb_flush_vmid */

/* kvm_rs_s2_relax() results (enum RelaxCode in s2.rs), plus a flag. */
#define KVM_RS_S2_RELAX_UNCHANGED	0
#define KVM_RS_S2_RELAX_RELAXED		1
#define KVM_RS_S2_RELAX_NOT_VALID	2
#define KVM_RS_S2_RELAX_CODE_MASK	0xff
#define KVM_RS_S2_RELAX_ICACHE		0x100

/* Permission set for kvm_rs_s2_relax(): not enum kvm_pgtable_prot. */
#define KVM_RS_S2_PERM_R		1
#define KVM_RS_S2_PERM_W		2
#define KVM_RS_S2_PERM_X		4

/* The caps argument of kvm_rs_s2_map_decide(). */
#define KVM_RS_S2_CAPS_BBM_MASK		0xf	/* ID_AA64MMFR2_EL1.BBM */
#define KVM_RS_S2_CAPS_FINAL		0x10	/* system caps finalised */
#define KVM_RS_S2_CAPS_ENABLED		0x20	/* not forced off */

/* Event counters (debugfs kvm_rs/s2/), kvm_rs_s2_count()/kvm_rs_s2_stat(). */
#define KVM_RS_S2_EV_RELAXED		0	/* permissions added in place */
#define KVM_RS_S2_EV_RELAX_UNCHANGED	1	/* perm fault, nothing to add */
#define KVM_RS_S2_EV_RELAX_EAGAIN	2	/* lost cmpxchg / not a leaf */
#define KVM_RS_S2_EV_DEFERRED		3	/* map path -EAGAIN, no write */
#define KVM_RS_S2_EV_INSTALL		4	/* map into an invalid entry */
#define KVM_RS_S2_EV_FULL_BBM		5	/* break of a valid entry */
#define KVM_RS_S2_EV_BREAK_SKIPPED	6	/* BBML2, no break */
#define KVM_RS_S2_EV_TLBI_LOCAL		7	/* local by IPA */
#define KVM_RS_S2_EV_TLBI_BCAST_IPA	8	/* broadcast by IPA */
#define KVM_RS_S2_EV_TLBI_BCAST_VMID	9	/* broadcast, whole VMID */
#define KVM_RS_S2_EV_TLBI_BCAST_RANGE	10	/* broadcast range (6.12) */
#define KVM_RS_S2_EV_CONFLICT_ABORT	11	/* TLB conflict abort */
#define KVM_RS_S2_EV_BUG		12	/* impossible state seen */
#define KVM_RS_S2_NR_EVENTS		16

/**
 * kvm_rs_s2_map_decide() - Map path: how to replace @old by @new.
 * @old: the entry the walker read (ctx->old).
 * @old_equiv: if @old is a table, a block it translates exactly like, or 0.
 * @new: the entry to install.
 * @new_equiv: if @new is a table, a block it translates exactly like, or 0.
 * @level: translation level, 0 to 3 (anything else: KVM_RS_S2_MAP_FULL_BBM).
 * @caps: KVM_RS_S2_CAPS_* bits.
 *
 * Return: a KVM_RS_S2_MAP_* code.
 */
u32 kvm_rs_s2_map_decide(u64 old, u64 old_equiv, u64 new, u64 new_equiv,
			 u32 level, u32 caps);

/**
 * kvm_rs_s2_split_block_equiv() - The block a freshly split table equals.
 * @table: the 512 entries of a next-level table not yet linked anywhere.
 * @level: level of the entry that will point to @table (1 or 2).
 *
 * Checks that @table is a complete, uniform split of one block (valid
 * leaves, consecutive output addresses from an aligned base, all other
 * bits equal) and returns that block descriptor, to be passed as
 * @new_equiv to kvm_rs_s2_map_decide().
 *
 * Return: the equivalent block descriptor at @level, or 0.
 */
u64 kvm_rs_s2_split_block_equiv(const u64 *table, u32 level);

/**
 * kvm_rs_s2_tlbi_plan() - TLB invalidation needed to replace @old by @new.
 * @old: the entry before the change.
 * @new: the entry after it (@old itself for a fault that changes nothing).
 * @level: translation level, 0 to 3 (anything else: KVM_RS_S2_TLBI_BCAST_VMID).
 *
 * Return: a KVM_RS_S2_TLBI_* code.
 */
u32 kvm_rs_s2_tlbi_plan(u64 old, u64 new, u32 level);

/**
 * kvm_rs_s2_relax() - Permission fault: add @want to the leaf @old.
 * @old: the entry the walker read.
 * @level: translation level, 0 to 3 (anything else: NOT_VALID).
 * @want: KVM_RS_S2_PERM_* set wanted by the faulting access.
 * @new: where the entry to install is stored (@old unless relaxed).
 *
 * Never removes a permission.
 *
 * Return: a KVM_RS_S2_RELAX_* code, or-ed with KVM_RS_S2_RELAX_ICACHE when
 * the I-cache must be invalidated to PoU before installing *@new.
 */
u32 kvm_rs_s2_relax(u64 old, u32 level, u32 want, u64 *new);

/* Count one KVM_RS_S2_EV_* event; kvm_rs_s2_stat() reads a counter. */
void kvm_rs_s2_count(u32 ev);
u64 kvm_rs_s2_stat(u32 ev);

/*
 * Module parameters (storage owned by Rust, AtomicU32; read with READ_ONCE):
 * kvm_rs.s2_mode (0 = 6.12's C decisions, 1 = kvm-rs's), kvm_rs.s2_bbml2
 * (0 forces skipping the break off), and the FEAT_BBM level and
 * KVM_RS_S2_CAPS_FINAL as established at boot.
 */
extern unsigned int kvm_rs_s2_mode;
extern unsigned int kvm_rs_s2_bbml2;
extern unsigned int kvm_rs_s2_hwcaps;
/* Test hook: the number of coming stage-2 aborts to handle as TLB conflicts. */
extern unsigned int kvm_rs_s2_inject_conflict;

/*
 * kvm_rs_s2_take_injected_conflict() - Consume one injected TLB conflict.
 *
 * Return: true if kvm_rs_s2_inject_conflict was non-zero; it is then one less.
 */
bool kvm_rs_s2_take_injected_conflict(void);

#endif /* KVM_RS_S2_H */
