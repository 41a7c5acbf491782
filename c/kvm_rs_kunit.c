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

#ifdef CONFIG_X86
/*
 * x86 rmap suite: kvm-rs's rmap entry points on real kernel memory, with a
 * kzalloc-backed descriptor cache that counts what it hands out.
 */
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/slab.h>
#include "kvm_rs_rmap.h"

#define T_PRESENT	BIT_ULL(11)	/* SPTE_MMU_PRESENT_MASK */
#define T_ACCESSED	BIT_ULL(5)	/* shadow_accessed_mask without EPT */
#define T_YOUNG		(T_PRESENT | T_ACCESSED | 1)
#define T_NSPTES	40		/* three descriptors of 14 */

struct t_cache {
	atomic_t allocs, frees;
};

static void *t_alloc(void *ctx)
{
	struct t_cache *c = ctx;

	atomic_inc(&c->allocs);
	return kzalloc(KVM_RS_PTE_LIST_DESC_SIZE, GFP_ATOMIC);
}

static void t_free(void *ctx, void *desc)
{
	struct t_cache *c = ctx;

	atomic_inc(&c->frees);
	kfree(desc);
}

static const struct kvm_rs_age_params t_params = {
	.accessed_mask = T_ACCESSED,
	.acc_track_mask = 0,
};

static void kvm_rs_test_rmap_add_remove(struct kunit *test)
{
	struct t_cache c = {};
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &c };
	unsigned long head = 0;
	u64 *sptes;
	int i;

	sptes = kunit_kcalloc(test, T_NSPTES, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, sptes);
	for (i = 0; i < T_NSPTES; i++)
		KUNIT_EXPECT_EQ(test, kvm_rs_rmap_add(&head, &sptes[i], &ops), i);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_count(&head), T_NSPTES);
	KUNIT_EXPECT_EQ(test, head & KVM_RS_RMAP_LOCKED, 0);
	KUNIT_EXPECT_EQ(test, head & KVM_RS_RMAP_MANY, KVM_RS_RMAP_MANY);
	/* Remove from the middle, the ends, then the rest: tails stay full. */
	for (i = 13; i < T_NSPTES; i += 3)
		KUNIT_EXPECT_EQ(test, kvm_rs_rmap_remove(&head, &sptes[i], &ops), 0);
	for (i = 0; i < T_NSPTES; i++)
		if (i < 13 || (i - 13) % 3)
			KUNIT_EXPECT_EQ(test, kvm_rs_rmap_remove(&head, &sptes[i], &ops), 0);
	KUNIT_EXPECT_EQ(test, head, 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&c.allocs), atomic_read(&c.frees));
	KUNIT_EXPECT_GE(test, atomic_read(&c.allocs), 3);
}

static void kvm_rs_test_rmap_corruption(struct kunit *test)
{
	struct t_cache c = {};
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &c };
	unsigned long head = 0, before;
	u64 sptes[3] = {};

	/* Removing from an empty rmap or an absent SPTE is an error, not a crash. */
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_remove(&head, &sptes[0], &ops), -ENODATA);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_add(&head, &sptes[0], &ops), 0);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_remove(&head, &sptes[1], &ops), -ENOENT);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_add(&head, &sptes[1], &ops), 1);
	before = head;
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_remove(&head, &sptes[2], &ops), -ENOENT);
	KUNIT_EXPECT_EQ(test, head, before);
	/* A misaligned SPTE pointer would corrupt the flag bits. */
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_add(&head, (u64 *)((char *)&sptes[2] + 2), &ops), -EINVAL);
	KUNIT_EXPECT_EQ(test, head, before);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_zap_all(&head, NULL, NULL, &ops), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&c.allocs), atomic_read(&c.frees));
}

static void t_zap(void *ctx, u64 *sptep)
{
	(*(int *)ctx)++;
	WRITE_ONCE(*sptep, 0);
}

