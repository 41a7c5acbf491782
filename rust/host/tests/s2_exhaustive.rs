// SPDX-License-Identifier: GPL-2.0

//! Exhaustive host verification of `rust/core/s2.rs`.
//!
//! * A reference model written as plain tables of rules (first matching
//!   row wins), over abstract facts of a case: entry kinds, "same output
//!   address?", "same attributes?", how the permission sets relate, and
//!   whether FEAT_BBM level 2 may be used. It never looks at descriptor
//!   bits. Every combination is encoded into real descriptors, given to
//!   the Rust functions, and the answers compared with the model.
//! * Invariants checked on every case, independently of the model.
//! * Mutation tests: wrong model rows, a numeric (non-set) permission
//!   comparison and broken implementations must all be caught.
//! * A forward-progress model: every interleaving of 2 or 3 vCPUs
//!   faulting on one page through the real `map_decide`/`relax`, with a
//!   bounded number of write-protect/unmap events, ends with every vCPU's
//!   access permitted, with no cycle; the pre-5.12 and "numeric relax"
//!   behaviours livelock in the same model.

use kvm_rs_host::s2::*;
use std::collections::HashMap;

// ---------------------------------------------------------------------------
// The abstract case.

/// What an entry is, abstractly. `TableSplit` is a table whose subtree is
/// known to be a uniform split of one block (the caller passes that block
/// as `Entry::block_equiv`); `Table` is a table whose subtree is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum K {
    Zero,
    Owner,
    Locked,
    Reserved,
    Table,
    TableSplit,
    Block,
    Page,
}

/// Which attribute differs between old and new (applied to the new side,
/// except AF: the old side is an aged entry with AF clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttrDiff {
    Same,
    MemAttr,
    Sh,
    Af,
    Sw,
}

const ATTRS: [AttrDiff; 5] = [
    AttrDiff::Same,
    AttrDiff::MemAttr,
    AttrDiff::Sh,
    AttrDiff::Af,
    AttrDiff::Sw,
];

#[derive(Clone, Copy, Debug)]
struct Case {
    level: u8,
    old: K,
    new: K,
    old_perms: Perms,
    new_perms: Perms,
    same_oa: bool,
    attr: AttrDiff,
    caps: Caps,
}

/// Kinds an old entry can have at a level (4K granule, 48-bit OA).
fn old_kinds(level: u8) -> Vec<K> {
    let mut v = vec![K::Zero, K::Owner, K::Locked];
    match level {
        0 => v.extend([K::Reserved, K::Table]),
        1 | 2 => v.extend([K::Table, K::TableSplit, K::Block]),
        _ => v.extend([K::Reserved, K::Page]),
    }
    v
}

/// Kinds the map path may be asked to install at a level. (It never
/// installs the lock marker itself.)
fn new_kinds(level: u8) -> Vec<K> {
    old_kinds(level)
        .into_iter()
        .filter(|k| *k != K::Locked)
        .collect()
}

fn all_perms() -> impl Iterator<Item = Perms> {
    (0..8).map(Perms::from_mask)
}

fn all_caps() -> Vec<Caps> {
    let mut v = Vec::new();
    for bbm_level in 0..=2 {
        for is_final in [false, true] {
            for enabled in [false, true] {
                v.push(Caps {
                    bbm_level,
                    is_final,
                    enabled,
                });
            }
        }
    }
    v
}

fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for level in 0..=3u8 {
        for old in old_kinds(level) {
            for new in new_kinds(level) {
                for old_perms in all_perms() {
                    for new_perms in all_perms() {
                        for same_oa in [true, false] {
                            for attr in ATTRS {
                                for caps in all_caps() {
                                    v.push(Case {
                                        level,
                                        old,
                                        new,
                                        old_perms,
                                        new_perms,
                                        same_oa,
                                        attr,
                                        caps,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------
// Encoding an abstract case into descriptors.

const OA_A: u64 = 0x4000_0000; // 1 GiB aligned: a legal block at every level
const OA_B: u64 = 0x8000_0000;
const TABLE_A: u64 = 0x7000_0000;
const TABLE_B: u64 = 0x7000_1000;
const FWB_NORMAL: u8 = 6;
const NORMAL: u8 = 0xf;

fn leaf_raw(level: u8, oa: u64, attr: AttrDiff, apply: bool, perms: Perms) -> Descriptor {
    let lvl = Level::new(level).unwrap();
    let on = |a| apply && attr == a;
    let mem = if on(AttrDiff::MemAttr) {
        NORMAL
    } else {
        FWB_NORMAL
    };
    let sh = if on(AttrDiff::Sh) { 2 } else { 3 };
    let mut d = Descriptor::leaf(lvl, oa, mem, sh, perms).raw();
    if on(AttrDiff::Af) {
        d &= !bits::AF;
    }
    if on(AttrDiff::Sw) {
        d |= 1 << 55;
    }
    Descriptor::from_raw(d)
}

/// Builds the entry of kind `k`. `is_new` selects which side of the
/// attribute difference it is on.
fn encode(c: &Case, k: K, is_new: bool) -> Entry {
    let level = c.level;
    let oa = if is_new && !c.same_oa { OA_B } else { OA_A };
    let table = if is_new && !c.same_oa {
        TABLE_B
    } else {
        TABLE_A
    };
    let perms = if is_new { c.new_perms } else { c.old_perms };
    // AF is cleared on the old side (an aged entry), the others are
    // changed on the new side.
    let apply = if c.attr == AttrDiff::Af {
        !is_new
    } else {
        is_new
    };
    let leaf = |lvl| leaf_raw(lvl, oa, c.attr, apply, perms);
    match k {
        K::Zero => Entry::new(Descriptor::INVALID),
        K::Owner => Entry::new(Descriptor::from_raw(1 << 2)),
        K::Locked => Entry::new(Descriptor::LOCKED),
        K::Reserved => {
            // Bit 0 set, bit 1 clear: a block at level 0 or a "block" at
            // level 3, both reserved encodings.
            Entry::new(Descriptor::from_raw(leaf(level).raw() & !bits::TYPE))
        }
        K::Table => Entry::new(Descriptor::table(table)),
        K::TableSplit => Entry::uniform_table(Descriptor::table(table), leaf(level)),
        K::Block | K::Page => Entry::new(leaf(level)),
    }
}

// ---------------------------------------------------------------------------
// The reference model: tables of rules.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    Any,
    Yes,
    No,
}

impl Tri {
    fn matches(self, v: bool) -> bool {
        match self {
            Tri::Any => true,
            Tri::Yes => v,
            Tri::No => !v,
        }
    }
}

/// How the new permission set relates to the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rel {
    /// The same set.
    Equal,
    /// A strict superset: only additions.
    Grows,
    /// Something is removed (possibly while something else is added).
    Loses,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RelPat {
    Any,
    Is(Rel),
}

/// Set relation, from the sets' members.
fn rel_by_sets(old: Perms, new: Perms) -> Rel {
    let members = |p: Perms| [p.r, p.w, p.x];
    let (o, n) = (members(old), members(new));
    let loses = (0..3).any(|i| o[i] && !n[i]);
    let gains = (0..3).any(|i| n[i] && !o[i]);
    match (loses, gains) {
        (false, false) => Rel::Equal,
        (false, true) => Rel::Grows,
        _ => Rel::Loses,
    }
}

/// The wrong comparison of the RFC in seed 001: encoded bits, XN flipped
/// so that "bigger means more", compared as numbers. Used only to show
/// that the test would catch it.
fn rel_by_numbers(old: Perms, new: Perms) -> Rel {
    let num = |p: Perms| (p.r as u64) << 6 | (p.w as u64) << 7 | (p.x as u64) << 54;
    let (o, n) = (num(old), num(new));
    if n == o {
        Rel::Equal
    } else if n > o {
        Rel::Grows
    } else {
        Rel::Loses
    }
}

const NOT_VALID: &[K] = &[K::Zero, K::Owner, K::Reserved];
const LEAVES: &[K] = &[K::Block, K::Page];
const TABLES: &[K] = &[K::Table, K::TableSplit];
const ANY_NEW: &[K] = &[
    K::Zero,
    K::Owner,
    K::Reserved,
    K::Table,
    K::TableSplit,
    K::Block,
    K::Page,
];

#[derive(Clone, Copy, Debug)]
struct MapRule {
    old: &'static [K],
    new: &'static [K],
    same_oa: Tri,
    same_attrs: Tri,
    perms: RelPat,
    bbml2_usable: Tri,
    decision: MapDecision,
    tlbi: TlbiPlan,
    why: &'static str,
}

// One argument per column of the table.
#[allow(clippy::too_many_arguments)]
const fn rule(
    old: &'static [K],
    new: &'static [K],
    same_oa: Tri,
    same_attrs: Tri,
    perms: RelPat,
    bbml2_usable: Tri,
    decision: MapDecision,
    tlbi: TlbiPlan,
    why: &'static str,
) -> MapRule {
    MapRule {
        old,
        new,
        same_oa,
        same_attrs,
        perms,
        bbml2_usable,
        decision,
        tlbi,
        why,
    }
}

use MapDecision as D;
use RelPat::Is;
use TlbiPlan as T;
use Tri::{Any, No, Yes};

/// The map-path and TLBI rules, in the words of the seeds and
/// REFERENCES.md. First matching row wins.
#[rustfmt::skip]
const MAP_RULES: &[MapRule] = &[
    rule(&[K::Locked], ANY_NEW, Any, Any, RelPat::Any, Any, D::Busy, T::None,
         "another walker is between break and make: back off, retry"),
    rule(NOT_VALID, ANY_NEW, Any, Any, RelPat::Any, Any, D::Install, T::None,
         "nothing valid to break: no TLB can hold it"),
    rule(LEAVES, NOT_VALID, Any, Any, RelPat::Any, Any, D::FullBbm, T::BroadcastIpa,
         "unmapping a leaf is a restriction: every CPU must drop it"),
    rule(TABLES, NOT_VALID, Any, Any, RelPat::Any, Any, D::FullBbm, T::BroadcastVmid,
         "unmapping a table drops a whole span of translations"),
    rule(TABLES, TABLES, Yes, Any, RelPat::Any, Any, D::Same, T::BroadcastVmid,
         "the same next-level table: nothing to do"),
    rule(TABLES, TABLES, No, Any, RelPat::Any, Any, D::FullBbm, T::BroadcastVmid,
         "another next-level table: the span changes"),
    rule(LEAVES, LEAVES, Yes, Yes, Is(Rel::Equal), Any, D::Same, T::LocalIpa,
         "exactly the same mapping: skip"),
    rule(LEAVES, LEAVES, Yes, Yes, Is(Rel::Grows), Any, D::PermsOnly, T::LocalIpa,
         "map never changes permissions: -EAGAIN, relax does it (locally)"),
    rule(LEAVES, LEAVES, Yes, Yes, Is(Rel::Loses), Any, D::PermsOnly, T::BroadcastIpa,
         "map never restricts either; a restriction would need broadcast"),
    rule(LEAVES, LEAVES, No, Any, RelPat::Any, Any, D::FullBbm, T::BroadcastIpa,
         "new output address: break-before-make"),
    rule(LEAVES, LEAVES, Any, No, RelPat::Any, Any, D::FullBbm, T::BroadcastIpa,
         "new memory type/shareability/AF/software bits: break-before-make"),
    rule(&[K::Block], &[K::TableSplit], Yes, Yes, Is(Rel::Equal), Yes,
         D::BreakSkippedBbml2, T::BroadcastVmid,
         "FEAT_BBM level 2: pure size change, same OA and attributes"),
    rule(&[K::TableSplit], &[K::Block], Yes, Yes, Is(Rel::Equal), Yes,
         D::BreakSkippedBbml2, T::BroadcastVmid,
         "FEAT_BBM level 2: pure size change, same OA and attributes"),
    rule(&[K::Block], TABLES, Any, Any, RelPat::Any, Any, D::FullBbm, T::BroadcastVmid,
         "block split without BBML2, or not a pure size change"),
    rule(TABLES, &[K::Block], Any, Any, RelPat::Any, Any, D::FullBbm, T::BroadcastVmid,
         "table collapse without BBML2, or not a pure size change"),
];

/// Whether FEAT_BBM level 2 may be used, as a table: the level must be
/// at least 2, the capability final, and the switch on.
fn bbml2_usable(c: Caps) -> bool {
    #[rustfmt::skip]
    const TABLE: &[(u8, bool, bool, bool)] = &[
        // BBM level, final, enabled -> usable
        (0, false, false, false), (0, false, true, false),
        (0, true,  false, false), (0, true,  true, false),
        (1, false, false, false), (1, false, true, false),
        (1, true,  false, false), (1, true,  true, false),
        (2, false, false, false), (2, false, true, false),
        (2, true,  false, false), (2, true,  true, true),
    ];
    TABLE
        .iter()
        .find(|&&(l, f, e, _)| (l, f, e) == (c.bbm_level, c.is_final, c.enabled))
        .map(|&(_, _, _, usable)| usable)
        .expect("BBM level outside the table")
}

struct Model {
    rules: Vec<MapRule>,
    rel: fn(Perms, Perms) -> Rel,
}

impl Model {
    fn correct() -> Model {
        Model {
            rules: MAP_RULES.to_vec(),
            rel: rel_by_sets,
        }
    }

    fn decide(&self, c: &Case) -> (MapDecision, TlbiPlan, &'static str) {
        let rel = (self.rel)(c.old_perms, c.new_perms);
        let same_attrs = c.attr == AttrDiff::Same;
        let usable = bbml2_usable(c.caps);
        for r in &self.rules {
            if r.old.contains(&c.old)
                && r.new.contains(&c.new)
                && r.same_oa.matches(c.same_oa)
                && r.same_attrs.matches(same_attrs)
                && (r.perms == RelPat::Any || r.perms == RelPat::Is(rel))
                && r.bbml2_usable.matches(usable)
            {
                return (r.decision, r.tlbi, r.why);
            }
        }
        panic!("no rule for {c:?}");
    }
}

/// Relax rules: (old is a leaf?, wanted set already held?, X added?) ->
/// outcome, the new set being the union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RelaxOut {
    NotValid,
    Unchanged,
    Relaxed { icache: bool },
}

#[rustfmt::skip]
const RELAX_RULES: &[(Tri, Tri, Tri, RelaxOut)] = &[
    // leaf, has all wanted, adds X -> outcome
    (No,  Any, Any, RelaxOut::NotValid),
    (Yes, Yes, Any, RelaxOut::Unchanged),
    (Yes, No,  Yes, RelaxOut::Relaxed { icache: true }),
    (Yes, No,  No,  RelaxOut::Relaxed { icache: false }),
];

/// Returns the outcome and, for `Relaxed`, the permission set the new
/// entry must grant: every member of `have` or of `want`.
fn relax_model(old: K, have: Perms, want: Perms) -> (RelaxOut, Option<Perms>) {
    let grant = Perms::new(have.r || want.r, have.w || want.w, have.x || want.x);
    let is_leaf = LEAVES.contains(&old);
    let has_all = rel_by_sets(have, grant) == Rel::Equal;
    let adds_x = want.x && !have.x;
    let out = RELAX_RULES
        .iter()
        .find(|(l, h, x, _)| l.matches(is_leaf) && h.matches(has_all) && x.matches(adds_x))
        .map(|r| r.3)
        .unwrap();
    match out {
        RelaxOut::Relaxed { .. } => (out, Some(grant)),
        _ => (out, None),
    }
}

// ---------------------------------------------------------------------------
// The implementation under test, replaceable by broken variants.

#[derive(Clone, Copy)]
struct Impl {
    map: fn(Entry, Entry, Level, Caps) -> MapDecision,
    tlbi: fn(Descriptor, Descriptor, Level) -> TlbiPlan,
    relax: fn(Descriptor, Level, Perms) -> Relax,
}

const REAL: Impl = Impl {
    map: map_decide,
    tlbi: tlbi_plan,
    relax,
};

#[derive(Default, Debug)]
struct Report {
    map_cases: u64,
    relax_cases: u64,
    mismatches: u64,
    violations: u64,
    first: Vec<String>,
}

impl Report {
    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.first.len() < 8 {
            self.first.push(what());
        }
    }
}

fn is_valid_kind(k: K) -> bool {
    matches!(k, K::Table | K::TableSplit | K::Block | K::Page)
}

/// Invariants of one map/TLBI case, from the case's facts only.
fn map_invariants(c: &Case, d: MapDecision, t: TlbiPlan) -> Option<&'static str> {
    let same_attrs = c.attr == AttrDiff::Same;
    let old_leaf = LEAVES.contains(&c.old);
    let new_leaf = LEAVES.contains(&c.new);
    let size_change = (TABLES.contains(&c.old) && c.new == K::Block)
        || (c.old == K::Block && TABLES.contains(&c.new));
    let perms_superset = c.new_perms.contains(c.old_perms);
    if (t == T::None) == is_valid_kind(c.old) {
        return Some("TLBI none if and only if the old entry was not valid");
    }
    if t == T::LocalIpa && !(old_leaf && new_leaf && c.same_oa && same_attrs && perms_superset) {
        return Some("local TLBI after something other than a pure relaxation");
    }
    if d == D::BreakSkippedBbml2 {
        if !(c.same_oa && same_attrs && c.old_perms == c.new_perms) {
            return Some("break skipped although OA, attributes or permissions differ");
        }
        let bbml2 = c.caps.bbm_level >= 2 && c.caps.is_final && c.caps.enabled;
        if !(size_change && bbml2) {
            return Some("break skipped outside a BBML2 block-size change");
        }
        if t != T::BroadcastVmid {
            return Some("break skipped without a VMID-wide TLBI");
        }
    }
    if size_change && t != T::BroadcastVmid {
        return Some("block-size change without a VMID-wide TLBI");
    }
    if d == D::FullBbm && !(is_valid_kind(c.old) && matches!(t, T::BroadcastIpa | T::BroadcastVmid))
    {
        return Some("full BBM of an invalid entry, or without broadcast");
    }
    if (d == D::Busy) != (c.old == K::Locked) {
        return Some("busy if and only if locked");
    }
    if matches!(d, D::Same | D::PermsOnly) {
        if !is_valid_kind(c.old) || !is_valid_kind(c.new) {
            return Some("skipped a write to or from an invalid entry");
        }
        if old_leaf && !(new_leaf && c.same_oa && same_attrs) {
            return Some("skipped a write that changes OA or attributes");
        }
        if TABLES.contains(&c.old) && !(TABLES.contains(&c.new) && c.same_oa) {
            return Some("skipped a write that changes a table");
        }
    }
    None
}

fn check(imp: Impl, model: &Model) -> Report {
    let mut rep = Report::default();
    for c in all_cases() {
        let lvl = Level::new(c.level).unwrap();
        let old = encode(&c, c.old, false);
        let new = encode(&c, c.new, true);
        let d = (imp.map)(old, new, lvl, c.caps);
        let t = (imp.tlbi)(old.desc, new.desc, lvl);
        let (md, mt, why) = model.decide(&c);
        rep.map_cases += 1;
        if (d, t) != (md, mt) {
            rep.mismatches += 1;
            rep.note(|| format!("{c:?}: impl ({d:?}, {t:?}), model ({md:?}, {mt:?}: {why})"));
        }
        if let Some(v) = map_invariants(&c, d, t) {
            rep.violations += 1;
            rep.note(|| format!("{c:?}: {v}: ({d:?}, {t:?})"));
        }
    }
    // relax: level x old kind x old perms x wanted perms x attributes.
    for level in 0..=3u8 {
        let lvl = Level::new(level).unwrap();
        for old_k in old_kinds(level) {
            for have in all_perms() {
                for want in all_perms() {
                    for attr in ATTRS {
                        let c = Case {
                            level,
                            old: old_k,
                            new: old_k,
                            old_perms: have,
                            new_perms: want,
                            same_oa: true,
                            attr,
                            caps: Caps::default(),
                        };
                        let old = encode(&c, old_k, false).desc;
                        let r = (imp.relax)(old, lvl, want);
                        rep.relax_cases += 1;
                        let got = match r {
                            Relax::NotValid => (RelaxOut::NotValid, None),
                            Relax::Unchanged => (RelaxOut::Unchanged, None),
                            Relax::Relaxed { icache_inval, new } => (
                                RelaxOut::Relaxed {
                                    icache: icache_inval,
                                },
                                Some(new.perms()),
                            ),
                        };
                        let want_out = relax_model(old_k, have, want);
                        if got != want_out {
                            rep.mismatches += 1;
                            rep.note(|| format!("relax {c:?}: impl {r:?}, model {want_out:?}"));
                        }
                        if let Some(v) = relax_invariants(old, lvl, have, want, r, imp) {
                            rep.violations += 1;
                            rep.note(|| format!("relax {c:?}: {v}: {r:?}"));
                        }
                    }
                }
            }
        }
    }
    rep
}

fn relax_invariants(
    old: Descriptor,
    lvl: Level,
    have: Perms,
    want: Perms,
    r: Relax,
    imp: Impl,
) -> Option<&'static str> {
    match r {
        Relax::Relaxed { new, icache_inval } => {
            let p = new.perms();
            if !p.contains(have) {
                return Some("relax removed a permission");
            }
            if !p.contains(want) || p != have.union(want) {
                return Some("relax did not grant exactly old + wanted");
            }
            if (new.raw() ^ old.raw()) & !bits::PERMS != 0 || new == old {
                return Some("relax changed a non-permission bit, or nothing");
            }
            if icache_inval != (p.x && !have.x) {
                return Some("I-cache invalidation not exactly when X is added");
            }
            if (imp.tlbi)(old, new, lvl) != T::LocalIpa {
                return Some("a relaxation must be followed by a local TLBI");
            }
        }
        Relax::Unchanged => {
            if !have.contains(want) {
                return Some("unchanged although a wanted permission is missing");
            }
            if (imp.tlbi)(old, old, lvl) != T::LocalIpa {
                return Some("an unchanged valid leaf still gets a local TLBI");
            }
        }
        Relax::NotValid => {
            if old.kind(lvl).is_leaf() {
                return Some("a valid leaf reported as not valid");
            }
        }
    }
    None
}

#[test]
fn exhaustive_against_model() {
    let rep = check(REAL, &Model::correct());
    println!(
        "s2_exhaustive: {} map/TLBI cases + {} relax cases = {} checked, {} mismatches, {} invariant violations",
        rep.map_cases,
        rep.relax_cases,
        rep.map_cases + rep.relax_cases,
        rep.mismatches,
        rep.violations
    );
    for f in &rep.first {
        println!("  {f}");
    }
    assert_eq!(rep.map_cases, 768_000);
    assert_eq!(rep.relax_cases, 7_040);
    assert_eq!(rep.mismatches, 0);
    assert_eq!(rep.violations, 0);
}

// ---------------------------------------------------------------------------
// The test can fail: wrong models and wrong implementations are caught.

fn mutated(f: impl Fn(&mut MapRule)) -> Model {
    let mut m = Model::correct();
    for r in &mut m.rules {
        f(r);
    }
    m
}

#[test]
fn wrong_models_are_caught() {
    let variants: Vec<(&str, Model)> = vec![
        (
            "BBML2 skip for any output address",
            mutated(|r| {
                if r.decision == D::BreakSkippedBbml2 {
                    r.same_oa = Any;
                }
            }),
        ),
        (
            "BBML2 skip without looking at the capability",
            mutated(|r| {
                if r.decision == D::BreakSkippedBbml2 {
                    r.bbml2_usable = Any;
                }
            }),
        ),
        (
            "restriction followed by a local TLBI",
            mutated(|r| {
                if r.perms == Is(Rel::Loses) {
                    r.tlbi = T::LocalIpa;
                }
            }),
        ),
        (
            "map path rewrites permissions with a full BBM",
            mutated(|r| {
                if r.decision == D::PermsOnly {
                    r.decision = D::FullBbm;
                }
            }),
        ),
        (
            "block split with a TLBI by IPA",
            mutated(|r| {
                if r.old == [K::Block] && r.decision == D::FullBbm {
                    r.tlbi = T::BroadcastIpa;
                }
            }),
        ),
        (
            "numeric permission comparison (seed 001)",
            Model {
                rules: MAP_RULES.to_vec(),
                rel: rel_by_numbers,
            },
        ),
    ];
    for (name, model) in variants {
        let rep = check(REAL, &model);
        println!("wrong model '{name}': {} mismatches", rep.mismatches);
        assert!(rep.mismatches > 0, "'{name}' was not caught");
    }
}

fn skip_any_oa(old: Entry, new: Entry, level: Level, caps: Caps) -> MapDecision {
    // Broken: also skips the break when the output address differs.
    let d = map_decide(old, new, level, caps);
    let size = matches!(
        (old.desc.kind(level), new.desc.kind(level)),
        (Kind::Table, Kind::Block) | (Kind::Block, Kind::Table)
    );
    if d == D::FullBbm && size && caps.may_skip_break() {
        D::BreakSkippedBbml2
    } else {
        d
    }
}

fn local_for_everything(old: Descriptor, new: Descriptor, level: Level) -> TlbiPlan {
    match tlbi_plan(old, new, level) {
        T::BroadcastIpa => T::LocalIpa,
        t => t,
    }
}

fn relax_replaces(old: Descriptor, level: Level, want: Perms) -> Relax {
    // Broken: installs the wanted set instead of the union.
    match relax(old, level, want) {
        Relax::Relaxed { icache_inval, .. } => Relax::Relaxed {
            new: old.with_perms(want),
            icache_inval,
        },
        r => r,
    }
}

#[test]
fn wrong_implementations_are_caught() {
    let variants: [(&str, Impl); 3] = [
        (
            "skip the break for any size change",
            Impl {
                map: skip_any_oa,
                ..REAL
            },
        ),
        (
            "local TLBI instead of broadcast",
            Impl {
                tlbi: local_for_everything,
                ..REAL
            },
        ),
        (
            "relax replaces instead of adding",
            Impl {
                relax: relax_replaces,
                ..REAL
            },
        ),
    ];
    for (name, imp) in variants {
        let rep = check(imp, &Model::correct());
        println!(
            "wrong implementation '{name}': {} mismatches, {} invariant violations",
            rep.mismatches, rep.violations
        );
        assert!(rep.violations > 0, "invariants missed '{name}'");
    }
}

// ---------------------------------------------------------------------------
// Forward progress.
//
// N vCPUs fault on the same 4K page (level 3), each wanting a fixed,
// non-empty permission set. A vCPU's loop:
//
//   Run: access; permitted -> Done; valid entry -> permission fault
//        (RelaxRead); otherwise translation fault (MapRead).
//   MapRead: read the entry, map_decide(old, wanted leaf):
//        Same/PermsOnly -> Run (-EAGAIN); Install/FullBbm -> MapCas with
//        the lock marker; Busy -> waits (see below).
//   MapCas: cmpxchg(seen -> locked); failure -> Run; success -> Make.
//   Make: store the new leaf (the break's TLBI is not modelled: it does
//        not change the entry) -> Run.
//   RelaxRead: read the entry, relax(): NotValid/Unchanged -> Run;
//        Relaxed -> RelaxCas.
//   RelaxCas: cmpxchg(seen -> new); either way -> Run.
//
// Busy: a walker that finds the lock returns -EAGAIN and the vCPU faults
// again without changing anything, until the owner's Make, which needs
// nothing from anybody, has run. That stutter is modelled as waiting: a
// vCPU in MapRead is not enabled while the entry is locked. Every state
// where a vCPU waits is checked to have the lock owner in Make.
//
// Restriction paths (write protection, unmap) take the MMU lock for
// writing, so they run only when no vCPU is inside a walk; they are
// allowed `budget` times.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Pc {
    Run,
    MapRead,
    MapCas { seen: u64, new: u64 },
    Make { new: u64 },
    RelaxRead,
    RelaxCas { seen: u64, new: u64 },
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct St {
    pte: u64,
    pcs: Vec<Pc>,
    budget: u8,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// kvm-rs / 6.12: map defers permission changes, relax adds.
    Current,
    /// Pre-5.12: every fault maps, and the map path rewrites the
    /// permissions of a valid entry to what this vCPU wants.
    Legacy,
    /// The RFC of seed 001: relax skipped when the wanted bits are
    /// numerically not above the present ones, else replaced.
    NumericRelax,
}

const L3: Level = Level::L3;
const PAGE_OA: u64 = 0x1234_5000;

fn page(p: Perms) -> u64 {
    Descriptor::leaf(L3, PAGE_OA, FWB_NORMAL, 3, p).raw()
}

fn permitted(pte: u64, want: Perms) -> bool {
    let d = Descriptor::from_raw(pte);
    d.kind(L3) == Kind::Page && d.perms().contains(want)
}

fn handler_relax(h: Handler, old: Descriptor, want: Perms) -> Relax {
    if h != Handler::NumericRelax {
        return relax(old, L3, want);
    }
    if old.kind(L3) != Kind::Page {
        return Relax::NotValid;
    }
    let flip = |d: u64| (d & bits::PERMS) ^ bits::XN;
    let wanted = old.with_perms(want);
    if flip(wanted.raw()) <= flip(old.raw()) {
        Relax::Unchanged
    } else {
        Relax::Relaxed {
            new: wanted,
            icache_inval: false,
        }
    }
}

/// Successors of a state: one step of any enabled vCPU, or a restriction.
fn successors(s: &St, wants: &[Perms], h: Handler) -> Vec<St> {
    let caps = Caps::default();
    let mut out = Vec::new();
    for (i, pc) in s.pcs.iter().enumerate() {
        let want = wants[i];
        let mut next = s.clone();
        let cur = Descriptor::from_raw(s.pte);
        let new_pc = match *pc {
            Pc::Done => continue,
            Pc::Run => {
                if permitted(s.pte, want) {
                    Pc::Done
                } else if cur.kind(L3) == Kind::Page && h != Handler::Legacy {
                    Pc::RelaxRead
                } else {
                    Pc::MapRead
                }
            }
            Pc::MapRead => {
                let new = Descriptor::from_raw(page(want));
                let mut d = map_decide(Entry::new(cur), Entry::new(new), L3, caps);
                if h == Handler::Legacy && d == D::PermsOnly {
                    d = D::FullBbm;
                }
                match d {
                    D::Busy => continue, // waits for the owner's Make
                    D::Same | D::PermsOnly => Pc::Run,
                    D::Install | D::FullBbm => Pc::MapCas {
                        seen: s.pte,
                        new: new.raw(),
                    },
                    D::BreakSkippedBbml2 => unreachable!("no size change at level 3"),
                }
            }
            Pc::MapCas { seen, new } => {
                if s.pte == seen {
                    next.pte = bits::KVM_LOCKED;
                    Pc::Make { new }
                } else {
                    Pc::Run
                }
            }
            Pc::Make { new } => {
                next.pte = new;
                Pc::Run
            }
            Pc::RelaxRead => match handler_relax(h, cur, want) {
                Relax::NotValid | Relax::Unchanged => Pc::Run,
                Relax::Relaxed { new, .. } => Pc::RelaxCas {
                    seen: s.pte,
                    new: new.raw(),
                },
            },
            Pc::RelaxCas { seen, new } => {
                if s.pte == seen {
                    next.pte = new;
                }
                Pc::Run
            }
        };
        next.pcs[i] = new_pc;
        out.push(next);
    }
    // Restrictions, under the MMU lock held for writing.
    let quiet = s.pcs.iter().all(|p| matches!(p, Pc::Run | Pc::Done));
    let cur = Descriptor::from_raw(s.pte);
    if s.budget > 0 && quiet && cur.kind(L3) == Kind::Page {
        let p = cur.perms();
        if p.w {
            let mut n = s.clone();
            n.pte = cur.with_perms(Perms::new(p.r, false, p.x)).raw();
            n.budget -= 1;
            out.push(n);
        }
        let mut n = s.clone();
        n.pte = 0;
        n.budget -= 1;
        out.push(n);
    }
    out
}

#[derive(Debug)]
enum Progress {
    /// Longest run (in steps of all vCPUs) and number of states.
    Terminates {
        longest: u32,
        states: usize,
    },
    Livelock(String),
    Deadlock(String),
}

impl Progress {
    fn describe(&self) -> String {
        match self {
            Progress::Terminates { longest, states } => {
                format!("terminates: {states} states, longest run {longest}")
            }
            Progress::Livelock(why) => format!("livelock: {why}"),
            Progress::Deadlock(why) => format!("deadlock: {why}"),
        }
    }
}

/// Depth-first search: a cycle is a livelock, a state without successors
/// that is not all-Done is a deadlock; otherwise the longest path.
fn explore(
    start: St,
    wants: &[Perms],
    h: Handler,
    memo: &mut HashMap<St, Option<u32>>,
) -> Result<u32, Progress> {
    // None in memo = on the current DFS path.
    if let Some(v) = memo.get(&start) {
        return match v {
            Some(n) => Ok(*n),
            None => Err(Progress::Livelock(format!(
                "cycle through {start:?} wants {wants:?}"
            ))),
        };
    }
    memo.insert(start.clone(), None);
    let succ = successors(&start, wants, h);
    let all_done = start.pcs.iter().all(|p| *p == Pc::Done);
    if succ.is_empty() && !all_done {
        return Err(Progress::Deadlock(format!(
            "stuck in {start:?} wants {wants:?}"
        )));
    }
    // Whoever waits on the lock must have its owner in Make.
    if start.pte == bits::KVM_LOCKED && !start.pcs.iter().any(|p| matches!(p, Pc::Make { .. })) {
        return Err(Progress::Deadlock(format!("lock without owner {start:?}")));
    }
    let mut longest = 0;
    for n in succ {
        longest = longest.max(1 + explore(n, wants, h, memo)?);
    }
    memo.insert(start, Some(longest));
    Ok(longest)
}

fn progress(n: usize, wants_set: &[Perms], budget: u8, h: Handler) -> Progress {
    let mut longest = 0;
    let mut states = 0;
    let mut combos = vec![Vec::new()];
    for _ in 0..n {
        combos = combos
            .into_iter()
            .flat_map(|c: Vec<Perms>| {
                wants_set.iter().map(move |w| {
                    let mut c = c.clone();
                    c.push(*w);
                    c
                })
            })
            .collect();
    }
    let starts: Vec<u64> = std::iter::once(0).chain(all_perms().map(page)).collect();
    for wants in &combos {
        let mut memo = HashMap::new();
        for &pte in &starts {
            let s = St {
                pte,
                pcs: vec![Pc::Run; n],
                budget,
            };
            match explore(s, wants, h, &mut memo) {
                Ok(l) => longest = longest.max(l),
                Err(e) => return e,
            }
        }
        states += memo.len();
    }
    Progress::Terminates { longest, states }
}

fn non_empty_perms() -> Vec<Perms> {
    all_perms().filter(|p| *p != Perms::NONE).collect()
}

#[test]
fn fault_path_makes_progress() {
    let all = non_empty_perms();
    // What KVM's fault handler asks for: R, RW, RX, RWX.
    let kvm = [
        Perms::new(true, false, false),
        Perms::new(true, true, false),
        Perms::new(true, false, true),
        Perms::RWX,
    ];
    let mut bounds = Vec::new();
    for (n, set, budget) in [
        (2, &all[..], 0u8),
        (2, &all[..], 1),
        (2, &all[..], 2),
        (3, &kvm[..], 0),
        (3, &kvm[..], 1),
    ] {
        match progress(n, set, budget, Handler::Current) {
            Progress::Terminates { longest, states } => {
                println!(
                    "forward progress: {n} vCPUs, {} wanted sets each, {budget} restrictions: \
                     {states} states, no cycle, longest run {longest} steps",
                    set.len()
                );
                bounds.push((n, budget, longest));
            }
            other => panic!("{n} vCPUs, budget {budget}: {}", other.describe()),
        }
    }
    // Each restriction can cost every vCPU at most one more fault round:
    // the bound grows with the budget and stays finite.
    assert!(bounds
        .windows(2)
        .all(|w| w[0].0 != w[1].0 || w[0].2 < w[1].2));
}

#[test]
fn livelocking_handlers_are_caught() {
    let all = non_empty_perms();
    for h in [Handler::Legacy, Handler::NumericRelax] {
        match progress(2, &all, 0, h) {
            Progress::Livelock(why) => println!("livelock found as expected: {why}"),
            other => panic!("expected a livelock, got {}", other.describe()),
        }
    }
}
