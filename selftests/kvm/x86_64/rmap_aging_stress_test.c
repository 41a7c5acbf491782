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
 * With -M the memslot being aged is itself deleted and moved under the
 * ager: a third memslot (CHURN_SLOT, host memory mmap()ed by the test, so
 * that it survives the slot) is aged by the same thread, and one extra
 * "toucher" vCPU reads and writes a per-page pattern in it. The churn
 * thread, in turn: deletes the slot and re-creates it at the same place
 * with the same host memory; or moves it to CHURN_ALT_GPA, lets the
 * toucher do a pass there (through a second guest mapping), and moves it
 * back. Each of these ioctls is issued while the ager is inside its walk
 * over the slot's pages, and the ager keeps re-walking them until the
 * ioctl has returned, so the aging notifiers run while KVM zaps the
 * slot's SPTEs (all SPTEs while KVM_X86_QUIRK_SLOT_ZAP_ALL is on, only
 * the slot's with -Q). The toucher is paused (stopped at a GUEST_SYNC, out
 * of KVM_RUN) around every ioctl, so it never touches a GPA without a
 * slot, and it completes a full pass between two ioctls, so every one of
 * them finds mapped SPTEs to zap. The toucher checks on every pass that
 * each page still holds its previous pattern (the data survived the
 * delete/re-create or move, seen through the re-registered slot), the host
 * checks the memory around every ioctl and at the end. The test runs
 * past -d until at least one delete and one move happened during aging.
 *
 * Run it with kvm.tdp_mmu=0 so that every mapping goes through rmaps, and
 * with kvm_rs.lockless_aging=0 and =1.
 *
 * With -e N, KVM_RUN may fail with ENOMEM (allocation fault injection, see
 * selftests/guest/kvm_rs_desc_topup_failslab_test.sh): the vCPU retries, and the test
 * requires at least N such failures, so that an injection that never hit
 * does not pass as one that was handled.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define TEST_SLOT	1
#define SCRATCH_SLOT	2
#define CHURN_SLOT	3
#define TEST_GPA	(1ULL << 32)
#define SCRATCH_GPA	(TEST_GPA + (1ULL << 31))
#define CHURN_GPA	(1ULL << 33)
#define CHURN_ALT_GPA	(CHURN_GPA + (1ULL << 30))
#define SCRATCH_PAGES	512
#define CHURN_PAGES	512
#define MAX_VCPUS	8
#define TOUCHER_IDX	0xff

static uint64_t pages_per_vcpu;
static uint64_t guest_page_size;
static bool stop;
static struct kvm_vm *vm;
static uint64_t last_iter[MAX_VCPUS];
static uint64_t aging_passes, young_seen, pages_checked;
static bool retry_enomem;
static uint64_t enomem_retries;
static bool aging = true, scratch_churn = true, memslot_churn;

/*
 * -M: the churned slot. churn_base is a guest global: the GPA (= GVA) the
 * toucher uses, written by the host (through churn_base_hva) only while
 * the toucher is paused.
 */
static uint64_t churn_base;
static uint64_t *churn_base_hva;
static uint8_t *churn_mem;
static uint64_t churn_bytes;

/* The toucher vCPU's state, under toucher_lock. */
static pthread_mutex_t toucher_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t toucher_cond = PTHREAD_COND_INITIALIZER;
static bool pause_req, toucher_paused, toucher_done;
static uint64_t toucher_passes, toucher_iter;

/*
 * The window in which the churn thread changes the churned slot, under
 * window_lock: ager_in_slot while the ager walks the slot's pages, and it
 * does not leave while slot_op_running (it walks them again instead).
 */
static pthread_mutex_t window_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t window_cond = PTHREAD_COND_INITIALIZER;
static bool ager_in_slot, slot_op_running, ager_done;
static uint64_t ager_rewalks, young_churned;