static void kvm_rs_test_rmap_zap_and_age(struct kunit *test)
{
	struct t_cache c = {};
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &c };
	unsigned long heads[4] = {};
	int i, zapped = 0;
	u64 *sptes;

	sptes = kunit_kcalloc(test, T_NSPTES, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, sptes);
	for (i = 0; i < T_NSPTES; i++) {
		sptes[i] = T_YOUNG;
		KUNIT_EXPECT_GE(test, kvm_rs_rmap_add(&heads[i % 3], &sptes[i], &ops), 0);
	}
	/* test_only reports young and writes nothing. */
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_age(heads, 4, true, &t_params, NULL, NULL), 1);
	for (i = 0; i < T_NSPTES; i++)
		KUNIT_EXPECT_EQ(test, sptes[i], T_YOUNG);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_age(heads, 4, false, &t_params, NULL, NULL), 1);
	for (i = 0; i < T_NSPTES; i++)
		KUNIT_EXPECT_EQ(test, sptes[i], T_YOUNG & ~T_ACCESSED);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_age(heads, 4, false, &t_params, NULL, NULL), 0);
	/* A non-present SPTE is skipped, never made young or old. */
	sptes[0] = T_ACCESSED;
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_age(heads, 1, false, &t_params, NULL, NULL), 0);
	KUNIT_EXPECT_EQ(test, sptes[0], T_ACCESSED);
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_EQ(test, kvm_rs_rmap_zap_all(&heads[i], t_zap, &zapped, &ops), i < 3);
	KUNIT_EXPECT_EQ(test, zapped, T_NSPTES);
	KUNIT_EXPECT_EQ(test, atomic_read(&c.allocs), atomic_read(&c.frees));
	KUNIT_EXPECT_GT(test, kvm_rs_age_stat(KVM_RS_AGE_PASSES), 0);
}

/* A kthread writer churning chains while this thread ages them locklessly. */
struct t_race {
	unsigned long heads[8];
	u64 *sptes;
	struct t_cache c;
	int errors;
	unsigned long rounds;
	struct completion done;
	bool stop;
};

static int t_writer(void *arg)
{
	struct t_race *r = arg;
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &r->c };
	int i;

	while (!READ_ONCE(r->stop)) {
		for (i = 0; i < T_NSPTES; i++)
			if (kvm_rs_rmap_add(&r->heads[i % 8], &r->sptes[i], &ops) < 0)
				r->errors++;
		for (i = T_NSPTES - 1; i >= 0; i--)
			if (kvm_rs_rmap_remove(&r->heads[i % 8], &r->sptes[i], &ops))
				r->errors++;
		r->rounds++;
		cond_resched();
	}
	complete(&r->done);
	return 0;
}

static void kvm_rs_test_rmap_race(struct kunit *test)
{
	struct t_race *r = kunit_kzalloc(test, sizeof(*r), GFP_KERNEL);
	unsigned long end = jiffies + msecs_to_jiffies(300), passes = 0;
	struct task_struct *t;
	int i, ret;

	KUNIT_ASSERT_NOT_NULL(test, r);
	r->sptes = kunit_kcalloc(test, T_NSPTES, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r->sptes);
	for (i = 0; i < T_NSPTES; i++)
		r->sptes[i] = T_YOUNG;
	init_completion(&r->done);
	t = kthread_run(t_writer, r, "kvm_rs_kunit_writer");
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	while (time_before(jiffies, end)) {
		ret = kvm_rs_rmap_age(r->heads, 8, false, &t_params, NULL, NULL);
		KUNIT_EXPECT_GE(test, ret, 0);
		passes++;
		cond_resched();
	}
	WRITE_ONCE(r->stop, true);
	wait_for_completion(&r->done);
	KUNIT_EXPECT_EQ(test, r->errors, 0);
	KUNIT_EXPECT_GT(test, r->rounds, 0);
	KUNIT_EXPECT_GT(test, passes, 0);
	for (i = 0; i < 8; i++)
		KUNIT_EXPECT_EQ(test, r->heads[i], 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&r->c.allocs), atomic_read(&r->c.frees));
	kunit_info(test, "writer rounds %lu, aging passes %lu\n", r->rounds, passes);
}

/*
 * The read-only side of the bit is a bit spinlock: the ager's hook for an
 * access-tracked SPTE runs while the bit is held, so it sees preemption
 * disabled (visible in preempt_count() with CONFIG_PREEMPT_COUNT). The
 * hook then plays a writer that ignores the bit and changes the head: the
 * unlock must report it (-EBUSY), leave the head unlocked without
 * overwriting the foreign value, and re-enable preemption.
 */
struct t_rogue {
	unsigned long *head;
	unsigned long foreign;
	int base_count, calls, held_preempt_off;
};

static void t_rogue_writer(void *ctx, u64 old_spte)
{
	struct t_rogue *r = ctx;

	r->calls++;
	if (preempt_count() > r->base_count)
		r->held_preempt_off++;
	WRITE_ONCE(*r->head, r->foreign);
}

static const struct kvm_rs_age_params t_ept_params = {
	.accessed_mask = BIT_ULL(8),
	.acc_track_mask = 0x7,
};

