// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-rs: C half of the module. A Rust object cannot export symbols by
 * itself in 6.12, so the entry points declared in include/kvm_rs.h are
 * exported from here for kvm.ko and the KUnit suite.
 */
#include <linux/export.h>
#include <linux/module.h>
#include "kvm_rs.h"

EXPORT_SYMBOL_GPL(kvm_rs_abi_version);

/* Storage is the Rust static of the same name (an AtomicU32). */
module_param_named(verbose, kvm_rs_verbose, uint, 0644);
MODULE_PARM_DESC(verbose, "Log kvm-rs details at load time (0/1)");

/*
 * Called from the Rust module init: proves that C in this module links
 * against the Rust object and sees the same ABI as the header.
 */
int kvm_rs_c_selfcheck(void);
int kvm_rs_c_selfcheck(void)
{
	return kvm_rs_abi_version() == KVM_RS_ABI_VERSION ? 0 : -EINVAL;
}