enum slot_op { SLOT_DELETE, SLOT_CREATE, SLOT_MOVE, NR_SLOT_OPS };
static const char * const slot_op_name[NR_SLOT_OPS] = { "delete", "re-create", "move" };
/* ioctls done, and of those, done inside the ager's walk over the slot. */
static uint64_t slot_ops[NR_SLOT_OPS], slot_ops_aging[NR_SLOT_OPS];

static uint64_t pattern(uint64_t iter, uint64_t idx, uint64_t page)
{
	return (iter << 32) | (idx << 24) | page;
}

/* -M: read back the previous pass's pattern, write this pass's. */
static void toucher_code(void)
{
	uint64_t iter, i, base, got, want;

	for (iter = 1;; iter++) {
		base = READ_ONCE(churn_base);
		for (i = 0; i < CHURN_PAGES; i++) {
			volatile uint64_t *p = (volatile uint64_t *)(base + i * guest_page_size);

			got = *p;
			want = iter > 1 ? pattern(iter - 1, TOUCHER_IDX, i) : 0;
			__GUEST_ASSERT(got == want,
				       "churned slot at 0x%lx page %lu: 0x%lx, want 0x%lx",
				       base, i, got, want);
			*p = pattern(iter, TOUCHER_IDX, i);
		}
		GUEST_SYNC(iter);
	}
}

static void guest_code(uint64_t idx)
{
	uint64_t base = TEST_GPA + idx * pages_per_vcpu * guest_page_size;
	uint64_t iter, i;

	if (idx == TOUCHER_IDX)
		toucher_code();
	for (iter = 1;; iter++) {
		for (i = 0; i < pages_per_vcpu; i++)
			*(volatile uint64_t *)(base + i * guest_page_size) =
				pattern(iter, idx, i);
		GUEST_SYNC(iter);
	}
}

/*
 * One KVM_RUN up to the guest's next GUEST_SYNC; false (no sync) when
 * KVM_RUN failed with ENOMEM and is to be retried.
 */
static bool run_to_sync(struct kvm_vcpu *vcpu, uint64_t *iter)
{
	struct ucall uc;
	int r = _vcpu_run(vcpu);

	if (r && errno == ENOMEM && retry_enomem) {
		/* An allocation KVM needed for a fault failed: retry. */
		__atomic_fetch_add(&enomem_retries, 1, __ATOMIC_RELAXED);
		return false;
	}
	TEST_ASSERT(!r, "vCPU %d: KVM_RUN failed, errno %d", vcpu->id, errno);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		*iter = uc.args[1];
		return true;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("vCPU %d: unexpected exit %s", vcpu->id,
			  exit_reason_str(vcpu->run->exit_reason));
	}
	return false;
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	uint64_t iter;

	while (!READ_ONCE(stop))
		if (run_to_sync(vcpu, &iter))
			WRITE_ONCE(last_iter[vcpu->id], iter);
	return NULL;
}

/* -M: after each pass, stays out of KVM_RUN while the churn thread asks. */
static void *toucher_thread(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	uint64_t iter;

	while (!READ_ONCE(stop)) {
		if (!run_to_sync(vcpu, &iter))
			continue;
		pthread_mutex_lock(&toucher_lock);
		toucher_iter = iter;
		toucher_passes++;
		pthread_cond_broadcast(&toucher_cond);
		while (pause_req) {
			toucher_paused = true;
			pthread_cond_broadcast(&toucher_cond);
			pthread_cond_wait(&toucher_cond, &toucher_lock);
		}
		toucher_paused = false;
		pthread_mutex_unlock(&toucher_lock);
	}
	pthread_mutex_lock(&toucher_lock);
	toucher_done = true;
	pthread_cond_broadcast(&toucher_cond);
	pthread_mutex_unlock(&toucher_lock);
	return NULL;
}

/*
 * Let the toucher run one complete pass (all of the slot's pages mapped by
 * KVM again), then hold it at its next GUEST_SYNC. Returns with the
 * toucher out of KVM_RUN (paused, or gone at the end of the test).
 */