/* A/D-disabled (EPT, nested without A/D) young SPTE: present, RWX. */
#define T_NOAD_YOUNG	(T_PRESENT | KVM_RS_SPTE_TDP_AD_DISABLED | 0x7)

static void kvm_rs_test_rmap_unlock_changed(struct kunit *test)
{
	struct t_cache c = {};
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &c };
	unsigned long head = 0;
	u64 *sptes;
	struct t_rogue r = {
		.head = &head,
		.foreign = 0x1000 | KVM_RS_RMAP_LOCKED,
		.base_count = preempt_count(),
	};

	sptes = kunit_kcalloc(test, 2, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, sptes);
	sptes[0] = T_NOAD_YOUNG;
	KUNIT_ASSERT_EQ(test, kvm_rs_rmap_add(&head, &sptes[0], &ops), 0);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_age(&head, 1, false, &t_ept_params,
					      t_rogue_writer, &r), -EBUSY);
	KUNIT_EXPECT_EQ(test, r.calls, 1);
	KUNIT_EXPECT_EQ(test, preempt_count(), r.base_count);
	/* Unlocked; the foreign value itself is left alone. */
	KUNIT_EXPECT_EQ(test, head, 0x1000UL);
	/* The SPTE was made access-tracked (R/X saved, RWX cleared). */
	KUNIT_EXPECT_EQ(test, sptes[0] & 0x7, 0ULL);
	head = 0;
	KUNIT_EXPECT_EQ(test, atomic_read(&c.allocs), atomic_read(&c.frees));
}

/* Ages *@spte from the value it holds, as the TDP MMU walk does. */
static int t_age_spte(u64 *spte, bool test_only,
		      const struct kvm_rs_age_params *p)
{
	return kvm_rs_age_spte(spte, READ_ONCE(*spte), test_only, p);
}

/* Records whether preemption is off while the ager holds the bit. */
static void t_preempt_probe(void *ctx, u64 old_spte)
{
	struct t_rogue *r = ctx;

	r->calls++;
	if (preempt_count() > r->base_count)
		r->held_preempt_off++;
}

/*
 * The read-only side holds the bit with preemption disabled (the hook for
 * an access-tracked SPTE runs while the bit is held). Only observable with
 * CONFIG_PREEMPT_COUNT (the DEBUG=1 and DEBUG=kcsan kernels, which are
 * preemptible): skipped elsewhere rather than passing vacuously. The
 * writer side is checked by the host tests (rust/host/tests/rmap_unit.rs).
 */
static void kvm_rs_test_bit_held_preempt_off(struct kunit *test)
{
	struct t_cache c = {};
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &c };
	unsigned long head = 0;
	struct t_rogue r = { .base_count = preempt_count() };
	u64 *sptes;
	int i;

	if (!IS_ENABLED(CONFIG_PREEMPT_COUNT))
		kunit_skip(test, "preempt_count() is not maintained without CONFIG_PREEMPT_COUNT");
	sptes = kunit_kcalloc(test, 20, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, sptes);
	for (i = 0; i < 20; i++) {
		sptes[i] = T_NOAD_YOUNG;
		KUNIT_ASSERT_GE(test, kvm_rs_rmap_add(&head, &sptes[i], &ops), 0);
		KUNIT_EXPECT_EQ(test, preempt_count(), r.base_count);
	}
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_age(&head, 1, false, &t_ept_params,
					      t_preempt_probe, &r), 1);
	KUNIT_EXPECT_EQ(test, r.calls, 20);
	KUNIT_EXPECT_EQ(test, r.held_preempt_off, 20);
	KUNIT_EXPECT_EQ(test, preempt_count(), r.base_count);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_zap_all(&head, NULL, NULL, &ops), 1);
	KUNIT_EXPECT_EQ(test, preempt_count(), r.base_count);
}

