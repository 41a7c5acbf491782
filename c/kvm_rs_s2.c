// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-rs arm64 stage-2: the C half. Module parameters (storage in
 * rust/s2_ffi.rs), the FEAT_BBM level seen after the system capabilities
 * are final, the debugfs counters (kvm_rs/s2/) and the exports of the
 * pure helpers for the KUnit suite.
 */
#include <linux/debugfs.h>
#include <linux/export.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <asm/cpufeature.h>
#include <asm/sysreg.h>
#include "kvm_rs_s2.h"

EXPORT_SYMBOL_GPL(kvm_rs_s2_map_decide);
EXPORT_SYMBOL_GPL(kvm_rs_s2_tlbi_plan);
EXPORT_SYMBOL_GPL(kvm_rs_s2_relax);
EXPORT_SYMBOL_GPL(kvm_rs_s2_stat);

module_param_named(s2_mode, kvm_rs_s2_mode, uint, 0644);
MODULE_PARM_DESC(s2_mode,
		 "arm64 stage-2 fault path: 0 = 6.12's C decisions, 1 = kvm-rs's (default)");
module_param_named(s2_bbml2, kvm_rs_s2_bbml2, uint, 0644);
MODULE_PARM_DESC(s2_bbml2,
		 "Allow skipping the break of a block-size change with FEAT_BBM level 2 (0 = forced off, default)");

module_param_named(s2_inject_conflict, kvm_rs_s2_inject_conflict, uint, 0644);
MODULE_PARM_DESC(s2_inject_conflict,
		 "Test hook: handle the next N stage-2 aborts as TLB conflict aborts (default 0)");

static const char *const kvm_rs_s2_ev_names[KVM_RS_S2_NR_EVENTS] = {
	[KVM_RS_S2_EV_RELAXED]		= "relaxed",
	[KVM_RS_S2_EV_RELAX_UNCHANGED]	= "relax_unchanged",
	[KVM_RS_S2_EV_RELAX_EAGAIN]	= "relax_eagain",
	[KVM_RS_S2_EV_DEFERRED]		= "deferred",
	[KVM_RS_S2_EV_INSTALL]		= "install",
	[KVM_RS_S2_EV_FULL_BBM]		= "full_bbm",
	[KVM_RS_S2_EV_BREAK_SKIPPED]	= "break_skipped",
	[KVM_RS_S2_EV_TLBI_LOCAL]	= "tlbi_local",
	[KVM_RS_S2_EV_TLBI_BCAST_IPA]	= "tlbi_bcast_ipa",
	[KVM_RS_S2_EV_TLBI_BCAST_VMID]	= "tlbi_bcast_vmid",
	[KVM_RS_S2_EV_TLBI_BCAST_RANGE]	= "tlbi_bcast_range",
	[KVM_RS_S2_EV_CONFLICT_ABORT]	= "conflict_abort",
	[KVM_RS_S2_EV_BUG]		= "bug",
};

static int kvm_rs_s2_stat_get(void *data, u64 *val)
{
	*val = kvm_rs_s2_stat((u32)(uintptr_t)data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(kvm_rs_s2_stat_fops, kvm_rs_s2_stat_get, NULL, "%llu\n");

/*
 * kvm-rs describes the 4K granule with a 48-bit output address only; with
 * LPA2 (52-bit stage 2) pgtable.c keeps 6.12's decisions whatever s2_mode
 * says (its stage2_rs_active() makes the same test).
 */
static bool kvm_rs_s2_format_ok(void)
{
	return IS_ENABLED(CONFIG_ARM64_4K_PAGES) && !system_supports_lpa2();
}

/* All counters and the mode in one file: "name value" per line. */
static int kvm_rs_s2_all_show(struct seq_file *m, void *v)
{
	u32 i;

	seq_printf(m, "mode %u\n", READ_ONCE(kvm_rs_s2_mode));
	/* Whether faults really follow kvm-rs's decisions now. */
	seq_printf(m, "active %u\n",
		   READ_ONCE(kvm_rs_s2_mode) && kvm_rs_s2_format_ok());
	seq_printf(m, "bbm_level %u\n",
		   READ_ONCE(kvm_rs_s2_hwcaps) & KVM_RS_S2_CAPS_BBM_MASK);
	seq_printf(m, "bbml2_enabled %u\n", !!READ_ONCE(kvm_rs_s2_bbml2));
	for (i = 0; i < KVM_RS_S2_NR_EVENTS; i++)
		if (kvm_rs_s2_ev_names[i])
			seq_printf(m, "%s %llu\n", kvm_rs_s2_ev_names[i],
				   kvm_rs_s2_stat(i));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kvm_rs_s2_all);

/*
 * Runs after smp_init() has finalised the system capabilities, so the
 * sanitised ID_AA64MMFR2_EL1 is the value every CPU (including any late
 * one, which must match it to come online) agrees on.
 */
static int __init __maybe_unused kvm_rs_s2_init(void)
{
	struct dentry *top, *dir;
	u64 mmfr2;
	u32 bbm, caps;
	bool final;
	u32 i;

	final = system_capabilities_finalized();
	mmfr2 = read_sanitised_ftr_reg(SYS_ID_AA64MMFR2_EL1);
	bbm = cpuid_feature_extract_unsigned_field(mmfr2, ID_AA64MMFR2_EL1_BBM_SHIFT);
	caps = (bbm & KVM_RS_S2_CAPS_BBM_MASK) | (final ? KVM_RS_S2_CAPS_FINAL : 0);
	WRITE_ONCE(kvm_rs_s2_hwcaps, caps);
	pr_info("kvm_rs: s2: ID_AA64MMFR2_EL1.BBM = %u (sanitised, caps %s), break skip %s, decisions: %s\n",
		bbm, final ? "final" : "NOT final",
		READ_ONCE(kvm_rs_s2_bbml2) ? "allowed" : "forced off",
		!kvm_rs_s2_format_ok() ?
		"6.12 C (LPA2 or not 4K: kvm-rs handles 48-bit OA, 4K only)" :
		READ_ONCE(kvm_rs_s2_mode) ? "kvm-rs" : "6.12 C");

	top = debugfs_lookup("kvm_rs", NULL);
	if (!top)
		top = debugfs_create_dir("kvm_rs", NULL);
	else
		dput(top);	/* debugfs_lookup() took a reference */
	dir = debugfs_create_dir("s2", top);
	for (i = 0; i < KVM_RS_S2_NR_EVENTS; i++)
		if (kvm_rs_s2_ev_names[i])
			debugfs_create_file_unsafe(kvm_rs_s2_ev_names[i], 0444, dir,
						   (void *)(uintptr_t)i,
						   &kvm_rs_s2_stat_fops);
	debugfs_create_file("all", 0444, dir, NULL, &kvm_rs_s2_all_fops);
	return 0;
}

/*
 * Only built in (KVM is built in on arm64, and pgtable.c calls kvm-rs only
 * when IS_BUILTIN(CONFIG_KVM_RS)); as a module the Rust module! owns the
 * init function, and nothing would consult these decisions anyway.
 */
#ifndef MODULE
late_initcall(kvm_rs_s2_init);
#endif