static void toucher_pass_then_pause(void)
{
	uint64_t passes;

	pthread_mutex_lock(&toucher_lock);
	passes = toucher_passes;
	pause_req = false;
	pthread_cond_broadcast(&toucher_cond);
	while (toucher_passes == passes && !toucher_done)
		pthread_cond_wait(&toucher_cond, &toucher_lock);
	pause_req = true;
	while (!toucher_paused && !toucher_done)
		pthread_cond_wait(&toucher_cond, &toucher_lock);
	pthread_mutex_unlock(&toucher_lock);
}

static void toucher_resume(void)
{
	pthread_mutex_lock(&toucher_lock);
	pause_req = false;
	pthread_cond_broadcast(&toucher_cond);
	pthread_mutex_unlock(&toucher_lock);
}

static uint64_t pread_u64(int fd, uint64_t index)
{
	uint64_t v;

	TEST_ASSERT(pread(fd, &v, 8, index * 8) == 8, "pread at %lu", index);
	return v;
}

/* Host memory aged by the ager thread. */
struct aged_range {
	uint8_t *hva;
	uint64_t npages;
	uint64_t *pfns;
	bool churned;	/* the host memory of CHURN_SLOT */
};

static void mark_idle(int pagemap, int idle, struct aged_range *r)
{
	uint64_t i, bits;

	for (i = 0; i < r->npages; i++) {
		uint64_t e = pread_u64(pagemap, (uintptr_t)(r->hva + i * guest_page_size) / getpagesize());

		r->pfns[i] = (e & (1ULL << 63)) ? e & ((1ULL << 55) - 1) : 0;
		if (!r->pfns[i])
			continue;
		bits = 1ULL << (r->pfns[i] % 64);
		TEST_ASSERT(pwrite(idle, &bits, 8, 8 * (r->pfns[i] / 64)) == 8, "mark idle");
	}
}

static void read_idle(int idle, struct aged_range *r)
{
	uint64_t i, pfn;

	for (i = 0; i < r->npages; i++) {
		pfn = r->pfns[i];
		if (!pfn)
			continue;
		pages_checked++;
		if (!((pread_u64(idle, pfn / 64) >> (pfn % 64)) & 1)) {
			young_seen++;
			young_churned += r->churned;
		}
	}
}

/* -M: open the window for the churn thread's slot ioctls. */
static void ager_slot_enter(void)
{
	pthread_mutex_lock(&window_lock);
	ager_in_slot = true;
	pthread_cond_broadcast(&window_cond);
	pthread_mutex_unlock(&window_lock);
}

/* Close it, aging the slot's pages again as long as an ioctl is running. */
static void ager_slot_leave(int pagemap, int idle, struct aged_range *r)
{
	pthread_mutex_lock(&window_lock);
	while (slot_op_running) {
		pthread_mutex_unlock(&window_lock);
		mark_idle(pagemap, idle, r);
		ager_rewalks++;
		pthread_mutex_lock(&window_lock);
	}
	ager_in_slot = false;
	pthread_mutex_unlock(&window_lock);
}

/* One aging pass: mark every page idle, then read the bits back. */
static void *ager_thread(void *arg)
{
	struct aged_range *ranges = arg, *r;
	int pagemap = open("/proc/self/pagemap", O_RDONLY);
	int idle = open("/sys/kernel/mm/page_idle/bitmap", O_RDWR);

	__TEST_REQUIRE(idle >= 0, "page_idle needs CONFIG_IDLE_PAGE_TRACKING");
	TEST_ASSERT(pagemap >= 0, "pagemap");
	for (r = ranges; r->npages; r++) {
		r->pfns = calloc(r->npages, sizeof(*r->pfns));
		TEST_ASSERT(r->pfns, "pfns");
	}
	while (!READ_ONCE(stop)) {
		for (r = ranges; r->npages; r++) {
			if (r->churned)
				ager_slot_enter();
			mark_idle(pagemap, idle, r);
			if (r->churned)
				ager_slot_leave(pagemap, idle, r);
		}
		usleep(1000);
		for (r = ranges; r->npages; r++) {
			if (r->churned)
				ager_slot_enter();
			read_idle(idle, r);
			if (r->churned)
				ager_slot_leave(pagemap, idle, r);
		}
		aging_passes++;
	}
	pthread_mutex_lock(&window_lock);
	ager_done = true;
	pthread_cond_broadcast(&window_cond);
	pthread_mutex_unlock(&window_lock);
	for (r = ranges; r->npages; r++)
		free(r->pfns);
	close(idle);
	close(pagemap);
	return NULL;
}