/* kvm_rs_age_spte(), the rule the TDP MMU's lockless walk calls. */
static void kvm_rs_test_age_spte(struct kunit *test)
{
	u64 *spte = kunit_kzalloc(test, sizeof(u64), GFP_KERNEL);
	u64 leaf, nonleaf;

	KUNIT_ASSERT_NOT_NULL(test, spte);
	/* A/D enabled: test-only writes nothing, aging clears Accessed. */
	*spte = T_PRESENT | BIT_ULL(8) | 0x7;
	KUNIT_EXPECT_EQ(test, t_age_spte(spte, true, &t_ept_params), KVM_RS_SPTE_YOUNG);
	KUNIT_EXPECT_EQ(test, *spte, T_PRESENT | BIT_ULL(8) | 0x7);
	KUNIT_EXPECT_EQ(test, t_age_spte(spte, false, &t_ept_params), KVM_RS_SPTE_CLEARED);
	KUNIT_EXPECT_EQ(test, *spte, T_PRESENT | 0x7);
	KUNIT_EXPECT_EQ(test, t_age_spte(spte, false, &t_ept_params), KVM_RS_SPTE_OLD);
	/* A/D disabled: made access-tracked (R/X saved at bit 54). */
	*spte = T_NOAD_YOUNG | BIT_ULL(1);
	KUNIT_EXPECT_EQ(test, t_age_spte(spte, false, &t_ept_params), KVM_RS_SPTE_TRACKED);
	KUNIT_EXPECT_EQ(test, *spte & 0x7, 0ULL);
	KUNIT_EXPECT_EQ(test, *spte >> 54 & 0x5, 0x5ULL);
	KUNIT_EXPECT_EQ(test, t_age_spte(spte, false, &t_ept_params), KVM_RS_SPTE_OLD);
	/* A frozen SPTE (both Accessed positions set) is never touched. */
	*spte = KVM_RS_FROZEN_SPTE;
	KUNIT_EXPECT_EQ(test, t_age_spte(spte, false, &t_ept_params), KVM_RS_SPTE_OLD);
	KUNIT_EXPECT_EQ(test, t_age_spte(spte, false, &t_params), KVM_RS_SPTE_OLD);
	KUNIT_EXPECT_EQ(test, *spte, (u64)KVM_RS_FROZEN_SPTE);
	/*
	 * The walk read a young huge leaf, which was then split into a
	 * non-leaf (A/D-disabled, RWX set) before the rule ran: the rule
	 * decides on the value the walk checked and must not touch the
	 * non-leaf (access-tracking it would make its subtree not present).
	 */
	leaf = T_NOAD_YOUNG | BIT_ULL(7) | (0x200ULL << 12);
	nonleaf = T_NOAD_YOUNG | (0x1234ULL << 12);
	*spte = nonleaf;
	KUNIT_EXPECT_EQ(test, kvm_rs_age_spte(spte, leaf, false, &t_ept_params),
			KVM_RS_SPTE_LOST);
	KUNIT_EXPECT_EQ(test, *spte, nonleaf);
	/* Likewise for an A/D-enabled SPTE that changed under the walk. */
	*spte = T_PRESENT | 0x7;
	KUNIT_EXPECT_EQ(test, kvm_rs_age_spte(spte, T_PRESENT | BIT_ULL(8) | 0x7,
					      false, &t_ept_params),
			KVM_RS_SPTE_LOST);
	KUNIT_EXPECT_EQ(test, *spte, T_PRESENT | 0x7);
}

/*
 * An ager racing a writer that zaps: the writer installs SPTEs in a freshly
 * allocated "page table", adds them to rmaps, then clears them, removes them
 * from the rmaps and "frees" the table. The lockless ager may only touch a
 * table while one of its SPTEs is in a locked rmap. Freed tables are first
 * parked in a small graveyard, filled with a young sentinel as if reused
 * for another mapping: an ager that still touched a table after its free
 * would age the sentinel, which the writer checks before it really frees
 * the table (so the test fails without KASAN too; with KASAN, any access
 * after the real kfree() is also reported).
 */
#define T_PT_SPTES	64
#define T_PT_HEADS	16
#define T_PT_GRAVES	8
#define T_SENTINEL	(T_YOUNG | (0x5e0ULL << 12))

/* Returns the number of sentinel SPTEs that were changed; frees @pt. */
static int t_bury(u64 *pt)
{
	int i, bad = 0;

	if (!pt)
		return 0;
	for (i = 0; i < T_PT_SPTES; i++)
		bad += READ_ONCE(pt[i]) != T_SENTINEL;
	memset(pt, 0x6b, T_PT_SPTES * sizeof(u64));
	kfree(pt);
	return bad;
}

/*
 * Starts @fn on CPU @idx (0 or 1) of the online CPUs, so that the two
 * sides of a race really run at the same time when the machine (or the
 * emulator: multi-threaded TCG) has two CPUs.
 */
static struct task_struct *t_kthread_on(int (*fn)(void *), void *arg, int idx)
{
	unsigned int cpu = cpumask_first(cpu_online_mask);
	struct task_struct *t;

