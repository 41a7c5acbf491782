/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by kvm-rs's arm64 stage-2 selftests: reading kvm-rs's state from
 * debugfs.
 */
#ifndef KVM_RS_S2_UTIL_H
#define KVM_RS_S2_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

/*
 * One value of /sys/kernel/debug/kvm_rs/s2/all ("name value" lines: the
 * switches, "active", the FEAT_BBM level and the counters). Fails the test
 * if the file or the key is missing.
 */
static inline uint64_t s2_all(const char *key)
{
	FILE *f = fopen("/sys/kernel/debug/kvm_rs/s2/all", "r");
	char name[64];
	uint64_t v;

	TEST_ASSERT(f, "no /sys/kernel/debug/kvm_rs/s2/all (debugfs, kvm-rs?)");
	while (fscanf(f, "%63s %lu", name, &v) == 2) {
		if (!strcmp(name, key)) {
			fclose(f);
			return v;
		}
	}
	fclose(f);
	TEST_FAIL("no '%s' in kvm_rs/s2/all", key);
	return 0;
}

#endif /* KVM_RS_S2_UTIL_H */
