// SPDX-License-Identifier: GPL-2.0
/*
 * nested_npt_aging_test: page aging of a nested guest's memory (nested NPT).
 *
 * L1 runs an L2 guest with nested paging: the vmcb's nested_cr3 points at
 * NPT tables that this test builds itself (the 6.12 selftest library has
 * none). L0 KVM then maps L1 with the TDP MMU (the default kvm.tdp_mmu=1)
 * and L2 with the shadow MMU, which shadows L1's NPT and keeps one rmap
 * entry per 4K page: the rmaps that kvm-rs ages without mmu_lock. With the
 * TDP MMU on, these are the only rmaps of the VM (a VM without nesting
 * has none), so this is the case where the lockless walk runs next to the
 * TDP MMU.
 *
 * L2 writes a per-page, per-iteration pattern to every page of a test
 * region and exits to L1 (vmmcall), which reports the iteration to the
 * host (GUEST_SYNC). The region is mapped with 4K NPT pages at an L2 GPA
 * other than its L1 GPA, so the writes can only land in place through the
 * NPT. Once L2 has touched every page, a host thread ages the region
 * through the page_idle bitmap in a loop: marking a page idle calls the
 * MMU notifier's clear_young, reading the bitmap back calls it again and
 * finds the pages that L2 wrote since (young). From then on L0 has no more
 * faults to take for the region, so "young" can only come from the
 * Accessed bits of the shadow NPT entries, i.e. from the rmap walk.
 *
 * At the end aging must have seen young pages (a systematic false "old"
 * fails), one more pass with L2 stopped must find no young page (aging
 * that reports young without clearing the Accessed bits fails), and every
 * page must hold the pattern of the last completed iteration. With -L the
 * kvm-rs counters must show that the lockless walk visited rmaps and that
 * no aging call took mmu_lock.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/kernel-page-flags.h>

#include "kvm_util.h"
#include "processor.h"
#include "svm_util.h"
#include "test_util.h"
#include "ucall_common.h"

#define TEST_SLOT	1
#define TEST_GPA	(1ULL << 32)	/* L1 GPA of the test region */
#define L2_TEST_GPA	(3ULL << 32)	/* its L2 GPA, mapped by the NPT */
#define TEST_GVA	TEST_GPA	/* its virtual address in L2 */
#define L2_STACK_WORDS	512

/*
 * NPT entries are long-mode page-table entries; L2's accesses count as
 * user accesses at every level. Accessed/Dirty are set up front, so that
 * L0's walk of the NPT does not have to set them.
 */
#define NPT_TABLE	(PTE_PRESENT_MASK | PTE_WRITABLE_MASK | PTE_USER_MASK | \
			 PTE_ACCESSED_MASK)
#define NPT_LEAF	(NPT_TABLE | PTE_DIRTY_MASK)

#define AGING_DIR	"/sys/kernel/debug/kvm_rs/aging/"

/* Shared with the guest. */
static uint64_t nr_pages;
static volatile uint64_t l2_iter;
static uint64_t l2_stack[L2_STACK_WORDS] __aligned(16);

/* Host side. */
static struct kvm_vm *vm;
static bool stop;
static uint64_t aging_passes;

static const char *const counter_names[] = {
	"rmaps_visited", "young", "passes", "cmpxchg_failed", "lock_spins",
	"locked_calls",
};
#define NR_COUNTERS	ARRAY_SIZE(counter_names)
#define RMAPS_VISITED	0
#define LOCKED_CALLS	5

static uint64_t pattern(uint64_t iter, uint64_t page)
{
	return (iter << 32) | page;
}

static void l2_guest_code(void)
{
	uint64_t iter = l2_iter, i;

	for (i = 0; i < nr_pages; i++)
		*(volatile uint64_t *)(TEST_GVA + i * PAGE_SIZE) = pattern(iter, i);
	/* L1 restarts L2 at its entry point for the next iteration. */
	vmmcall();
}