/*
 * -M: wait until the ager walks the churned slot's pages and keep it there
 * for the ioctl. False when there is no ager (-a 0, or the test ends).
 */
static bool slot_window_enter(void)
{
	bool in;

	if (!aging)
		return false;
	pthread_mutex_lock(&window_lock);
	while (!ager_in_slot && !ager_done)
		pthread_cond_wait(&window_cond, &window_lock);
	in = ager_in_slot;
	slot_op_running = in;
	pthread_mutex_unlock(&window_lock);
	return in;
}

static void slot_window_leave(void)
{
	pthread_mutex_lock(&window_lock);
	slot_op_running = false;
	pthread_mutex_unlock(&window_lock);
}

/* -M: one KVM_SET_USER_MEMORY_REGION on the churned slot, under aging. */
static void churned_slot_set(enum slot_op op, uint64_t gpa)
{
	bool in_window = slot_window_enter();
	int r = __vm_set_user_memory_region(vm, CHURN_SLOT, 0, gpa,
					    op == SLOT_DELETE ? 0 : churn_bytes, churn_mem);

	if (in_window)
		slot_window_leave();
	TEST_ASSERT(!r, "%s of the churned slot (GPA 0x%lx) failed, errno %d",
		    slot_op_name[op], gpa, errno);
	WRITE_ONCE(slot_ops[op], slot_ops[op] + 1);
	if (in_window)
		WRITE_ONCE(slot_ops_aging[op], slot_ops_aging[op] + 1);
}

/* -M: the host's view of the churned memory, with the toucher out of KVM_RUN. */
static void check_churned_mem(const char *when)
{
	uint64_t iter = READ_ONCE(toucher_iter), i, got, want;

	for (i = 0; i < CHURN_PAGES; i++) {
		got = *(uint64_t *)(churn_mem + i * guest_page_size);
		want = iter ? pattern(iter, TOUCHER_IDX, i) : 0;
		TEST_ASSERT(got == want, "churned page %lu %s: 0x%lx, want 0x%lx (toucher pass %lu)",
			    i, when, got, want, iter);
	}
}

/* -M: delete + re-create, or move away + toucher pass there + move back. */
static void churn_slot_round(uint64_t round)
{
	toucher_pass_then_pause();
	check_churned_mem(round & 1 ? "before a delete" : "before a move");
	if (round & 1) {
		churned_slot_set(SLOT_DELETE, CHURN_GPA);
		churned_slot_set(SLOT_CREATE, CHURN_GPA);
		check_churned_mem("after a delete and re-create");
	} else {
		churned_slot_set(SLOT_MOVE, CHURN_ALT_GPA);
		*churn_base_hva = CHURN_ALT_GPA;
		toucher_pass_then_pause();
		check_churned_mem("after a move");
		churned_slot_set(SLOT_MOVE, CHURN_GPA);
		*churn_base_hva = CHURN_GPA;
		check_churned_mem("after a move back");
	}
	toucher_resume();
}

/*
 * Rmap churn: dirty logging on/off, a memslot deleted and re-created
 * (unless -c 0), and with -M the aged slot deleted and moved.
 */
static void *churn_thread(void *arg)
{
	uint64_t *rounds = arg;

	while (!READ_ONCE(stop)) {
		if (scratch_churn) {
			vm_mem_region_set_flags(vm, TEST_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
			usleep(2000);
			vm_mem_region_set_flags(vm, TEST_SLOT, 0);
			vm_mem_region_delete(vm, SCRATCH_SLOT);
			vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SCRATCH_GPA,
						    SCRATCH_SLOT, SCRATCH_PAGES, 0);
		}
		if (memslot_churn)
			churn_slot_round(*rounds);
		(*rounds)++;
		if (scratch_churn)
			usleep(2000);
	}
	return NULL;
}

