// SPDX-License-Identifier: GPL-2.0

//! Model-based property test: random add / remove / zap / age / test-age /
//! SPTE changes over many heads, against a plain `Vec` model.

mod common;

use common::{check_shape, TrackingAlloc};
use kvm_rs_host::age::{self, AgeParams};
use kvm_rs_host::rmap::{RmapError, RmapHead, SptePtr};
use kvm_rs_host::shared::SpteWord;
use proptest::prelude::*;

const HEADS: usize = 6;
const SPTES: usize = 48;

#[derive(Clone, Debug)]
enum Op {
    /// Add SPTE `s` (if it is in no rmap) to head `h`.
    Add(usize, usize),
    /// Remove the `k`-th SPTE (mod count) of head `h`.
    Remove(usize, usize),
    /// Remove an SPTE that is not in head `h`.
    RemoveAbsent(usize, usize),
    Zap(usize),
    Age(usize, usize),
    TestAge(usize, usize),
    /// The CPU accesses SPTE `s` (sets Accessed / undoes access tracking).
    Touch(usize),
    /// KVM zaps SPTE `s` in its page table before removing the rmap entry.
    ClearSpte(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..HEADS, 0..SPTES).prop_map(|(h, s)| Op::Add(h, s)),
        3 => (0..HEADS, 0..64usize).prop_map(|(h, k)| Op::Remove(h, k)),
        1 => (0..HEADS, 0..SPTES).prop_map(|(h, s)| Op::RemoveAbsent(h, s)),
        1 => (0..HEADS).prop_map(Op::Zap),
        2 => (0..HEADS, 0..=HEADS).prop_map(|(a, b)| Op::Age(a.min(b), a.max(b))),
        2 => (0..HEADS, 0..=HEADS).prop_map(|(a, b)| Op::TestAge(a.min(b), a.max(b))),
        3 => (0..SPTES).prop_map(Op::Touch),
        1 => (0..SPTES).prop_map(Op::ClearSpte),
    ]
}

/// Odd SPTEs are A/D-disabled EPT SPTEs, even ones A/D-enabled.
fn young_value(s: usize) -> u64 {
    let base = (1 << 11) | 0x7 | ((s as u64) << 12);
    if s % 2 == 0 {
        base | (1 << 8)
    } else {
        base | age::SPTE_TDP_AD_DISABLED
    }
}

struct Model {
    heads: Vec<Vec<usize>>,
    young: Vec<bool>,
    present: Vec<bool>,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let p = AgeParams::EPT_AD;
    let sptes: Vec<SpteWord> = (0..SPTES).map(|s| SpteWord::new(young_value(s))).collect();
    let ptr = |s: usize| -> SptePtr { &sptes[s] };
    let index = |q: SptePtr| -> usize { sptes.iter().position(|x| std::ptr::eq(x, q)).unwrap() };
    let heads: Vec<RmapHead> = (0..HEADS).map(|_| RmapHead::new()).collect();
    let mut a = TrackingAlloc::new();
    let mut m = Model {
        heads: vec![Vec::new(); HEADS],
        young: vec![true; SPTES],
        present: vec![true; SPTES],
    };
    let in_rmap = |m: &Model, s: usize| m.heads.iter().any(|h| h.contains(&s));

    for o in ops {
        match o {
            Op::Add(h, s) => {
                if in_rmap(&m, s) {
                    continue;
                }
                // A new mapping: present and young.
                sptes[s].store(young_value(s));
                m.young[s] = true;
                m.present[s] = true;
                // SAFETY: Single-threaded; `sptes` outlives `heads`.
                let r = unsafe { heads[h].add(ptr(s), &mut a) };
                prop_assert_eq!(r, Ok(m.heads[h].len()));
                m.heads[h].push(s);
            }
            Op::Remove(h, k) => {
                if m.heads[h].is_empty() {
                    // SAFETY: Single-threaded.
                    let r = unsafe { heads[h].remove(ptr(0), &mut a) };
                    prop_assert_eq!(r, Err(RmapError::Empty));
                    continue;
                }
                let i = k % m.heads[h].len();
                let s = m.heads[h].swap_remove(i);
                // SAFETY: Single-threaded.
                prop_assert_eq!(unsafe { heads[h].remove(ptr(s), &mut a) }, Ok(()));
            }
            Op::RemoveAbsent(h, s) => {
                if m.heads[h].contains(&s) {
                    continue;
                }
                let want = if m.heads[h].is_empty() {
                    RmapError::Empty
                } else {
                    RmapError::NotFound
                };
                // SAFETY: Single-threaded.
                prop_assert_eq!(unsafe { heads[h].remove(ptr(s), &mut a) }, Err(want));
            }
            Op::Zap(h) => {
                let mut seen = Vec::new();
                // SAFETY: Single-threaded.
                let r = unsafe {
                    heads[h].zap_all(&mut a, |q| {
                        seen.push(index(q));
                        (*q).store(age::SHADOW_NONPRESENT_VALUE);
                    })
                };
                prop_assert_eq!(r, Ok(!m.heads[h].is_empty()));
                seen.sort();
                let mut want = std::mem::take(&mut m.heads[h]);
                want.sort();
                prop_assert_eq!(seen, want.clone());
                for s in want {
                    m.present[s] = false;
                }
            }
            Op::Age(lo, hi) | Op::TestAge(lo, hi) => {
                let test_only = matches!(o, Op::TestAge(..));
                let mut want = false;
                for h in lo..hi {
                    for &s in &m.heads[h] {
                        if m.present[s] && m.young[s] {
                            want = true;
                            if !test_only {
                                m.young[s] = false;
                            }
                        }
                    }
                }
                prop_assert_eq!(age::age_range(&heads[lo..hi], test_only, &p), Ok(want));
            }
            Op::Touch(s) => {
                if m.present[s] {
                    sptes[s].store(young_value(s));
                    m.young[s] = true;
                }
            }
            Op::ClearSpte(s) => {
                sptes[s].store(age::SHADOW_NONPRESENT_VALUE);
                m.present[s] = false;
            }
        }
        // After every step: shape, count, contents (order-independent),
        // young state and descriptor accounting.
        let mut descs = 0;
        for h in 0..HEADS {
            descs += check_shape(&heads[h], m.heads[h].len());
            // SAFETY: Single-threaded.
            prop_assert_eq!(unsafe { heads[h].count() }, m.heads[h].len());
            // SAFETY: Single-threaded.
            let mut got: Vec<usize> = unsafe { heads[h].iter() }.map(index).collect();
            got.sort();
            let mut want = m.heads[h].clone();
            want.sort();
            prop_assert_eq!(got, want);
        }
        for s in 0..SPTES {
            let v = sptes[s].load();
            if m.present[s] {
                prop_assert_eq!(p.is_young(v), m.young[s], "spte {} = {:#x}", s, v);
            } else {
                prop_assert!(!p.is_present(v));
            }
        }
        prop_assert_eq!(a.live(), descs, "descriptor leak or early free");
        prop_assert_eq!(a.bad_frees, 0, "double free");
    }
    for h in &heads {
        // SAFETY: Single-threaded.
        unsafe { h.zap_all(&mut a, |_| {}) }.unwrap();
    }
    prop_assert_eq!(a.live(), 0);
    prop_assert_eq!(a.allocs, a.frees);
    prop_assert_eq!(a.bad_frees, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rmap_matches_model(ops in prop::collection::vec(op(), 1..300)) {
        run(ops)?;
    }
}
