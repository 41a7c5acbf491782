// SPDX-License-Identifier: GPL-2.0
/*
 * rmap_aging_stress_test: page aging racing vCPU faults and rmap churn.
 *
 * vCPUs write a per-page, per-iteration pattern to their own slice of a
 * memslot. Meanwhile one host thread ages that memory without pause through
 * the page_idle bitmap (marking pages idle calls the MMU notifier's
 * clear_young, reading the bitmap calls it again), and another toggles
 * dirty logging on the slot (write-protecting SPTEs) and deletes and
 * re-creates a second memslot (which, with the shadow MMU, zaps every
 * shadow page: rmap removal on a large scale). At the end every page must
 * hold exactly the pattern of its vCPU's last completed iteration, and
 * aging must have seen young pages: a systematic false "old" fails.
 *
 * Run it with kvm.tdp_mmu=0 so that every mapping goes through rmaps, and
 * with kvm_rs.lockless_aging=0 and =1.
 *
 * With -e N, KVM_RUN may fail with ENOMEM (allocation fault injection, see
 * selftests/guest/kvm_rs_failslab_test.sh): the vCPU retries, and the test
 * requires at least N such failures, so that an injection that never hit
 * does not pass as one that was handled.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define TEST_SLOT	1
#define SCRATCH_SLOT	2
#define TEST_GPA	(1ULL << 32)
#define SCRATCH_GPA	(TEST_GPA + (1ULL << 31))
#define SCRATCH_PAGES	512
#define MAX_VCPUS	8

static uint64_t pages_per_vcpu;
static uint64_t guest_page_size;
static bool stop;
static struct kvm_vm *vm;
static uint64_t last_iter[MAX_VCPUS];
static uint64_t aging_passes, young_seen, pages_checked;
static bool retry_enomem;
static uint64_t enomem_retries;

static uint64_t pattern(uint64_t iter, uint64_t idx, uint64_t page)
{
	return (iter << 32) | (idx << 24) | page;
}

static void guest_code(uint64_t idx)
{
	uint64_t base = TEST_GPA + idx * pages_per_vcpu * guest_page_size;
	uint64_t iter, i;

	for (iter = 1;; iter++) {
		for (i = 0; i < pages_per_vcpu; i++)
			*(volatile uint64_t *)(base + i * guest_page_size) =
				pattern(iter, idx, i);
		GUEST_SYNC(iter);
	}
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct ucall uc;

	while (!READ_ONCE(stop)) {
		int r = _vcpu_run(vcpu);

		if (r && errno == ENOMEM && retry_enomem) {
			/* An allocation KVM needed for a fault failed: retry. */
			__atomic_fetch_add(&enomem_retries, 1, __ATOMIC_RELAXED);
			continue;
		}
		TEST_ASSERT(!r, "vCPU %d: KVM_RUN failed, errno %d", vcpu->id, errno);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			WRITE_ONCE(last_iter[vcpu->id], uc.args[1]);
			break;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("vCPU %d: unexpected exit %s", vcpu->id,
				  exit_reason_str(vcpu->run->exit_reason));
		}
	}
	return NULL;
}

static uint64_t pread_u64(int fd, uint64_t index)
{
	uint64_t v;

	TEST_ASSERT(pread(fd, &v, 8, index * 8) == 8, "pread at %lu", index);
	return v;
}

/* One aging pass: mark every page idle, then read the bits back. */
static void *ager_thread(void *arg)
{
	uint64_t npages = (uint64_t)(uintptr_t)arg, i, pfn, bits;
	int pagemap = open("/proc/self/pagemap", O_RDONLY);
	int idle = open("/sys/kernel/mm/page_idle/bitmap", O_RDWR);
	uint8_t *hva = addr_gpa2hva(vm, TEST_GPA);
	uint64_t *pfns = calloc(npages, sizeof(*pfns));

	__TEST_REQUIRE(idle >= 0, "page_idle needs CONFIG_IDLE_PAGE_TRACKING");
	TEST_ASSERT(pagemap >= 0 && pfns, "pagemap");
	while (!READ_ONCE(stop)) {
		for (i = 0; i < npages; i++) {
			uint64_t e = pread_u64(pagemap, (uintptr_t)(hva + i * guest_page_size) / getpagesize());

			pfns[i] = (e & (1ULL << 63)) ? e & ((1ULL << 55) - 1) : 0;
			if (!pfns[i])
				continue;
			bits = 1ULL << (pfns[i] % 64);
			TEST_ASSERT(pwrite(idle, &bits, 8, 8 * (pfns[i] / 64)) == 8, "mark idle");
		}
		usleep(1000);
		for (i = 0; i < npages; i++) {
			pfn = pfns[i];
			if (!pfn)
				continue;
			pages_checked++;
			if (!((pread_u64(idle, pfn / 64) >> (pfn % 64)) & 1))
				young_seen++;
		}
		aging_passes++;
	}
	free(pfns);
	close(idle);
	close(pagemap);
	return NULL;
}