	if (idx && cpumask_next(cpu, cpu_online_mask) < nr_cpu_ids)
		cpu = cpumask_next(cpu, cpu_online_mask);
	t = kthread_create(fn, arg, "kvm_rs_kunit/%u", cpu);
	if (!IS_ERR(t)) {
		kthread_bind(t, cpu);
		wake_up_process(t);
	}
	return t;
}

struct t_zap_race {
	unsigned long heads[T_PT_HEADS];
	struct t_cache c;
	atomic_long_t passes, young;
	unsigned long rounds, overlapped, end;
	int errors, werrors, touched_after_free;
	u64 *graves[T_PT_GRAVES];
	struct completion done, wdone;
	bool stop;
};

static int t_zap_ager(void *arg)
{
	struct t_zap_race *r = arg;
	int ret;

	while (!READ_ONCE(r->stop)) {
		ret = kvm_rs_rmap_age(r->heads, T_PT_HEADS, false, &t_params, NULL, NULL);
		if (ret < 0)
			r->errors++;
		else if (ret)
			atomic_long_inc(&r->young);
		atomic_long_inc(&r->passes);
		cond_resched();
	}
	complete(&r->done);
	return 0;
}

/* The only writer of the heads (standing in for mmu_lock held for write). */
static int t_zap_writer(void *arg)
{
	struct t_zap_race *r = arg;
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &r->c };
	long before;
	u64 *pt;
	int i;

	while (time_before(jiffies, r->end)) {
		pt = kmalloc_array(T_PT_SPTES, sizeof(u64), GFP_KERNEL);
		if (!pt)
			break;
		before = atomic_long_read(&r->passes);
		for (i = 0; i < T_PT_SPTES; i++) {
			WRITE_ONCE(pt[i], T_YOUNG);
			if (kvm_rs_rmap_add(&r->heads[i % T_PT_HEADS], &pt[i], &ops) < 0)
				r->werrors++;
		}
		/* Zap: clear each SPTE, then take it out of its rmap. */
		for (i = 0; i < T_PT_SPTES; i++) {
			WRITE_ONCE(pt[i], KVM_RS_SHADOW_NONPRESENT_VALUE);
			if (kvm_rs_rmap_remove(&r->heads[i % T_PT_HEADS], &pt[i], &ops))
				r->werrors++;
		}
		if (atomic_long_read(&r->passes) != before)
			r->overlapped++;
		/* "Free" the table: reused for another mapping, then freed. */
		for (i = 0; i < T_PT_SPTES; i++)
			WRITE_ONCE(pt[i], T_SENTINEL);
		i = r->rounds % T_PT_GRAVES;
		r->touched_after_free += t_bury(r->graves[i]);
		r->graves[i] = pt;
		r->rounds++;
		cond_resched();
	}
	complete(&r->wdone);
	return 0;
}

static void kvm_rs_test_ager_vs_zap_free(struct kunit *test)
{
	struct t_zap_race *r = kunit_kzalloc(test, sizeof(*r), GFP_KERNEL);
	struct task_struct *t;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, r);
	init_completion(&r->done);
	init_completion(&r->wdone);
	r->end = jiffies + msecs_to_jiffies(500);
	t = t_kthread_on(t_zap_ager, r, 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	t = t_kthread_on(t_zap_writer, r, 0);
	if (IS_ERR(t))
		r->werrors++;
	else
		wait_for_completion(&r->wdone);
	WRITE_ONCE(r->stop, true);
	wait_for_completion(&r->done);
	for (i = 0; i < T_PT_GRAVES; i++)
		r->touched_after_free += t_bury(r->graves[i]);
	KUNIT_EXPECT_EQ(test, r->errors, 0);
	KUNIT_EXPECT_EQ(test, r->werrors, 0);
	KUNIT_EXPECT_EQ(test, r->touched_after_free, 0);
	KUNIT_EXPECT_GT(test, r->rounds, 0UL);
	/* The ager really ran while tables were live (not before or after). */
	KUNIT_EXPECT_GT(test, r->overlapped, 0UL);
	for (i = 0; i < T_PT_HEADS; i++)
		KUNIT_EXPECT_EQ(test, r->heads[i], 0UL);
	KUNIT_EXPECT_EQ(test, atomic_read(&r->c.allocs), atomic_read(&r->c.frees));
	kunit_info(test, "writer rounds %lu (%lu overlapped), aging passes %ld (%ld young)\n",
		   r->rounds, r->overlapped, atomic_long_read(&r->passes),
		   atomic_long_read(&r->young));
}