static void l1_guest_code(struct svm_test_data *svm, uint64_t npt_root)
{
	struct vmcb *vmcb = svm->vmcb;
	/* Entered as if called: rsp + 8 16-byte aligned. */
	uint64_t l2_rsp = (uint64_t)&l2_stack[L2_STACK_WORDS - 1];
	uint64_t iter;

	/* Without NPT in its CPUID, L0 would silently run L2 without it. */
	GUEST_ASSERT(this_cpu_has(X86_FEATURE_NPT));
	generic_svm_setup(svm, l2_guest_code, (void *)l2_rsp);
	vmcb->control.nested_ctl |= SVM_NESTED_CTL_NP_ENABLE;
	vmcb->control.nested_cr3 = npt_root;

	for (iter = 1;; iter++) {
		l2_iter = iter;
		vmcb->save.rip = (uint64_t)l2_guest_code;
		vmcb->save.rsp = l2_rsp;
		run_guest(vmcb, svm->vmcb_gpa);
		__GUEST_ASSERT(vmcb->control.exit_code == SVM_EXIT_VMMCALL,
			       "iteration %lu: L2 exit 0x%x, info1 0x%lx, info2 0x%lx",
			       iter, vmcb->control.exit_code,
			       vmcb->control.exit_info_1, vmcb->control.exit_info_2);
		GUEST_SYNC(iter);
	}
}

static uint64_t npt_alloc_table(void)
{
	uint64_t gpa = vm_alloc_page_table(vm);

	memset(addr_gpa2hva(vm, gpa), 0, vm->page_size);
	return gpa;
}

/* NPT entry for L2 GPA l2_gpa -> L1 GPA gpa, a 4K or a 2M page. */
static void npt_map(uint64_t root, uint64_t l2_gpa, uint64_t gpa, int target)
{
	uint64_t table = root, *pte;
	int level;

	for (level = PG_LEVEL_512G;; level--) {
		pte = (uint64_t *)addr_gpa2hva(vm, table) +
		      ((l2_gpa >> PG_LEVEL_SHIFT(level)) & 0x1ff);
		if (level == target)
			break;
		if (!(*pte & PTE_PRESENT_MASK))
			*pte = npt_alloc_table() | NPT_TABLE;
		TEST_ASSERT(!(*pte & PTE_LARGE_MASK), "NPT: 0x%lx is in a large page", l2_gpa);
		table = PTE_GET_PA(*pte);
	}
	TEST_ASSERT(!(*pte & PTE_PRESENT_MASK), "NPT: 0x%lx mapped twice", l2_gpa);
	*pte = gpa | NPT_LEAF | (target > PG_LEVEL_4K ? PTE_LARGE_MASK : 0);
}

/*
 * Memslot 0 (code, data, stacks, L1's page tables, which L2's CR3 uses,
 * and the NPT itself) is identity-mapped with 2M pages, the test region
 * with 4K pages at L2_TEST_GPA.
 */
static uint64_t npt_build(void)
{
	uint64_t root = npt_alloc_table();
	uint64_t slot0_end = align_up(memslot2region(vm, 0)->region.memory_size, PG_SIZE_2M);
	uint64_t gpa, i;

	TEST_ASSERT(!memslot2region(vm, 0)->region.guest_phys_addr, "slot 0 not at GPA 0");
	for (i = 0; i < nr_pages; i++)
		npt_map(root, L2_TEST_GPA + i * PAGE_SIZE, TEST_GPA + i * PAGE_SIZE, PG_LEVEL_4K);
	for (gpa = 0; gpa < slot0_end; gpa += PG_SIZE_2M)
		npt_map(root, gpa, gpa, PG_LEVEL_2M);
	return root;
}

static uint64_t pread_u64(int fd, uint64_t index)
{
	uint64_t v;

	TEST_ASSERT(pread(fd, &v, 8, index * 8) == 8, "pread at %lu", index);
	return v;
}

struct aging {
	int pagemap, kpageflags, idle;
	uint64_t *pfns;
	uint64_t young, checked, not_on_lru;
};

static void aging_open(struct aging *a)
{
	a->pagemap = open("/proc/self/pagemap", O_RDONLY);
	a->kpageflags = open("/proc/kpageflags", O_RDONLY);
	a->idle = open("/sys/kernel/mm/page_idle/bitmap", O_RDWR);
	a->pfns = calloc(nr_pages, sizeof(*a->pfns));
	TEST_ASSERT(a->pagemap >= 0 && a->kpageflags >= 0 && a->idle >= 0 && a->pfns,
		    "pagemap, kpageflags, page_idle");
}

static void aging_close(struct aging *a)
{
	free(a->pfns);
	close(a->idle);
	close(a->kpageflags);
	close(a->pagemap);
}