/* Rmap churn: dirty logging on/off, a memslot deleted and re-created. */
static void *churn_thread(void *arg)
{
	uint64_t *rounds = arg;

	while (!READ_ONCE(stop)) {
		vm_mem_region_set_flags(vm, TEST_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
		usleep(2000);
		vm_mem_region_set_flags(vm, TEST_SLOT, 0);
		vm_mem_region_delete(vm, SCRATCH_SLOT);
		vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SCRATCH_GPA,
					    SCRATCH_SLOT, SCRATCH_PAGES, 0);
		(*rounds)++;
		usleep(2000);
	}
	return NULL;
}

static void help(const char *name)
{
	printf("usage: %s [-v vcpus] [-b bytes per vCPU] [-d seconds] [-a 0|1] [-c 0|1] [-e N]\n"
	       " -a: run the ager thread (default 1); -c: run the churn thread (default 1)\n"
	       "     (-a 0 -c 0 measures the vCPUs alone, for benchmarks)\n"
	       " -e: retry KVM_RUN on ENOMEM and require at least N such failures\n", name);
	exit(KSFT_SKIP);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	pthread_t vt[MAX_VCPUS], at, ct;
	uint64_t bytes = 8 << 20, npages, i, churn_rounds = 0;
	int nr_vcpus = 2, seconds = 10, opt, v, aging = 1, churn = 1;
	uint64_t total_iters = 0, min_enomem = 0;
	uint8_t *hva;

	while ((opt = getopt(argc, argv, "v:b:d:a:c:e:h")) != -1) {
		switch (opt) {
		case 'a': aging = atoi_non_negative("aging", optarg); break;
		case 'c': churn = atoi_non_negative("churn", optarg); break;
		case 'e':
			min_enomem = atoi_non_negative("ENOMEM failures", optarg);
			retry_enomem = true;
			break;
		case 'v': nr_vcpus = atoi_positive("vCPUs", optarg); break;
		case 'b': bytes = parse_size(optarg); break;
		case 'd': seconds = atoi_positive("seconds", optarg); break;
		default: help(argv[0]);
		}
	}
	TEST_REQUIRE(nr_vcpus <= MAX_VCPUS);

	vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	guest_page_size = vm->page_size;
	pages_per_vcpu = bytes / guest_page_size;
	npages = pages_per_vcpu * nr_vcpus;
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT, npages, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, npages);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SCRATCH_GPA, SCRATCH_SLOT,
				    SCRATCH_PAGES, 0);
	sync_global_to_guest(vm, pages_per_vcpu);
	sync_global_to_guest(vm, guest_page_size);
	for (v = 0; v < nr_vcpus; v++)
		vcpu_args_set(vcpus[v], 1, (uint64_t)v);

	pr_info("%d vCPUs x %lu pages, %d s of aging + churn\n", nr_vcpus, pages_per_vcpu, seconds);
	for (v = 0; v < nr_vcpus; v++)
		pthread_create(&vt[v], NULL, vcpu_thread, vcpus[v]);
	if (aging)
		pthread_create(&at, NULL, ager_thread, (void *)(uintptr_t)npages);
	if (churn)
		pthread_create(&ct, NULL, churn_thread, &churn_rounds);
	sleep(seconds);
	WRITE_ONCE(stop, true);
	for (v = 0; v < nr_vcpus; v++)
		pthread_join(vt[v], NULL);
	if (aging)
		pthread_join(at, NULL);
	if (churn)
		pthread_join(ct, NULL);

	hva = addr_gpa2hva(vm, TEST_GPA);
	for (v = 0; v < nr_vcpus; v++) {
		TEST_ASSERT(last_iter[v] > 0, "vCPU %d completed no iteration", v);
		for (i = 0; i < pages_per_vcpu; i++) {
			uint64_t got = *(uint64_t *)(hva + (v * pages_per_vcpu + i) * guest_page_size);

			TEST_ASSERT(got == pattern(last_iter[v], v, i),
				    "vCPU %d page %lu: 0x%lx, want 0x%lx (iteration %lu)",
				    v, i, got, pattern(last_iter[v], v, i), last_iter[v]);
		}
	}
	pr_info("iterations:");
	for (v = 0; v < nr_vcpus; v++)
		printf(" %lu", last_iter[v]);
	printf("; aging passes %lu, young %lu of %lu checked; churn rounds %lu\n",
	       aging_passes, young_seen, pages_checked, churn_rounds);
	if (retry_enomem)
		pr_info("KVM_RUN failed with ENOMEM and was retried %lu times\n",
			enomem_retries);
	for (v = 0; v < nr_vcpus; v++)
		total_iters += last_iter[v];
	/* For benchmarks: lower is better, in seconds like the upstream tests. */
	pr_info("vCPU time per pass over its memory: %.6fs\n",
		(double)seconds * nr_vcpus / total_iters);
	TEST_ASSERT(!aging || aging_passes > 0, "the ager did not run");
	TEST_ASSERT(!churn || churn_rounds > 0, "the churn thread did not run");
	TEST_ASSERT(enomem_retries >= min_enomem, "%lu ENOMEM failures, want at least %lu",
		    enomem_retries, min_enomem);
	/* vCPUs wrote all the time: aging that never sees young is broken. */
	TEST_ASSERT(!aging || young_seen > 0, "aging saw no young page in %lu checks",
		    pages_checked);
	kvm_vm_free(vm);
	return 0;
}
