// SPDX-License-Identifier: GPL-2.0

//! `make bench-host`: rmap aging and writer throughput, kvm-rs's bit lock vs
//! a "bare" baseline (same atomics, no lock bit on single-SPTE heads: the
//! physical limit, not a correct design) and a "6.12" baseline (one global
//! rwlock, taken for write by the ager per 1024 heads and by each writer
//! per change, like `mmu_lock`).
//!
//! Prints `ratio <name> <value>` lines and writes JSON to `$KVMRS_BENCH_OUT`
//! (default `rust/host/target/bench-host.json`). Then runs a short
//! Criterion group of single-threaded sweeps (skip with
//! `KVMRS_BENCH_NO_CRITERION=1`). Run:
//!   cd rust/host && cargo bench --bench rmap_age -j1
//!
//! Writers ("vCPUs") each own the heads `h % writers == w` (KVM's writers
//! are serialized by `mmu_lock`; partitioning gives the same per-head
//! exclusion without a global lock) and pick random heads in their part:
//! remove the head's first SPTE, make it young, add it back.

use criterion::Criterion;
use kvm_rs_host::age::{self, AgeParams};
use kvm_rs_host::rmap::{DescAlloc, PteListDesc, RmapHead, MANY};
use kvm_rs_host::shared::SpteWord;
use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Counts heap allocations of the whole process.
struct Counting;
static HEAP_ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: Forwards to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HEAP_ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: Forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: Forwarded.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Descriptor allocations through the `DescAlloc` trait.
static DESC_ALLOCS: AtomicU64 = AtomicU64::new(0);

struct Pool;
// SAFETY: Boxed descriptors are leaked to the caller and returned in `free`.
unsafe impl DescAlloc for Pool {
    fn alloc(&mut self) -> NonNull<PteListDesc> {
        DESC_ALLOCS.fetch_add(1, Relaxed);
        NonNull::from(Box::leak(Box::new(PteListDesc::new())))
    }
    unsafe fn free(&mut self, d: NonNull<PteListDesc>) {
        // SAFETY: `d` came from `alloc` (Box::into_raw).
        drop(unsafe { Box::from_raw(d.as_ptr()) });
    }
}

const N: usize = 1 << 20;
const CHUNK: usize = 1024;
const YOUNG: u64 = (1 << 11) | (1 << 5) | 1;
const PARAMS: AgeParams = AgeParams::X86_LEGACY;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Imp {
    KvmRs,
    Bare,
    V612,
}

struct Set {
    heads: Vec<RmapHead>,
    sptes: Vec<SpteWord>,
    first: Vec<u32>,
    mmu_lock: RwLock<()>,
}

impl Set {
    fn new(n: usize, mix: bool) -> Set {
        let per = |h: usize| if mix && h % 10 == 0 { 3 } else { 1 };
        let total: usize = (0..n).map(per).sum();
        let sptes: Vec<SpteWord> = (0..total).map(|_| SpteWord::new(YOUNG)).collect();
        let heads: Vec<RmapHead> = (0..n).map(|_| RmapHead::new()).collect();
        let mut first = Vec::with_capacity(n);
        let mut i = 0;
        for (h, head) in heads.iter().enumerate() {
            first.push(i as u32);
            for _ in 0..per(h) {
                // SAFETY: Single-threaded setup; `sptes` outlives `heads`
                // (both are dropped together, heads zapped first in Drop).
                unsafe { head.add(&sptes[i], &mut Pool) }.unwrap();
                i += 1;
            }
        }
        Set {
            heads,
            sptes,
            first,
            mmu_lock: RwLock::new(()),
        }
    }
}

impl Drop for Set {
    fn drop(&mut self) {
        for h in &self.heads {
            // SAFETY: No other thread runs any more.
            unsafe { h.zap_all(&mut Pool, |_| {}) }.unwrap();
        }
    }
}