/*
 * One aging pass: mark every page idle, then read the bits back. A page
 * that is not on the LRU reads as not idle without being young (page_idle
 * only tracks LRU folios), so it is not counted. Reading a word of the
 * bitmap tests all 64 of its pages that are still idle, so a word is read
 * once for a run of pages in it, not once per page.
 */
static void aging_pass(struct aging *a)
{
	uint8_t *hva = addr_gpa2hva(vm, TEST_GPA);
	uint64_t i, pfn, bits, e, word = 0, word_idx = -1ULL;

	for (i = 0; i < nr_pages; i++) {
		e = pread_u64(a->pagemap, (uintptr_t)(hva + i * PAGE_SIZE) / getpagesize());
		pfn = (e & (1ULL << 63)) ? e & ((1ULL << 55) - 1) : 0;
		a->pfns[i] = pfn;
		if (!pfn)
			continue;
		bits = 1ULL << (pfn % 64);
		TEST_ASSERT(pwrite(a->idle, &bits, 8, 8 * (pfn / 64)) == 8, "mark idle");
	}
	usleep(1000);
	for (i = 0; i < nr_pages; i++) {
		pfn = a->pfns[i];
		if (!pfn)
			continue;
		a->checked++;
		if (pfn / 64 != word_idx) {
			word_idx = pfn / 64;
			word = pread_u64(a->idle, word_idx);
		}
		if ((word >> (pfn % 64)) & 1)
			continue;
		if (pread_u64(a->kpageflags, pfn) & (1ULL << KPF_LRU))
			a->young++;
		else
			a->not_on_lru++;
	}
}

static void *ager_thread(void *arg)
{
	struct aging *a = arg;

	aging_open(a);
	while (!READ_ONCE(stop)) {
		aging_pass(a);
		__atomic_fetch_add(&aging_passes, 1, __ATOMIC_RELAXED);
	}
	aging_close(a);
	return NULL;
}

/* The kvm-rs aging counters; false when the file does not exist. */
static bool read_counter(const char *name, uint64_t *val)
{
	char path[128];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), AGING_DIR "%s", name);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fscanf(f, "%" SCNu64, val);
	fclose(f);
	TEST_ASSERT(n == 1, "cannot parse %s", path);
	return true;
}

static void read_counters(uint64_t *vals, bool *have)
{
	int i;

	for (i = 0; i < NR_COUNTERS; i++)
		have[i] = read_counter(counter_names[i], &vals[i]);
}

static const char *lockless_switch(void)
{
	static char buf[16] = "n/a";
	FILE *f = fopen("/sys/module/kvm_rs/parameters/lockless_aging", "r");

	if (f) {
		if (fscanf(f, "%15s", buf) != 1)
			strcpy(buf, "?");
		fclose(f);
	}
	return buf;
}

/* Runs L1 to its next GUEST_SYNC; returns the iteration it reported. */
static uint64_t run_iteration(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		return uc.args[1];
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
	default:
		TEST_FAIL("unexpected ucall %lu", uc.cmd);
	}
	return 0;
}

static void help(const char *name)
{
	printf("usage: %s [-b bytes] [-d seconds] [-L]\n"
	       " -b: size of the test region (default 16M, at least 1M)\n"
	       " -d: run time in seconds (default 10; at least two aging passes)\n"
	       " -L: require lockless aging: rmaps_visited grows, locked_calls does not\n",
	       name);
	exit(KSFT_SKIP);
}

