// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_rs_s2_split_test: eager splitting of 2 MiB stage-2 blocks, with the
 * break of break-before-make done or skipped under FEAT_BBM level 2.
 *
 * The test memory is backed by 2 MiB hugetlb pages, so the vCPU's first
 * pass of writes maps it with 2 MiB stage-2 blocks. The VM asks for eager
 * splitting (KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE = 2 MiB) before it has any
 * memslot, so enabling dirty logging write-protects the blocks and splits
 * each into a table of 4K pages at once. kvm-rs's debugfs counters
 * (kvm_rs/s2/) are read around that one ioctl, while the vCPU is stopped:
 *
 *  - with kvm_rs.s2_mode=1, kvm_rs.s2_bbml2=1 and FEAT_BBM level 2, every
 *    block is replaced by its table without a break ("break_skipped" grows
 *    by the number of blocks, "full_bbm" not at all);
 *  - otherwise every split is a full break-before-make and
 *    "break_skipped" stays.
 *
 * Then the vCPU writes a new pattern to every page, pass after pass, while
 * the host fetches the dirty log between passes: each pass must leave
 * every page dirty, and at the end every page must hold the last pattern
 * (a table whose entries did not translate like the block would show up
 * as a wrong page, a missed write or a stage-2 abort).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/bitmap.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "kvm_rs_s2_util.h"
#include "ucall_common.h"

#define TEST_SLOT	1
#define TEST_GPA	(1ULL << 30)
#define BLOCK_SIZE	SZ_2M
/* Memslot 0: guest code, stacks, page tables; 8 MiB is plenty here. */
#define SLOT0_PAGES	2048

static uint64_t test_pages;
static uint64_t guest_page_size;

static uint64_t pattern(uint64_t pass, uint64_t page)
{
	return 0x73706c6974000000ULL ^ (pass << 32) ^ page;
}

static void guest_code(uint64_t passes)
{
	uint64_t pass, i;

	for (pass = 0; pass < passes; pass++) {
		for (i = 0; i < test_pages; i++)
			*(volatile uint64_t *)(TEST_GPA + i * guest_page_size) =
				pattern(pass, i);
		GUEST_SYNC(pass);
	}
	GUEST_DONE();
}

/*
 * vm_create() with one step in between: the eager split chunk size can
 * only be set while the VM has no memslot, and vm_create() adds memslot 0
 * at once. These are the steps of the library's __vm_create().
 */
static struct kvm_vm *create_vm_with_eager_split(void)
{
	struct userspace_mem_region *slot0;
	struct kvm_vm *vm = vm_create_barebones();
	int i;

	vm_enable_cap(vm, KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE, BLOCK_SIZE);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, 0, 0, SLOT0_PAGES, 0);
	for (i = 0; i < NR_MEM_REGIONS; i++)
		vm->memslots[i] = 0;
	kvm_vm_elf_load(vm, program_invocation_name);
	slot0 = memslot2region(vm, 0);
	ucall_init(vm, slot0->region.guest_phys_addr + slot0->region.memory_size);
	guest_rng = new_guest_random_state(guest_random_seed);
	sync_global_to_guest(vm, guest_rng);
	kvm_arch_vm_post_create(vm);
	return vm;
}

static void run_pass(struct kvm_vcpu *vcpu, uint64_t pass)
{
	struct ucall uc;

	vcpu_run(vcpu);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		TEST_ASSERT(uc.args[1] == pass, "pass %lu, want %lu", uc.args[1], pass);
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("unexpected exit %s", exit_reason_str(vcpu->run->exit_reason));
	}
}

static void help(const char *name)
{
	printf("usage: %s [-b bytes] [-p passes]\n"
	       " -b: test memory, a multiple of 2 MiB (default 16M); needs as many\n"
	       "     free 2 MiB hugetlb pages (/proc/sys/vm/nr_hugepages)\n"
	       " -p: write passes after the split (default 4)\n", name);
	exit(KSFT_SKIP);
}