/*
 * The A/D-disabled cmpxchg against a concurrent SPTE writer (a fast page
 * fault or a zap): the ager only ever replaces the exact value it read, so
 * the writer's last value survives, possibly made access-tracked, and is
 * never replaced by an access-tracked copy of an older value.
 */
struct t_noad_race {
	unsigned long head;
	u64 *spte;
	u64 last;
	unsigned long end, passes, young;
	int errors;
	struct completion done, adone;
	bool stop;
};

static u64 t_noad_value(u64 k)
{
	return T_NOAD_YOUNG | ((k & 0xfffff) << 12);
}

static int t_noad_writer(void *arg)
{
	struct t_noad_race *r = arg;
	u64 k;

	for (k = 1; !READ_ONCE(r->stop); k++) {
		WRITE_ONCE(*r->spte, t_noad_value(k));
		r->last = t_noad_value(k);
		if (!(k & 63))
			cond_resched();
	}
	complete(&r->done);
	return 0;
}

static int t_noad_ager(void *arg)
{
	struct t_noad_race *r = arg;
	int ret;

	while (time_before(jiffies, r->end)) {
		ret = kvm_rs_rmap_age(&r->head, 1, false, &t_ept_params, NULL, NULL);
		if (ret < 0)
			r->errors++;
		r->young += ret > 0;
		r->passes++;
		cond_resched();
	}
	complete(&r->adone);
	return 0;
}

static void kvm_rs_test_noad_vs_writer(struct kunit *test)
{
	struct t_noad_race *r = kunit_kzalloc(test, sizeof(*r), GFP_KERNEL);
	struct t_cache c = {};
	const struct kvm_rs_desc_ops ops = { t_alloc, t_free, &c };
	u64 lost0 = kvm_rs_age_stat(KVM_RS_AGE_CMPXCHG_FAILED), v, saved;
	struct task_struct *t;

	KUNIT_ASSERT_NOT_NULL(test, r);
	r->spte = kunit_kzalloc(test, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r->spte);
	*r->spte = t_noad_value(0);
	KUNIT_ASSERT_EQ(test, kvm_rs_rmap_add(&r->head, r->spte, &ops), 0);
	init_completion(&r->done);
	init_completion(&r->adone);
	r->end = jiffies + msecs_to_jiffies(300);
	t = t_kthread_on(t_noad_writer, r, 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	t = t_kthread_on(t_noad_ager, r, 0);
	if (IS_ERR(t))
		r->errors++;
	else
		wait_for_completion(&r->adone);
	WRITE_ONCE(r->stop, true);
	wait_for_completion(&r->done);
	v = READ_ONCE(*r->spte);
	/* The access-tracked form keeps R/X above bit 54 and clears RWX. */
	saved = ((r->last & 0x5) << 54);
	KUNIT_EXPECT_TRUE(test, v == r->last || v == ((r->last | saved) & ~0x7ULL));
	KUNIT_EXPECT_EQ(test, r->errors, 0);
	KUNIT_EXPECT_GT(test, r->young, 0UL);
	KUNIT_EXPECT_EQ(test, kvm_rs_rmap_remove(&r->head, r->spte, &ops), 0);
	kunit_info(test, "aging passes %lu (%lu young), lost cmpxchgs %llu\n",
		   r->passes, r->young,
		   kvm_rs_age_stat(KVM_RS_AGE_CMPXCHG_FAILED) - lost0);
}

static struct kunit_case kvm_rs_rmap_cases[] = {
	KUNIT_CASE(kvm_rs_test_rmap_add_remove),
	KUNIT_CASE(kvm_rs_test_rmap_corruption),
	KUNIT_CASE(kvm_rs_test_rmap_zap_and_age),
	KUNIT_CASE(kvm_rs_test_rmap_race),
	KUNIT_CASE(kvm_rs_test_rmap_unlock_changed),
	KUNIT_CASE(kvm_rs_test_bit_held_preempt_off),
	KUNIT_CASE(kvm_rs_test_age_spte),
	KUNIT_CASE_SLOW(kvm_rs_test_ager_vs_zap_free),
	KUNIT_CASE_SLOW(kvm_rs_test_noad_vs_writer),
	{}
};

static struct kunit_suite kvm_rs_rmap_suite = {
	.name = "kvm_rs_rmap",
	.test_cases = kvm_rs_rmap_cases,
};

kunit_test_suites(&kvm_rs_rmap_suite);
#endif /* CONFIG_X86 */

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