int main(int argc, char *argv[])
{
	uint64_t before[NR_COUNTERS], after[NR_COUNTERS], bytes = 16 << 20;
	bool have_before[NR_COUNTERS], have[NR_COUNTERS], expect_lockless = false;
	struct aging run = {}, still = {};
	uint64_t iter, want, got, i, npt_root;
	int seconds = 10, opt;
	struct kvm_vcpu *vcpu;
	vm_vaddr_t svm_gva;
	time_t start;
	pthread_t at;
	uint8_t *hva;

	while ((opt = getopt(argc, argv, "b:d:Lh")) != -1) {
		switch (opt) {
		case 'b': bytes = parse_size(optarg); break;
		case 'd': seconds = atoi_positive("seconds", optarg); break;
		case 'L': expect_lockless = true; break;
		default: help(argv[0]);
		}
	}
	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_NPT));
	__TEST_REQUIRE(!access("/sys/kernel/mm/page_idle/bitmap", R_OK | W_OK),
		       "page_idle needs CONFIG_IDLE_PAGE_TRACKING");
	/*
	 * page_idle tracks only pages on the LRU, and new pages wait in
	 * per-CPU batches (up to 31 a CPU) before they get there.
	 */
	nr_pages = bytes / PAGE_SIZE;
	TEST_ASSERT(nr_pages >= 256, "-b: at least 1M, for enough pages on the LRU");

	/* Slot 0 also holds L1's page tables for the region and the NPT. */
	vm = __vm_create_with_one_vcpu(&vcpu, nr_pages / 256 + 64, l1_guest_code);
	TEST_ASSERT(vm->page_size == PAGE_SIZE, "4K guest pages expected");
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT, nr_pages, 0);
	virt_map(vm, TEST_GVA, L2_TEST_GPA, nr_pages);
	vcpu_alloc_svm(vm, &svm_gva);
	npt_root = npt_build();
	vcpu_args_set(vcpu, 2, svm_gva, npt_root);
	sync_global_to_guest(vm, nr_pages);

	pr_info("L2 with nested NPT: %lu pages of 4K, at least %d s of aging\n",
		nr_pages, seconds);
	read_counters(before, have_before);
	start = time(NULL);

	/* Iteration 1 faults every page in; aging starts after it. */
	iter = run_iteration(vcpu);
	TEST_ASSERT(iter == 1, "first iteration reported as %lu", iter);
	pthread_create(&at, NULL, ager_thread, &run);
	do {
		got = run_iteration(vcpu);
		TEST_ASSERT(got == iter + 1, "iteration %lu after %lu", got, iter);
		iter = got;
	} while (time(NULL) - start < seconds ||
		 __atomic_load_n(&aging_passes, __ATOMIC_RELAXED) < 2);
	WRITE_ONCE(stop, true);
	pthread_join(at, NULL);

	/*
	 * L2 is stopped: one more pass must find every page old, i.e. the
	 * passes before did clear what they reported young. Before the check
	 * below, whose reads make the host PTEs young.
	 */
	aging_open(&still);
	aging_pass(&still);
	aging_close(&still);
	read_counters(after, have);

	/* L2 wrote all of iteration "iter" before its vmmcall. */
	hva = addr_gpa2hva(vm, TEST_GPA);
	for (i = 0; i < nr_pages; i++) {
		got = *(uint64_t *)(hva + i * PAGE_SIZE);
		want = pattern(iter, i);
		TEST_ASSERT(got == want, "page %lu: 0x%lx, want 0x%lx (iteration %lu)",
			    i, got, want, iter);
	}

	pr_info("iterations %lu; aging passes %lu, young %lu of %lu checked (%lu not on the LRU)\n",
		iter, aging_passes, run.young, run.checked, run.not_on_lru);
	pr_info("pass with L2 stopped: young %lu of %lu checked (%lu not on the LRU)\n",
		still.young, still.checked, still.not_on_lru);
	pr_info("kvm-rs aging counters (delta; lockless_aging=%s):", lockless_switch());
	for (i = 0; i < NR_COUNTERS; i++) {
		if (have_before[i] && have[i])
			printf(" %s %lu", counter_names[i], after[i] - before[i]);
		else
			printf(" %s n/a", counter_names[i]);
	}
	printf("\n");

	/* L2 wrote all the time: aging that never sees young is broken. */
	TEST_ASSERT(run.young > 0, "aging saw no young page in %lu checks", run.checked);
	TEST_ASSERT(!still.young, "%lu pages young with L2 stopped", still.young);
	if (expect_lockless) {
		TEST_ASSERT(have_before[RMAPS_VISITED] && have[RMAPS_VISITED],
			    "-L: no " AGING_DIR "rmaps_visited");
		TEST_ASSERT(after[RMAPS_VISITED] > before[RMAPS_VISITED],
			    "-L: the lockless walk visited no rmap of L2");
		TEST_ASSERT(have_before[LOCKED_CALLS] && have[LOCKED_CALLS],
			    "-L: no " AGING_DIR "locked_calls");
		TEST_ASSERT(after[LOCKED_CALLS] == before[LOCKED_CALLS],
			    "-L: %lu aging calls took mmu_lock",
			    after[LOCKED_CALLS] - before[LOCKED_CALLS]);
	}
	kvm_vm_free(vm);
	return 0;
}