/// One sweep over all heads; returns whether anything was young.
fn sweep(set: &Set, imp: Imp) -> bool {
    let mut young = false;
    match imp {
        Imp::KvmRs => {
            young = age::age_range(&set.heads, false, &PARAMS).unwrap();
        }
        Imp::Bare => {
            for h in &set.heads {
                let v = h.raw();
                if v == 0 {
                    continue;
                }
                if v & MANY == 0 {
                    // No lock bit: the SPTE array is never freed here, which
                    // is exactly what a real kernel cannot promise.
                    // SAFETY: `set.sptes` is alive for the whole run.
                    young |= unsafe {
                        age::age_spte((v & !3) as *const SpteWord, false, &PARAMS).young()
                    };
                } else {
                    young |= age::age_range(std::slice::from_ref(h), false, &PARAMS).unwrap();
                }
            }
        }
        Imp::V612 => {
            for c in set.heads.chunks(CHUNK) {
                let _g = set.mmu_lock.write().unwrap();
                for h in c {
                    // SAFETY: The global lock excludes all writers.
                    for q in unsafe { h.iter() } {
                        // SAFETY: As above; the SPTE is in the rmap.
                        young |= unsafe { age::age_spte(q, false, &PARAMS) }.young();
                    }
                }
            }
        }
    }
    young
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

fn writer(set: &Set, imp: Imp, w: usize, nw: usize, stop: &AtomicBool) -> (u64, u64) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1);
    let parts = (set.heads.len() - w).div_ceil(nw);
    let mut ops = 0u64;
    let mut pool = Pool;
    let c0 = thread_cpu_ns();
    while !stop.load(Relaxed) {
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = (x as usize % parts) * nw + w;
            let s = &set.sptes[set.first[h] as usize];
            let head = &set.heads[h];
            if imp == Imp::V612 {
                {
                    let _g = set.mmu_lock.write().unwrap();
                    // SAFETY: This writer owns head `h`; `s` is in it.
                    unsafe { head.remove(s, &mut pool) }.unwrap();
                }
                s.store(YOUNG);
                let _g = set.mmu_lock.write().unwrap();
                // SAFETY: As above; `s` outlives the rmap.
                unsafe { head.add(s, &mut pool) }.unwrap();
            } else {
                // SAFETY: As above.
                unsafe { head.remove(s, &mut pool) }.unwrap();
                s.store(YOUNG);
                // SAFETY: As above.
                unsafe { head.add(s, &mut pool) }.unwrap();
            }
            ops += 2;
        }
    }
    (ops, thread_cpu_ns() - c0)
}

#[derive(Default, Clone, Debug)]
struct Run {
    writer_mops: f64,
    writer_cpu_mops: f64,
    ager_ns_per_head: f64,
    max_sweep_ms: f64,
    sweeps: usize,
    heap_allocs: u64,
    desc_allocs: u64,
}