int main(int argc, char *argv[])
{
	uint64_t bytes = 16 * SZ_1M, passes = 4, blocks, pass, i, skip0, bbm0, skip, bbm;
	struct timespec t0, t1;
	bool expect_skip;
	unsigned long *bitmap;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint8_t *hva;
	int opt;

	while ((opt = getopt(argc, argv, "b:p:h")) != -1) {
		switch (opt) {
		case 'b': bytes = parse_size(optarg); break;
		case 'p': passes = atoi_positive("passes", optarg); break;
		default: help(argv[0]);
		}
	}
	TEST_ASSERT(bytes && bytes % BLOCK_SIZE == 0, "-b must be a multiple of 2 MiB");
	blocks = bytes / BLOCK_SIZE;
	/* s2_mode=1 must really mean kvm-rs's decisions (not LPA2's C path). */
	TEST_ASSERT(s2_all("active") == s2_all("mode"),
		    "kvm_rs.s2_mode=%lu but kvm-rs decisions active=%lu (LPA2 kernel?)",
		    s2_all("mode"), s2_all("active"));
	expect_skip = s2_all("active") && s2_all("bbml2_enabled") && s2_all("bbm_level") >= 2;
	pr_info("%lu blocks of 2 MiB; s2_mode=%lu s2_bbml2=%lu BBM level %lu: expect the break %s\n",
		blocks, s2_all("mode"), s2_all("bbml2_enabled"), s2_all("bbm_level"),
		expect_skip ? "skipped" : "done");

	vm = create_vm_with_eager_split();
	vcpu = vm_vcpu_add(vm, 0, guest_code);
	guest_page_size = vm->page_size;
	test_pages = bytes / guest_page_size;
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_HUGETLB, TEST_GPA, TEST_SLOT,
				    test_pages, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, test_pages);
	sync_global_to_guest(vm, test_pages);
	sync_global_to_guest(vm, guest_page_size);
	/* Pass 0 populates (2 MiB blocks); the rest run after the split. */
	vcpu_args_set(vcpu, 1, passes + 1);
	bitmap = bitmap_zalloc(test_pages);

	run_pass(vcpu, 0);

	skip0 = s2_all("break_skipped");
	bbm0 = s2_all("full_bbm");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	vm_mem_region_set_flags(vm, TEST_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	skip = s2_all("break_skipped") - skip0;
	bbm = s2_all("full_bbm") - bbm0;
	pr_info("enabling dirty logging: %lu splits without a break, %lu full BBM\n", skip, bbm);
	/* For make bench: write-protect + split of the whole slot. */
	pr_info("split time: %.6fs\n",
		(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	TEST_ASSERT(skip + bbm >= blocks,
		    "only %lu of %lu blocks split (not mapped as blocks? no eager split?)",
		    skip + bbm, blocks);
	if (expect_skip) {
		TEST_ASSERT(skip == blocks && bbm == 0,
			    "BBML2 usable: want %lu splits without a break, got %lu (+%lu BBM)",
			    blocks, skip, bbm);
	} else {
		TEST_ASSERT(skip == 0, "%lu breaks skipped although not allowed", skip);
	}

	/* Clear the log the split left, then check every pass dirties all. */
	kvm_vm_get_dirty_log(vm, TEST_SLOT, bitmap);
	for (pass = 1; pass <= passes; pass++) {
		run_pass(vcpu, pass);
		kvm_vm_get_dirty_log(vm, TEST_SLOT, bitmap);
		for (i = 0; i < test_pages; i++)
			TEST_ASSERT(test_bit(i, bitmap), "pass %lu: page %lu not dirty", pass, i);
	}

	hva = addr_gpa2hva(vm, TEST_GPA);
	for (i = 0; i < test_pages; i++) {
		uint64_t got = *(uint64_t *)(hva + i * guest_page_size);

		TEST_ASSERT(got == pattern(passes, i), "page %lu: 0x%lx, want 0x%lx",
			    i, got, pattern(passes, i));
	}
	pr_info("%lu passes over %lu pages after the split: all dirty, all correct\n",
		passes, test_pages);
	free(bitmap);
	kvm_vm_free(vm);
	return 0;
}
