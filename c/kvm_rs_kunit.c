// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite for kvm-rs. 6.12 has no #[kunit_tests] for Rust, so the
 * suite is C and calls the Rust entry points declared in include/kvm_rs.h.
 */
#include <kunit/test.h>
#include <linux/module.h>
#include "kvm_rs.h"

static void kvm_rs_test_abi_version(struct kunit *test)
{
	/* A stale kvm_rs.ko against a newer header must be caught here. */
	KUNIT_EXPECT_EQ(test, kvm_rs_abi_version(), (u32)KVM_RS_ABI_VERSION);
}

/*
 * warn_demo=1 makes the suite WARN once on purpose. The VM runner's own
 * self-test (scripts/runner-selftest.sh) uses it to prove that a guest
 * WARNING fails a run; it is never set otherwise.
 */
static bool warn_demo;
module_param(warn_demo, bool, 0444);
MODULE_PARM_DESC(warn_demo, "WARN on purpose (runner self-test only)");

static int kvm_rs_ffi_suite_init(struct kunit_suite *suite)
{
	WARN(warn_demo, "kvm_rs_kunit: warn_demo requested\n");
	return 0;
}

static struct kunit_case kvm_rs_ffi_cases[] = {
	KUNIT_CASE(kvm_rs_test_abi_version),
	{}
};

static struct kunit_suite kvm_rs_ffi_suite = {
	.name = "kvm_rs_ffi",
	.suite_init = kvm_rs_ffi_suite_init,
	.test_cases = kvm_rs_ffi_cases,
};

kunit_test_suites(&kvm_rs_ffi_suite);

#ifdef CONFIG_ARM64
/*
 * arm64 stage-2 helpers (include/kvm_rs_s2.h), checked against 6.12's own
 * descriptor macros: the Rust core must agree with the C definitions the
 * fault path uses.
 */
#include <linux/bitfield.h>
#include <asm/kvm_pgtable.h>
#include "kvm_rs_s2.h"

#define S2_R	KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R
#define S2_W	KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W
#define S2_XN	KVM_PTE_LEAF_ATTR_HI_S2_XN
#define S2_TYPE	BIT(1)

/* A Normal-FWB, inner-shareable leaf with AF set, as 6.12 builds it. */
static u64 s2_leaf(int level, u64 pa, u64 perms)
{
	u64 pte = (pa & KVM_PTE_ADDR_MASK) | KVM_PTE_VALID |
		  FIELD_PREP(KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR, 6) |
		  FIELD_PREP(KVM_PTE_LEAF_ATTR_LO_S2_SH,
			     KVM_PTE_LEAF_ATTR_LO_S2_SH_IS) |
		  KVM_PTE_LEAF_ATTR_LO_S2_AF | perms;

	return level == 3 ? pte | S2_TYPE : pte;
}

static void kvm_rs_s2_test_relax(struct kunit *test)
{
	u64 rw = s2_leaf(3, 0x80000000, S2_R | S2_W | S2_XN);
	u64 wo = s2_leaf(3, 0x80000000, S2_W | S2_XN);
	u64 new = 0;
	u32 r;

	/* 6.12's encoding of an RW, non-executable page. */
	KUNIT_EXPECT_EQ(test, rw, 0x00400000800007dbULL);

	/* Adding X to RW gives RWX and asks for the I-cache invalidation. */
	r = kvm_rs_s2_relax(rw, 3, KVM_RS_S2_PERM_X, &new);
	KUNIT_EXPECT_EQ(test, r, (u32)(KVM_RS_S2_RELAX_RELAXED | KVM_RS_S2_RELAX_ICACHE));
	KUNIT_EXPECT_EQ(test, new, rw & ~S2_XN);

	/* R on a write-only page: a set test, not a numeric one. */
	r = kvm_rs_s2_relax(wo, 3, KVM_RS_S2_PERM_R, &new);
	KUNIT_EXPECT_EQ(test, r, (u32)KVM_RS_S2_RELAX_RELAXED);
	KUNIT_EXPECT_EQ(test, new, wo | S2_R);

	/* Never removes: R wanted on RW is unchanged. */
	r = kvm_rs_s2_relax(rw, 3, KVM_RS_S2_PERM_R, &new);
	KUNIT_EXPECT_EQ(test, r, (u32)KVM_RS_S2_RELAX_UNCHANGED);
	KUNIT_EXPECT_EQ(test, new, rw);

	/* Not a valid leaf: locked, invalid, a table, a bad level. */
	r = kvm_rs_s2_relax(KVM_INVALID_PTE_LOCKED, 3, KVM_RS_S2_PERM_W, &new);
	KUNIT_EXPECT_EQ(test, r, (u32)KVM_RS_S2_RELAX_NOT_VALID);
	KUNIT_EXPECT_EQ(test, new, (u64)KVM_INVALID_PTE_LOCKED);
	r = kvm_rs_s2_relax(0, 2, KVM_RS_S2_PERM_W, &new);
	KUNIT_EXPECT_EQ(test, r, (u32)KVM_RS_S2_RELAX_NOT_VALID);
	r = kvm_rs_s2_relax(0x40000003, 2, KVM_RS_S2_PERM_W, &new);
	KUNIT_EXPECT_EQ(test, r, (u32)KVM_RS_S2_RELAX_NOT_VALID);
	r = kvm_rs_s2_relax(rw, 4, KVM_RS_S2_PERM_X, &new);
	KUNIT_EXPECT_EQ(test, r, (u32)KVM_RS_S2_RELAX_NOT_VALID);
}

