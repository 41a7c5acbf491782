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

static struct kunit_case kvm_rs_ffi_cases[] = {
	KUNIT_CASE(kvm_rs_test_abi_version),
	{}
};

static struct kunit_suite kvm_rs_ffi_suite = {
	.name = "kvm_rs_ffi",
	.test_cases = kvm_rs_ffi_cases,
};

kunit_test_suites(&kvm_rs_ffi_suite);

MODULE_DESCRIPTION("KUnit tests for kvm-rs");
MODULE_LICENSE("GPL");
