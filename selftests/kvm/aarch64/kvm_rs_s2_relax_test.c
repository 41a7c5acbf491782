// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_rs_s2_relax_test: vCPUs fault the same pages with different
 * permissions (read, write, execute) while the host toggles dirty logging,
 * which write-protects the pages again and again.
 *
 * Every page holds one 64-bit slot per vCPU and a RET instruction at its
 * end. In round r, vCPU v accesses page i as (i + r + v) % 3:
 *   0: read its slot and check it holds what it last wrote there;
 *   1: write a new pattern into its slot;
 *   2: call the RET at the end of the page (an instruction fetch, so the
 *      stage-2 entry needs X), then check its slot.
 * So at any time the vCPUs want R, RW and RX on the same page: the
 * permission fault path must add permissions (never take one away) and
 * make progress. The host checks every slot at the end, and reads the
 * kvm-rs debugfs counters (kvm_rs/s2/) before and after: permission
 * relaxation in place must have happened, the number of retries must be
 * bounded, and each vCPU must finish its rounds before a watchdog fires
 * (a livelock would leave a vCPU faulting forever).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bitmap.h>

#include "kvm_util.h"
#include "test_util.h"
#include "ucall_common.h"
#include "processor.h"
#include "kvm_rs_s2_util.h"

#define TEST_SLOT	1
#define TEST_GPA	(1ULL << 30)
#define MAX_VCPUS	8
#define MAX_PAGES	1024
#define AARCH64_RET	0xd65f03c0U

static uint64_t nr_pages = 256;
static uint64_t nr_rounds = 12;
static uint64_t guest_page_size;
static uint64_t last[MAX_VCPUS][MAX_PAGES];	/* guest-side bookkeeping */

static uint64_t pattern(uint64_t v, uint64_t i, uint64_t r)
{
	return 0x6b766d2d73320000ULL ^ (v << 40) ^ (i << 16) ^ (r + 1);
}

static void guest_code(uint64_t v)
{
	uint64_t r, i;

	for (r = 0; r < nr_rounds; r++) {
		for (i = 0; i < nr_pages; i++) {
			uint64_t page = TEST_GPA + i * guest_page_size;
			volatile uint64_t *slot = (volatile uint64_t *)page + v;
			void (*ret_stub)(void) =
				(void (*)(void))(page + guest_page_size - 4);

			if ((i + r + v) % 3 == 1) {
				*slot = pattern(v, i, r);
				last[v][i] = pattern(v, i, r);
				continue;
			}
			if ((i + r + v) % 3 == 2)
				ret_stub();
			GUEST_ASSERT_EQ(*slot, last[v][i]);
		}
		GUEST_SYNC(r);
	}
	GUEST_DONE();
}

static const char *const counters[] = {
	"relaxed", "relax_unchanged", "relax_eagain", "deferred", "install",
	"full_bbm", "break_skipped", "tlbi_local", "tlbi_bcast_ipa",
	"tlbi_bcast_vmid", "tlbi_bcast_range", "conflict_abort", "bug",
};
#define NR_COUNTERS	(sizeof(counters) / sizeof(counters[0]))
enum { C_RELAXED, C_UNCHANGED, C_EAGAIN, C_DEFERRED, C_INSTALL, C_FULL_BBM,
       C_SKIPPED, C_LOCAL, C_BIPA, C_BVMID, C_BRANGE, C_CONFLICT, C_BUG };

static void read_counters(uint64_t *val)
{
	char path[128];
	size_t i;

	for (i = 0; i < NR_COUNTERS; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/kernel/debug/kvm_rs/s2/%s", counters[i]);
		f = fopen(path, "r");
		TEST_ASSERT(f, "kvm-rs counter %s missing (debugfs mounted?)", path);
		TEST_ASSERT(fscanf(f, "%lu", &val[i]) == 1, "cannot parse %s", path);
		fclose(f);
	}
}

static unsigned int read_param(const char *name)
{
	char path[128];
	unsigned int v;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/kvm_rs/parameters/%s", name);
	f = fopen(path, "r");
	TEST_ASSERT(f, "kvm-rs parameter %s missing", path);
	TEST_ASSERT(fscanf(f, "%u", &v) == 1, "cannot parse %s", path);
	fclose(f);
	return v;
}

struct vcpu_thread {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	volatile uint64_t rounds_done;
	volatile bool done;
};

static struct vcpu_thread threads[MAX_VCPUS];