static void kvm_rs_s2_test_map_decide(struct kunit *test)
{
	u32 bbml2 = 2 | KVM_RS_S2_CAPS_FINAL | KVM_RS_S2_CAPS_ENABLED;
	u64 ro = s2_leaf(3, 0x80000000, S2_R | S2_XN);
	u64 rw = s2_leaf(3, 0x80000000, S2_R | S2_W | S2_XN);
	u64 other = s2_leaf(3, 0x80001000, S2_R | S2_XN);
	u64 blk = s2_leaf(2, 0x80000000, S2_R | S2_W | S2_XN);
	u64 tbl = 0x40000000 | S2_TYPE | KVM_PTE_VALID;

	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(rw, 0, rw, 0, 3, 0),
			(u32)KVM_RS_S2_MAP_SAME);
	/* Both directions: the map path never changes only permissions. */
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(rw, 0, ro, 0, 3, 0),
			(u32)KVM_RS_S2_MAP_PERMS_ONLY);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(ro, 0, rw, 0, 3, 0),
			(u32)KVM_RS_S2_MAP_PERMS_ONLY);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(0, 0, rw, 0, 3, 0),
			(u32)KVM_RS_S2_MAP_INSTALL);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(KVM_INVALID_PTE_LOCKED, 0, rw, 0, 3, 0),
			(u32)KVM_RS_S2_MAP_BUSY);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(ro, 0, other, 0, 3, bbml2),
			(u32)KVM_RS_S2_MAP_FULL_BBM);
	/* Block -> uniform table of the same block: BBML2 may skip. */
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(blk, 0, tbl, blk, 2, bbml2),
			(u32)KVM_RS_S2_MAP_BREAK_SKIPPED);
	/* ... but not when not final, forced off, level 1, unknown subtree. */
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(blk, 0, tbl, blk, 2,
						   bbml2 & ~KVM_RS_S2_CAPS_FINAL),
			(u32)KVM_RS_S2_MAP_FULL_BBM);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(blk, 0, tbl, blk, 2,
						   bbml2 & ~KVM_RS_S2_CAPS_ENABLED),
			(u32)KVM_RS_S2_MAP_FULL_BBM);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(blk, 0, tbl, blk, 2,
						   1 | KVM_RS_S2_CAPS_FINAL |
						   KVM_RS_S2_CAPS_ENABLED),
			(u32)KVM_RS_S2_MAP_FULL_BBM);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(blk, 0, tbl, 0, 2, bbml2),
			(u32)KVM_RS_S2_MAP_FULL_BBM);
	/* Different output address: never skipped (seed 000 review). */
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(blk, 0, tbl,
						   s2_leaf(2, 0x80200000, S2_R | S2_W | S2_XN),
						   2, bbml2),
			(u32)KVM_RS_S2_MAP_FULL_BBM);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_map_decide(rw, 0, ro, 0, 9, 0),
			(u32)KVM_RS_S2_MAP_FULL_BBM);
}

static void kvm_rs_s2_test_tlbi_plan(struct kunit *test)
{
	u64 ro = s2_leaf(3, 0x80000000, S2_R | S2_XN);
	u64 rw = s2_leaf(3, 0x80000000, S2_R | S2_W | S2_XN);
	u64 blk = s2_leaf(2, 0x80000000, S2_R | S2_W | S2_XN);
	u64 tbl = 0x40000000 | S2_TYPE | KVM_PTE_VALID;

	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(0, rw, 3), (u32)KVM_RS_S2_TLBI_NONE);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(ro, rw, 3), (u32)KVM_RS_S2_TLBI_LOCAL_IPA);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(rw, rw, 3), (u32)KVM_RS_S2_TLBI_LOCAL_IPA);
	/* A restriction is broadcast, never local (seed 000 review). */
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(rw, ro, 3), (u32)KVM_RS_S2_TLBI_BCAST_IPA);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(rw, 0, 3), (u32)KVM_RS_S2_TLBI_BCAST_IPA);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(blk, tbl, 2), (u32)KVM_RS_S2_TLBI_BCAST_VMID);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(tbl, blk, 2), (u32)KVM_RS_S2_TLBI_BCAST_VMID);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_tlbi_plan(rw, ro, 5), (u32)KVM_RS_S2_TLBI_BCAST_VMID);
	KUNIT_EXPECT_EQ(test, kvm_rs_s2_stat(KVM_RS_S2_NR_EVENTS), 0ULL);
}

static struct kunit_case kvm_rs_s2_cases[] = {
	KUNIT_CASE(kvm_rs_s2_test_relax),
	KUNIT_CASE(kvm_rs_s2_test_map_decide),
	KUNIT_CASE(kvm_rs_s2_test_tlbi_plan),
	{}
};

static struct kunit_suite kvm_rs_s2_suite = {
	.name = "kvm_rs_s2",
	.test_cases = kvm_rs_s2_cases,
};

kunit_test_suites(&kvm_rs_s2_suite);
#endif /* CONFIG_ARM64 */

MODULE_DESCRIPTION("KUnit tests for kvm-rs");
MODULE_LICENSE("GPL");
