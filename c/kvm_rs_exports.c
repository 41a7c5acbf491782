// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-rs: C half of the module. A Rust object cannot export symbols by
 * itself in 6.12, so the entry points declared in include/kvm_rs.h are
 * exported from here for kvm.ko and the KUnit suite.
 */
#include <linux/debugfs.h>
#include <linux/export.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include "kvm_rs.h"
#include "kvm_rs_rmap.h"

EXPORT_SYMBOL_GPL(kvm_rs_abi_version);

/* x86 shadow-MMU rmaps and lockless aging (include/kvm_rs_rmap.h). */
EXPORT_SYMBOL_GPL(kvm_rs_rmap_add);
EXPORT_SYMBOL_GPL(kvm_rs_rmap_remove);
EXPORT_SYMBOL_GPL(kvm_rs_rmap_zap_all);
EXPORT_SYMBOL_GPL(kvm_rs_rmap_count);
EXPORT_SYMBOL_GPL(kvm_rs_rmap_age);
EXPORT_SYMBOL_GPL(kvm_rs_age_spte);
EXPORT_SYMBOL_GPL(kvm_rs_age_stat);
EXPORT_SYMBOL_GPL(kvm_rs_age_count);
EXPORT_SYMBOL_GPL(kvm_rs_lockless_aging);

#ifdef CONFIG_KVM_RS_AB_TEST
/* Storage is the Rust static of the same name (an AtomicU32). */
module_param_named(lockless_aging, kvm_rs_lockless_aging, uint, 0644);
MODULE_PARM_DESC(lockless_aging,
		 "Test only: x86 aging notifiers: 1 = kvm-rs, without mmu_lock (default), 0 = the 6.12 path under mmu_lock");
#endif

/*
 * The lock bit of an rmap head is a bit spinlock: the Rust core disables
 * preemption around every hold (read-only side and writer side alike).
 */
void kvm_rs_preempt_disable(void)
{
	preempt_disable();
}

void kvm_rs_preempt_enable(void)
{
	preempt_enable();
}

/* Storage is the Rust static of the same name (an AtomicU32). */
module_param_named(verbose, kvm_rs_verbose, uint, 0644);
MODULE_PARM_DESC(verbose, "Log kvm-rs details at load time (0/1)");

/* Aging counters, per CPU: concurrent agers never share their cache line. */
struct kvm_rs_age_pcpu {
	u64 v[KVM_RS_AGE_NR_STATS];
};
static DEFINE_PER_CPU(struct kvm_rs_age_pcpu, kvm_rs_age_pcpu);

void kvm_rs_age_count(u32 stat, u64 n)
{
	if (!WARN_ON_ONCE(stat >= KVM_RS_AGE_NR_STATS))
		this_cpu_add(kvm_rs_age_pcpu.v[stat], n);
}

void kvm_rs_age_account(u64 visited, u64 young, u64 cmpxchg_failed, u64 spins)
{
	this_cpu_inc(kvm_rs_age_pcpu.v[KVM_RS_AGE_PASSES]);
	if (visited)
		this_cpu_add(kvm_rs_age_pcpu.v[KVM_RS_AGE_RMAPS_VISITED], visited);
	if (young)
		this_cpu_add(kvm_rs_age_pcpu.v[KVM_RS_AGE_YOUNG], young);
	if (cmpxchg_failed)
		this_cpu_add(kvm_rs_age_pcpu.v[KVM_RS_AGE_CMPXCHG_FAILED], cmpxchg_failed);
	if (spins)
		this_cpu_add(kvm_rs_age_pcpu.v[KVM_RS_AGE_LOCK_SPINS], spins);
}

u64 kvm_rs_age_stat(u32 stat)
{
	u64 sum = 0;
	int cpu;

	if (stat >= KVM_RS_AGE_NR_STATS)
		return 0;
	/* Other CPUs add to their counters meanwhile: a snapshot is enough. */
	for_each_possible_cpu(cpu)
		sum += READ_ONCE(per_cpu(kvm_rs_age_pcpu, cpu).v[stat]);
	return sum;
}

#ifdef CONFIG_X86
static const char *const kvm_rs_age_stat_names[KVM_RS_AGE_NR_STATS] = {
	[KVM_RS_AGE_PASSES]		= "passes",
	[KVM_RS_AGE_RMAPS_VISITED]	= "rmaps_visited",
	[KVM_RS_AGE_YOUNG]		= "young",
	[KVM_RS_AGE_CMPXCHG_FAILED]	= "cmpxchg_failed",
	[KVM_RS_AGE_LOCK_SPINS]		= "lock_spins",
	[KVM_RS_AGE_TDP_PASSES]		= "tdp_passes",
	[KVM_RS_AGE_TDP_YOUNG]		= "tdp_young",
	[KVM_RS_AGE_LOCKED_CALLS]	= "locked_calls",
};

static int kvm_rs_age_stat_get(void *data, u64 *val)
{
	*val = kvm_rs_age_stat((uintptr_t)data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(kvm_rs_age_stat_fops, kvm_rs_age_stat_get, NULL, "%llu\n");
#endif

static struct dentry *kvm_rs_debugfs_aging;

int kvm_rs_c_init(void);
int kvm_rs_c_init(void)
{
	struct dentry *top;
	uintptr_t i;

	/* The C and Rust halves must agree on the ABI of the headers. */
	if (kvm_rs_abi_version() != KVM_RS_ABI_VERSION)
		return -EINVAL;

	top = debugfs_lookup("kvm_rs", NULL);
	if (!top)
		top = debugfs_create_dir("kvm_rs", NULL);
	else
		dput(top);	/* debugfs_lookup() took a reference */
#ifdef CONFIG_X86
	kvm_rs_debugfs_aging = debugfs_create_dir("aging", top);
	for (i = 0; i < KVM_RS_AGE_NR_STATS; i++)
		debugfs_create_file_unsafe(kvm_rs_age_stat_names[i], 0444,
					   kvm_rs_debugfs_aging, (void *)i,
					   &kvm_rs_age_stat_fops);
#endif
	return 0;
}

void kvm_rs_c_exit(void);
void kvm_rs_c_exit(void)
{
	debugfs_remove_recursive(kvm_rs_debugfs_aging);
	/* The module owns kvm_rs/ on x86 (on arm64 it is built in, never unloaded). */
	debugfs_lookup_and_remove("kvm_rs", NULL);
}
