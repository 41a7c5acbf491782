// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_rs_smoke_test: kvm-rs is present, and guest memory stays coherent
 * across host-side zaps (MMU-notifier invalidation) and refaults.
 *
 * The guest writes a per-page, per-round pattern; the host checks it, then
 * drops the pages with MADV_DONTNEED, which zaps the stage-2/NPT mappings
 * through the MMU notifier; the guest must then read zeroes (not a stale
 * mapping) and write the next round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "test_util.h"
#include "ucall_common.h"
#include "processor.h"

#define TEST_SLOT	1
#define TEST_GPA	(1ULL << 30)
#define TEST_PAGES	256
#define ROUNDS		4

static uint64_t guest_page_size;

static uint64_t pattern(uint64_t page, uint64_t round)
{
	return 0x6b766d2d72730000ULL ^ (page << 8) ^ round;
}

static void guest_code(void)
{
	uint64_t round, i;

	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < TEST_PAGES; i++) {
			volatile uint64_t *p = (volatile uint64_t *)(TEST_GPA + i * guest_page_size);

			/* After the host's MADV_DONTNEED the page must be fresh. */
			GUEST_ASSERT_EQ(*p, 0);
			*p = pattern(i, round);
		}
		GUEST_SYNC(round);
	}
	GUEST_DONE();
}

static void check_module(void)
{
	const char *param = "/sys/module/kvm_rs/parameters/verbose";

	if (access(param, R_OK) != 0) {
		/* Not an environment problem: the kvm-rs build must provide it. */
		TEST_FAIL("kvm-rs is not loaded (%s missing)", param);
	}
	pr_info("kvm-rs present (%s)\n", param);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	uint64_t round = 0, i, host_page_size = getpagesize();
	uint8_t *hva;

	check_module();

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	guest_page_size = vm->page_size;
	TEST_ASSERT(guest_page_size >= host_page_size, "guest pages smaller than host pages");
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT,
				    TEST_PAGES * guest_page_size / vm->page_size, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, TEST_PAGES);
	sync_global_to_guest(vm, guest_page_size);
	hva = addr_gpa2hva(vm, TEST_GPA);

	for (;;) {
		/* ucalls exit with KVM_EXIT_IO on x86, KVM_EXIT_MMIO on arm64. */
		vcpu_run(vcpu);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			TEST_ASSERT_EQ(uc.args[1], round);
			for (i = 0; i < TEST_PAGES; i++) {
				uint64_t v = *(uint64_t *)(hva + i * guest_page_size);

				TEST_ASSERT(v == pattern(i, round),
					    "round %lu page %lu: host sees 0x%lx, want 0x%lx",
					    round, i, v, pattern(i, round));
			}
			TEST_ASSERT(!madvise(hva, TEST_PAGES * guest_page_size, MADV_DONTNEED),
				    "madvise(MADV_DONTNEED) failed");
			round++;
			break;
		case UCALL_DONE:
			TEST_ASSERT_EQ(round, ROUNDS);
			pr_info("%d rounds x %d pages coherent across zap + refault\n",
				ROUNDS, TEST_PAGES);
			kvm_vm_free(vm);
			return 0;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
	}
}