/// Runs `nw` writers and/or an ager for `dur` (the ager alone: `sweeps`
/// sweeps).
fn run(set: &Set, imp: Imp, nw: usize, ager: bool, dur: Duration) -> Run {
    let stop = AtomicBool::new(false);
    let mut r = Run::default();
    std::thread::scope(|sc| {
        let ws: Vec<_> = (0..nw)
            .map(|w| {
                let stop = &stop;
                sc.spawn(move || writer(set, imp, w, nw, stop))
            })
            .collect();
        let ag = ager.then(|| {
            let stop = &stop;
            sc.spawn(move || {
                let mut times = Vec::with_capacity(4096);
                let (h0, d0) = (HEAP_ALLOCS.load(Relaxed), DESC_ALLOCS.load(Relaxed));
                loop {
                    let t = Instant::now();
                    std::hint::black_box(sweep(set, imp));
                    times.push(t.elapsed());
                    if (nw == 0 && times.len() >= 5) || (nw > 0 && stop.load(Relaxed)) {
                        break;
                    }
                    if times.len() == times.capacity() {
                        break;
                    }
                }
                let allocs = (
                    HEAP_ALLOCS.load(Relaxed) - h0,
                    DESC_ALLOCS.load(Relaxed) - d0,
                );
                (times, allocs)
            })
        });
        let t0 = Instant::now();
        if nw > 0 {
            std::thread::sleep(dur);
            stop.store(true, Relaxed);
        }
        let mut ops = 0;
        let mut cpu = 0;
        for w in ws {
            let (o, c) = w.join().unwrap();
            ops += o;
            cpu += c;
        }
        let el = t0.elapsed().as_secs_f64();
        if nw > 0 {
            r.writer_mops = ops as f64 / el / 1e6;
            r.writer_cpu_mops = if cpu > 0 {
                ops as f64 / (cpu as f64 / 1e9) / 1e6 * nw as f64
            } else {
                0.0
            };
        }
        if let Some(ag) = ag {
            let (mut times, (ha, da)) = ag.join().unwrap();
            r.sweeps = times.len();
            r.max_sweep_ms = times.iter().max().unwrap().as_secs_f64() * 1e3;
            times.sort();
            r.ager_ns_per_head = times[times.len() / 2].as_nanos() as f64 / set.heads.len() as f64;
            if nw == 0 {
                r.heap_allocs = ha;
                r.desc_allocs = da;
            }
        }
    });
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median over rounds, field by field (max sweep: the maximum).
fn rounds(set: &Set, imp: Imp, nw: usize, ager: bool, n: usize, dur: Duration) -> Run {
    let rs: Vec<Run> = (0..n).map(|_| run(set, imp, nw, ager, dur)).collect();
    Run {
        writer_mops: median(rs.iter().map(|r| r.writer_mops).collect()),
        writer_cpu_mops: median(rs.iter().map(|r| r.writer_cpu_mops).collect()),
        ager_ns_per_head: median(rs.iter().map(|r| r.ager_ns_per_head).collect()),
        max_sweep_ms: rs.iter().map(|r| r.max_sweep_ms).fold(0.0, f64::max),
        sweeps: rs.iter().map(|r| r.sweeps).sum(),
        heap_allocs: rs.iter().map(|r| r.heap_allocs).sum(),
        desc_allocs: rs.iter().map(|r| r.desc_allocs).sum(),
    }
}

/// The per-SPTE aging rule as the TDP MMU's lockless walk reaches it: a
/// call into another module (kvm.ko -> kvm_rs.ko), never inlined. Same
/// rule as [`age::age_spte`], same arguments as `kvm_rs_age_spte()`.
#[inline(never)]
extern "C" fn age_spte_call(sptep: *const SpteWord, test_only: bool, p: &AgeParams) -> u32 {
    // SAFETY: The caller passes a live SPTE of its array.
    unsafe { age::age_spte(sptep, test_only, p) }.young() as u32
}

type AgeFn = extern "C" fn(*const SpteWord, bool, &AgeParams) -> u32;

/// ns per SPTE to age `sptes` (all young again before each pass), with
/// the rule inlined into the walk or called out of line.
fn spte_rule_pass(sptes: &[SpteWord], call: Option<AgeFn>) -> f64 {
    for s in sptes {
        s.store(YOUNG);
    }
    let t = Instant::now();
    let mut young = 0u32;
    match call {
        None => {
            for s in sptes {
                // SAFETY: `s` is a live SPTE of the array.
                young += unsafe { age::age_spte(s, false, &PARAMS) }.young() as u32;
            }
        }
        Some(f) => {
            for s in sptes {
                young += f(s, false, &PARAMS);
            }
        }
    }
    let dt = t.elapsed().as_nanos() as f64;
    assert_eq!(young as usize, sptes.len());
    dt / sptes.len() as f64
}

/// Median ns per SPTE of the inlined rule and of the out-of-line call,
/// measured in alternating rounds.
fn spte_rule_cost(rounds: usize) -> (f64, f64) {
    let sptes: Vec<SpteWord> = (0..1 << 16).map(|_| SpteWord::new(0)).collect();
    let f: AgeFn = std::hint::black_box(age_spte_call);
    let (mut inl, mut out) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(5) {
        inl.push(spte_rule_pass(&sptes, None));
        out.push(spte_rule_pass(&sptes, Some(f)));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    (med(&mut inl), med(&mut out))
}

fn main() {
    let out = std::env::var("KVMRS_BENCH_OUT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-host.json").into());
    let nrounds: usize = std::env::var("KVMRS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dur = Duration::from_millis(
        std::env::var("KVMRS_BENCH_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(400),
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results: Vec<(String, Run)> = Vec::new();
    let mut ratios: Vec<(String, f64)> = Vec::new();
    let t_all = Instant::now();

    for (lname, mix) in [("single", false), ("mix", true)] {
        let set = Set::new(N, mix);
        let mut get = |imp: Imp, nw: usize, ager: bool| -> Run {
            let r = rounds(&set, imp, nw, ager, nrounds, dur);
            let name = format!(
                "{lname}/{imp:?}/w{nw}/{}",
                if ager { "ager" } else { "noager" }
            );
            eprintln!("{name}: {r:?}");
            results.push((name, r.clone()));
            r
        };
        let k_alone = get(Imp::KvmRs, 0, true);
        let b_alone = get(Imp::Bare, 0, true);
        let v_alone = get(Imp::V612, 0, true);
        let k_w1 = get(Imp::KvmRs, 1, false);
        let k_w1a = get(Imp::KvmRs, 1, true);
        let k_w3 = get(Imp::KvmRs, 3, false);
        let k_w3a = get(Imp::KvmRs, 3, true);
        let b_w1a = get(Imp::Bare, 1, true);
        let v_w1 = get(Imp::V612, 1, false);
        let v_w1a = get(Imp::V612, 1, true);
        let v_w3a = get(Imp::V612, 3, true);
        let mut r = |n: &str, v: f64| ratios.push((format!("{n}_{lname}"), v));
        r(
            "writers_with_ager_vs_alone_1w",
            k_w1a.writer_mops / k_w1.writer_mops,
        );
        r(
            "writers_with_ager_vs_alone_3w",
            k_w3a.writer_mops / k_w3.writer_mops,
        );
        r(
            "writers_with_ager_vs_alone_cpu_1w",
            k_w1a.writer_cpu_mops / k_w1.writer_cpu_mops,
        );
        r(
            "writers_with_ager_vs_alone_cpu_3w",
            k_w3a.writer_cpu_mops / k_w3.writer_cpu_mops,
        );
        r(
            "kvmrs_vs_612_writers_1w",
            k_w1a.writer_mops / v_w1a.writer_mops,
        );
        r(
            "kvmrs_vs_612_writers_3w",
            k_w3a.writer_mops / v_w3a.writer_mops,
        );
        r(
            "612_writers_with_ager_vs_alone_1w",
            v_w1a.writer_mops / v_w1.writer_mops,
        );
        r(
            "kvmrs_ager_vs_612_ager",
            k_alone.ager_ns_per_head / v_alone.ager_ns_per_head,
        );
        r(
            "kvmrs_ager_vs_612_ager_1w",
            k_w1a.ager_ns_per_head / v_w1a.ager_ns_per_head,
        );
        r(
            "bare_ager_vs_kvmrs_ager",
            b_alone.ager_ns_per_head / k_alone.ager_ns_per_head,
        );
        r(
            "bare_ager_vs_kvmrs_ager_1w",
            b_w1a.ager_ns_per_head / k_w1a.ager_ns_per_head,
        );
        r("kvmrs_ager_ns_per_head", k_alone.ager_ns_per_head);
        r("612_ager_ns_per_head", v_alone.ager_ns_per_head);
        r("kvmrs_writer_mops_1w_with_ager", k_w1a.writer_mops);
        r("612_writer_mops_1w_with_ager", v_w1a.writer_mops);
        r("max_sweep_ms_3w", k_w3a.max_sweep_ms);
        r(
            "max_sweep_3w_vs_alone_median",
            k_w3a.max_sweep_ms / (k_alone.ager_ns_per_head * N as f64 / 1e6),
        );
        r(
            "ager_heap_allocs",
            (k_alone.heap_allocs + b_alone.heap_allocs) as f64,
        );
        r(
            "ager_desc_allocs",
            (k_alone.desc_allocs + b_alone.desc_allocs) as f64,
        );
    }

    // The TDP MMU walk calls the Rust rule once per young leaf SPTE.
    let (inl, call) = spte_rule_cost(3 * nrounds);
    eprintln!("per-SPTE rule: inline {inl:.2} ns, out-of-line call {call:.2} ns");
    ratios.push(("spte_rule_inline_ns".into(), inl));
    ratios.push(("spte_rule_call_ns".into(), call));
    ratios.push(("spte_rule_call_vs_inline".into(), call / inl));

    for (n, v) in &ratios {
        println!("ratio {n} {v:.3}");
    }
    let mut j = String::from("{\n");
    j += &format!("  \"cpus\": {cpus},\n  \"heads\": {N},\n  \"rounds\": {nrounds},\n");
    j += &format!(
        "  \"run_ms\": {},\n  \"elapsed_s\": {:.1},\n",
        dur.as_millis(),
        t_all.elapsed().as_secs_f64()
    );
    j += "  \"ratios\": {\n";
    let rs: Vec<String> = ratios
        .iter()
        .map(|(n, v)| format!("    \"{n}\": {v:.4}"))
        .collect();
    j += &rs.join(",\n");
    j += "\n  },\n  \"runs\": {\n";
    let rs: Vec<String> = results
        .iter()
        .map(|(n, r)| {
            format!(
                "    \"{n}\": {{\"writer_mops\": {:.4}, \"writer_cpu_mops\": {:.4}, \"ager_ns_per_head\": {:.3}, \"max_sweep_ms\": {:.3}, \"sweeps\": {}}}",
                r.writer_mops, r.writer_cpu_mops, r.ager_ns_per_head, r.max_sweep_ms, r.sweeps
            )
        })
        .collect();
    j += &rs.join(",\n");
    j += "\n  }\n}\n";
    if let Some(d) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(d);
    }
    std::fs::write(&out, j).expect("write bench output");
    eprintln!("wrote {out} in {:.1} s", t_all.elapsed().as_secs_f64());

    if std::env::var_os("KVMRS_BENCH_NO_CRITERION").is_none() {
        let set = Set::new(1 << 16, false);
        let mut c = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .configure_from_args();
        let mut g = c.benchmark_group("sweep_64Ki_single");
        for imp in [Imp::KvmRs, Imp::Bare, Imp::V612] {
            g.bench_function(format!("{imp:?}"), |b| b.iter(|| sweep(&set, imp)));
        }
        g.finish();
        c.final_summary();
    }
}