/* -M: did the churn do what the test is for? (read while it runs) */
static bool slot_churn_enough(void)
{
	uint64_t *ops = aging ? slot_ops_aging : slot_ops;

	return READ_ONCE(ops[SLOT_DELETE]) && READ_ONCE(ops[SLOT_MOVE]);
}

static void help(const char *name)
{
	printf("usage: %s [-v vcpus] [-b bytes per vCPU] [-d seconds] [-a 0|1] [-c 0|1] [-e N] [-M] [-Q]\n"
	       " -a: run the ager thread (default 1); -c: dirty logging + scratch-slot churn (default 1)\n"
	       "     (-a 0 -c 0 measures the vCPUs alone, for benchmarks)\n"
	       " -e: retry KVM_RUN on ENOMEM and require at least N such failures\n"
	       " -M: the churn thread also deletes/re-creates and moves (and moves back) a\n"
	       "     memslot of %d pages while the ager walks its memory; an extra vCPU\n"
	       "     checks and rewrites the slot's data between these changes (with -c 0\n"
	       "     the churn thread does only this); runs past -d until at least one\n"
	       "     delete and one move happened during aging\n"
	       " -Q: disable KVM_X86_QUIRK_SLOT_ZAP_ALL (deleting or moving a slot zaps only\n"
	       "     that slot's SPTEs instead of all of them)\n", name, CHURN_PAGES);
	exit(KSFT_SKIP);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpus[MAX_VCPUS + 1];
	pthread_t vt[MAX_VCPUS + 1], at, ct;
	uint64_t bytes = 8 << 20, npages, i, churn_rounds = 0;
	int nr_vcpus = 2, seconds = 10, opt, v, nr_all;
	uint64_t total_iters = 0, min_enomem = 0, extra_ms = 0;
	bool noquirk = false, churn;
	struct aged_range ranges[3] = {};
	uint8_t *hva;

	while ((opt = getopt(argc, argv, "v:b:d:a:c:e:MQh")) != -1) {
		switch (opt) {
		case 'a': aging = atoi_non_negative("aging", optarg); break;
		case 'c': scratch_churn = atoi_non_negative("churn", optarg); break;
		case 'e':
			min_enomem = atoi_non_negative("ENOMEM failures", optarg);
			retry_enomem = true;
			break;
		case 'v': nr_vcpus = atoi_positive("vCPUs", optarg); break;
		case 'b': bytes = parse_size(optarg); break;
		case 'd': seconds = atoi_positive("seconds", optarg); break;
		case 'M': memslot_churn = true; break;
		case 'Q': noquirk = true; break;
		default: help(argv[0]);
		}
	}
	TEST_REQUIRE(nr_vcpus <= MAX_VCPUS);
	churn = scratch_churn || memslot_churn;
	if (noquirk)
		TEST_REQUIRE(kvm_check_cap(KVM_CAP_DISABLE_QUIRKS2) & KVM_X86_QUIRK_SLOT_ZAP_ALL);

	/* With -M, one more vCPU: the toucher of the churned slot. */
	nr_all = nr_vcpus + memslot_churn;
	vm = vm_create_with_vcpus(nr_all, guest_code, vcpus);
	if (noquirk)
		vm_enable_cap(vm, KVM_CAP_DISABLE_QUIRKS2, KVM_X86_QUIRK_SLOT_ZAP_ALL);
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
	ranges[0] = (struct aged_range){ .hva = addr_gpa2hva(vm, TEST_GPA), .npages = npages };

	if (memslot_churn) {
		/*
		 * Not a library region: its host memory must outlive the slot,
		 * and the library's region lists are not changed under the
		 * vCPU threads' ucall lookups.
		 */
		churn_bytes = CHURN_PAGES * guest_page_size;
		churn_mem = mmap(NULL, churn_bytes, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		TEST_ASSERT(churn_mem != MAP_FAILED, "mmap of the churned slot's memory");
		madvise(churn_mem, churn_bytes, MADV_NOHUGEPAGE);
		memset(churn_mem, 0, churn_bytes);
		vm_set_user_memory_region(vm, CHURN_SLOT, 0, CHURN_GPA, churn_bytes, churn_mem);
		virt_map(vm, CHURN_GPA, CHURN_GPA, CHURN_PAGES);
		virt_map(vm, CHURN_ALT_GPA, CHURN_ALT_GPA, CHURN_PAGES);
		churn_base = CHURN_GPA;
		sync_global_to_guest(vm, churn_base);
		churn_base_hva = addr_gva2hva(vm, (vm_vaddr_t)&churn_base);
		vcpu_args_set(vcpus[nr_vcpus], 1, (uint64_t)TOUCHER_IDX);
		ranges[1] = (struct aged_range){ .hva = churn_mem, .npages = CHURN_PAGES,
						 .churned = true };
	}

	pr_info("%d vCPUs x %lu pages, %d s of %s%s%s%s\n", nr_vcpus, pages_per_vcpu, seconds,
		aging ? "aging" : "no aging", scratch_churn ? " + churn" : "",
		memslot_churn ? " + aged memslot deleted/moved" : "",
		noquirk ? ", KVM_X86_QUIRK_SLOT_ZAP_ALL disabled" : "");
	for (v = 0; v < nr_vcpus; v++)
		pthread_create(&vt[v], NULL, vcpu_thread, vcpus[v]);
	if (memslot_churn)
		pthread_create(&vt[nr_vcpus], NULL, toucher_thread, vcpus[nr_vcpus]);
	if (aging)
		pthread_create(&at, NULL, ager_thread, ranges);
	if (churn)
		pthread_create(&ct, NULL, churn_thread, &churn_rounds);
	sleep(seconds);
	/* No timing threshold: run on until the slot churn has happened. */
	while (memslot_churn && !slot_churn_enough()) {
		usleep(100 * 1000);
		extra_ms += 100;
	}
	WRITE_ONCE(stop, true);
	for (v = 0; v < nr_all; v++)
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
	if (memslot_churn) {
		TEST_ASSERT(toucher_iter > 0, "the toucher vCPU completed no pass");
		check_churned_mem("at the end");
		pr_info("churned slot: %lu deletes, %lu re-creates, %lu moves (away or back); "
			"during aging: %lu deletes, %lu re-creates, %lu moves; "
			"ager re-walks during an ioctl %lu; toucher passes %lu; "
			"young in the slot %lu; ran %lu ms past -d\n",
			slot_ops[SLOT_DELETE], slot_ops[SLOT_CREATE], slot_ops[SLOT_MOVE],
			slot_ops_aging[SLOT_DELETE], slot_ops_aging[SLOT_CREATE],
			slot_ops_aging[SLOT_MOVE], ager_rewalks, toucher_iter,
			young_churned, extra_ms);
	}
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
	TEST_ASSERT(!memslot_churn || (slot_ops_aging[SLOT_DELETE] > 0 && slot_ops_aging[SLOT_MOVE] > 0) ||
		    (!aging && slot_ops[SLOT_DELETE] > 0 && slot_ops[SLOT_MOVE] > 0),
		    "churned slot: %lu deletes and %lu moves during aging, want at least one each",
		    slot_ops_aging[SLOT_DELETE], slot_ops_aging[SLOT_MOVE]);
	/* vCPUs wrote all the time: aging that never sees young is broken. */
	TEST_ASSERT(!aging || young_seen > 0, "aging saw no young page in %lu checks",
		    pages_checked);
	/* The toucher wrote the churned slot between rounds: aged it too. */
	TEST_ASSERT(!aging || !memslot_churn || young_churned > 0,
		    "aging saw no young page in the churned slot");
	kvm_vm_free(vm);
	if (memslot_churn)
		munmap(churn_mem, churn_bytes);
	return 0;
}