static void *vcpu_worker(void *arg)
{
	struct vcpu_thread *t = arg;
	struct ucall uc;

	for (;;) {
		vcpu_run(t->vcpu);
		switch (get_ucall(t->vcpu, &uc)) {
		case UCALL_SYNC:
			TEST_ASSERT_EQ(uc.args[1], t->rounds_done);
			t->rounds_done++;
			break;
		case UCALL_DONE:
			t->done = true;
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
	}
}

static void help(const char *name)
{
	printf("usage: %s [-v vcpus] [-p pages] [-r rounds] [-t watchdog_s]\n"
	       " -v: number of vCPUs (1-%d, default 2)\n"
	       " -p: pages shared by all vCPUs (1-%d, default %lu)\n"
	       " -r: rounds of accesses per vCPU (default %lu)\n"
	       " -t: fail if no vCPU makes progress for this long (default 120 s)\n",
	       name, MAX_VCPUS, MAX_PAGES, nr_pages, nr_rounds);
	exit(0);
}

int main(int argc, char *argv[])
{
	uint64_t before[NR_COUNTERS], after[NR_COUNTERS], d[NR_COUNTERS];
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	unsigned int nr_vcpus = 2, watchdog = 120, mode, v;
	uint64_t i, r, toggles = 0, progress, last_progress = 0;
	unsigned long *bitmap;
	struct timespec t0, t1;
	time_t last_change;
	struct kvm_vm *vm;
	uint8_t *hva;
	bool all_done;
	size_t c;
	int opt;

	while ((opt = getopt(argc, argv, "hv:p:r:t:")) != -1) {
		switch (opt) {
		case 'v': nr_vcpus = atoi_positive("vCPUs", optarg); break;
		case 'p': nr_pages = atoi_positive("pages", optarg); break;
		case 'r': nr_rounds = atoi_positive("rounds", optarg); break;
		case 't': watchdog = atoi_positive("watchdog", optarg); break;
		default: help(argv[0]);
		}
	}
	TEST_ASSERT(nr_vcpus <= MAX_VCPUS && nr_pages <= MAX_PAGES, "too many vCPUs or pages");

	mode = read_param("s2_mode");
	/* s2_mode=1 must really mean kvm-rs's decisions. */
	TEST_ASSERT(s2_all("active") == mode,
		    "kvm_rs.s2_mode=%u but kvm-rs decisions active=%lu (LPA2 kernel?)",
		    mode, s2_all("active"));
	pr_info("kvm_rs.s2_mode=%u (%s decisions), s2_bbml2=%u; %u vCPUs, %lu pages, %lu rounds\n",
		mode, mode ? "kvm-rs" : "6.12 C", read_param("s2_bbml2"),
		nr_vcpus, nr_pages, nr_rounds);

	vm = vm_create_with_vcpus(nr_vcpus, guest_code, vcpus);
	guest_page_size = vm->page_size;
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA, TEST_SLOT,
				    nr_pages, 0);
	virt_map(vm, TEST_GPA, TEST_GPA, nr_pages);
	sync_global_to_guest(vm, guest_page_size);
	sync_global_to_guest(vm, nr_pages);
	sync_global_to_guest(vm, nr_rounds);
	hva = addr_gpa2hva(vm, TEST_GPA);
	for (i = 0; i < nr_pages; i++)
		*(uint32_t *)(hva + (i + 1) * guest_page_size - 4) = AARCH64_RET;
	bitmap = bitmap_zalloc(nr_pages);

	read_counters(before);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (v = 0; v < nr_vcpus; v++) {
		threads[v].vcpu = vcpus[v];
		vcpu_args_set(vcpus[v], 1, (uint64_t)v);
		pthread_create(&threads[v].thread, NULL, vcpu_worker, &threads[v]);
	}

	/*
	 * Toggle dirty logging until every vCPU is done: enabling it and
	 * each KVM_GET_DIRTY_LOG write-protect the pages, so write faults
	 * keep coming back to the permission relaxation path.
	 */
	last_change = time(NULL);
	do {
		vm_mem_region_set_flags(vm, TEST_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
		usleep(20000);
		kvm_vm_get_dirty_log(vm, TEST_SLOT, bitmap);
		usleep(20000);
		kvm_vm_get_dirty_log(vm, TEST_SLOT, bitmap);
		vm_mem_region_set_flags(vm, TEST_SLOT, 0);
		usleep(10000);
		toggles++;

		all_done = true;
		progress = 0;
		for (v = 0; v < nr_vcpus; v++) {
			progress += threads[v].rounds_done + threads[v].done;
			all_done &= threads[v].done;
		}
		if (progress != last_progress) {
			last_progress = progress;
			last_change = time(NULL);
		}
		TEST_ASSERT(time(NULL) - last_change < watchdog,
			    "no vCPU progress for %u s (livelock?): %lu rounds done",
			    watchdog, progress);
	} while (!all_done);

	for (v = 0; v < nr_vcpus; v++)
		pthread_join(threads[v].thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	read_counters(after);

	/* Data integrity: every slot holds the last pattern its vCPU wrote. */
	for (v = 0; v < nr_vcpus; v++) {
		for (i = 0; i < nr_pages; i++) {
			uint64_t want = 0, got = *((uint64_t *)(hva + i * guest_page_size) + v);

			for (r = 0; r < nr_rounds; r++)
				if ((i + r + v) % 3 == 1)
					want = pattern(v, i, r);
			TEST_ASSERT(got == want, "vCPU %u page %lu: 0x%lx, want 0x%lx",
				    v, i, got, want);
		}
	}

	printf("kvm_rs_s2 counters (delta):");
	for (c = 0; c < NR_COUNTERS; c++) {
		d[c] = after[c] - before[c];
		printf(" %s=%lu", counters[c], d[c]);
	}
	printf("\n");
	printf("run time: %.3fs\n",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	pr_info("%u vCPUs x %lu rounds x %lu pages coherent across %lu dirty-log toggles\n",
		nr_vcpus, nr_rounds, nr_pages, toggles);

	TEST_ASSERT(d[C_RELAXED] > 0, "no permission relaxed in place");
	TEST_ASSERT(d[C_BUG] == 0, "kvm-rs reported an impossible stage-2 state");
	/*
	 * Bounded retries: each fault is retried a bounded number of times
	 * (Documentation/arm64-stage2.rst, "Forward progress"); a livelock
	 * would make the retries dwarf the work done.
	 */
	TEST_ASSERT(d[C_EAGAIN] + d[C_DEFERRED] <=
		    8 * (d[C_RELAXED] + d[C_UNCHANGED] + d[C_INSTALL] + d[C_FULL_BBM]) + 10000,
		    "too many retries: %lu relax -EAGAIN + %lu deferred",
		    d[C_EAGAIN], d[C_DEFERRED]);

	free(bitmap);
	kvm_vm_free(vm);
	return 0;
}
