// SPDX-License-Identifier: GPL-2.0

//! Lockless aging of shadow-MMU rmaps (`kvm_age_gfn` / `kvm_test_age_gfn`
//! without `mmu_lock`).
//!
//! Each non-empty head is taken with the read-only side of its bit lock,
//! which keeps the chain, and therefore the shadow page tables its SPTE
//! pointers point into, alive: a writer frees a page table only after
//! removing its SPTEs from the rmaps under the bit. The SPTEs themselves may
//! still change (zapped first, rmap entry removed later; hardware setting
//! Accessed/Dirty), so they are read and written only atomically.
//!
//! The per-SPTE rule ([`age_spte`]) also serves KVM's TDP MMU walker, which
//! keeps its page tables alive with RCU instead of the bit. It changes an
//! SPTE only with one compare-and-exchange from the value it read, never
//! with a blind read-modify-write: the TDP MMU's `FROZEN_SPTE` (a
//! non-present marker another CPU holds while it replaces an SPTE) has
//! both possible Accessed bits (5 and 8) set, and clearing one would turn
//! it into an ordinary non-present value that a racing fault could
//! overwrite. When the exchange loses (the SPTE changed: zapped, frozen,
//! Dirty set by the CPU), the SPTE is left as it is and reported young: a
//! rare false "young" is harmless, a false "old" would evict a hot page.

use crate::rmap::{ReadLocked, RmapError, RmapHead, SptePtr, MANY, PTE_LIST_EXT};

/// `SPTE_MMU_PRESENT_MASK`: set in every shadow-present SPTE.
pub const SPTE_MMU_PRESENT_MASK: u64 = 1 << 11;
/// `SPTE_TDP_AD_MASK`: bits 52-53 hold the A/D tracking type.
pub const SPTE_TDP_AD_MASK: u64 = 3 << 52;
/// `SPTE_TDP_AD_DISABLED`: this SPTE has no usable Accessed bit.
pub const SPTE_TDP_AD_DISABLED: u64 = 1 << 52;
/// `SHADOW_ACC_TRACK_SAVED_BITS_MASK`: the EPT R and X bits.
pub const ACC_TRACK_SAVED_BITS_MASK: u64 = 0x1 | 0x4;
/// `SHADOW_ACC_TRACK_SAVED_BITS_SHIFT`: where R/X are saved.
pub const ACC_TRACK_SAVED_BITS_SHIFT: u32 = 54;
/// `SHADOW_NONPRESENT_VALUE` on 64-bit.
pub const SHADOW_NONPRESENT_VALUE: u64 = 1 << 63;
/// `FROZEN_SPTE` (6.12's "removed" SPTE of the TDP MMU; not present).
pub const FROZEN_SPTE: u64 = SHADOW_NONPRESENT_VALUE | 0x5a0;
/// `PT_WRITABLE_MASK`.
pub const PT_WRITABLE_MASK: u64 = 1 << 1;

/// The run-time masks KVM computes in `spte.c` (`kvm_mmu_set_ept_masks()`,
/// `kvm_mmu_reset_all_pte_masks()`), passed in from C.
#[derive(Clone, Copy, Debug)]
pub struct AgeParams {
    /// `shadow_accessed_mask` (0 when the MMU has no A/D bits).
    pub accessed_mask: u64,
    /// `shadow_acc_track_mask`: bits cleared in an access-tracked SPTE.
    pub acc_track_mask: u64,
}

impl AgeParams {
    /// x86 shadow paging / NPT: Accessed is bit 5, no access tracking.
    pub const X86_LEGACY: AgeParams = AgeParams {
        accessed_mask: 1 << 5,
        acc_track_mask: 0,
    };
    /// EPT with A/D bits: Accessed is bit 8; A/D-disabled SPTEs (nested
    /// without A/D) are access-tracked by clearing RWX.
    pub const EPT_AD: AgeParams = AgeParams {
        accessed_mask: 1 << 8,
        acc_track_mask: 0x7,
    };

    /// `is_shadow_present_pte()`; the frozen value is never present.
    #[inline(always)]
    pub fn is_present(&self, spte: u64) -> bool {
        spte & SPTE_MMU_PRESENT_MASK != 0 && spte != FROZEN_SPTE
    }

    /// `spte_ad_enabled()` (for a present SPTE).
    #[inline(always)]
    pub fn ad_enabled(&self, spte: u64) -> bool {
        spte & SPTE_TDP_AD_MASK != SPTE_TDP_AD_DISABLED
    }

    /// `is_access_track_spte()`.
    #[inline(always)]
    pub fn is_access_track(&self, spte: u64) -> bool {
        !self.ad_enabled(spte) && spte & self.acc_track_mask == 0
    }

    /// `is_accessed_spte()` (for a present SPTE).
    #[inline(always)]
    pub fn is_young(&self, spte: u64) -> bool {
        let accessed = if self.ad_enabled(spte) {
            self.accessed_mask
        } else {
            0
        };
        if accessed != 0 {
            spte & accessed != 0
        } else {
            !self.is_access_track(spte)
        }
    }

    /// The value `mark_spte_for_access_track()` computes: without A/D,
    /// save R/X above bit 54 and clear `acc_track_mask`.
    #[inline(always)]
    pub fn access_tracked(&self, spte: u64) -> u64 {
        if self.ad_enabled(spte) {
            return spte & !self.accessed_mask;
        }
        if self.is_access_track(spte) {
            return spte;
        }
        let saved = (spte & ACC_TRACK_SAVED_BITS_MASK) << ACC_TRACK_SAVED_BITS_SHIFT;
        (spte | saved) & !self.acc_track_mask
    }
}

/// What [`age_spte`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpteAge {
    /// Not present, or present and not accessed: nothing written.
    Old,
    /// Young; with `test_only`, nothing written.
    Young,
    /// Young, and Accessed was cleared (A/D-enabled SPTE).
    Cleared,
    /// Young, and the A/D-disabled SPTE was made access-tracked; carries
    /// the old value, so the caller can keep a writable page's dirty state.
    Tracked(u64),
    /// Young, but the SPTE changed before the exchange: left as it is.
    Lost,
}

impl SpteAge {
    /// Whether the SPTE counted as young.
    #[inline(always)]
    pub fn young(self) -> bool {
        self != SpteAge::Old
    }
}

/// Ages one SPTE of an rmap: reads it, then [`age_spte_from`].
///
/// # Safety
///
/// `sptep` points to a live SPTE of a locked rmap (its page table cannot be
/// freed, and a gfn-rmap SPTE stays a leaf while its rmap holds it).
#[inline(always)]
pub unsafe fn age_spte(sptep: SptePtr, test_only: bool, p: &AgeParams) -> SpteAge {
    // SAFETY: The caller guarantees the SPTE is live.
    let v = unsafe { &*sptep }.load();
    // SAFETY: Forwarded; `v` was just read from `sptep`.
    unsafe { age_spte_from(sptep, v, test_only, p) }
}

/// Ages one SPTE whose value `v` the caller read and checked (the rule
/// shared by the rmap walk and the TDP MMU walk, where `v` is the
/// iterator's `old_spte`, known to be a present leaf).
///
/// The rule never reads the SPTE again to decide: test-only never writes,
/// and a young `v` is replaced by one compare-and-exchange from `v` itself
/// to `v` with Accessed cleared (A/D enabled) or to its access-tracked form
/// (A/D disabled). If the SPTE no longer holds `v` (zapped, frozen, split
/// into a non-leaf, Dirty set by the CPU) it is left as it is.
///
/// # Safety
///
/// `sptep` points to a live SPTE: the caller holds the bit lock of an rmap
/// that contains it, or otherwise keeps its page table alive (RCU).
#[inline(always)]
pub unsafe fn age_spte_from(sptep: SptePtr, v: u64, test_only: bool, p: &AgeParams) -> SpteAge {
    // SAFETY: The caller guarantees the SPTE is live.
    let s = unsafe { &*sptep };
    if !p.is_present(v) || !p.is_young(v) {
        return SpteAge::Old;
    }
    if test_only {
        return SpteAge::Young;
    }
    let ad = p.ad_enabled(v) && p.accessed_mask != 0;
    let new = if ad {
        v & !p.accessed_mask
    } else {
        p.access_tracked(v)
    };
    match s.try_cmpxchg(v, new) {
        Ok(_) if ad => SpteAge::Cleared,
        Ok(_) => SpteAge::Tracked(v),
        Err(_) => SpteAge::Lost,
    }
}

/// [`age_spte`] for a walk: calls `on_tracked` and counts lost exchanges.
///
/// # Safety
///
/// As for [`age_spte`].
#[inline(always)]
unsafe fn age_spte_counted(
    sptep: SptePtr,
    test_only: bool,
    p: &AgeParams,
    on_tracked: &mut impl FnMut(u64),
    cmpxchg_failed: &mut u64,
) -> bool {
    // SAFETY: The caller's guarantee, passed on.
    let r = unsafe { age_spte(sptep, test_only, p) };
    match r {
        SpteAge::Tracked(old) => on_tracked(old),
        SpteAge::Lost => *cmpxchg_failed += 1,
        _ => {}
    }
    r.young()
}

/// Ages every SPTE of a locked chain.
#[inline(always)]
fn age_locked(
    g: &ReadLocked<'_>,
    test_only: bool,
    p: &AgeParams,
    on_tracked: &mut impl FnMut(u64),
    failed: &mut u64,
) -> Result<bool, RmapError> {
    let val = g.value();
    if val & MANY == 0 {
        // SAFETY: `g` holds the bit of the rmap containing this SPTE.
        return Ok(unsafe { age_spte_counted(val as SptePtr, test_only, p, on_tracked, failed) });
    }
    let mut young = false;
    let mut d = (val & !crate::rmap::FLAGS) as *const crate::rmap::PteListDesc;
    while !d.is_null() {
        // SAFETY: `g` holds the bit: the chain is live and nobody writes it.
        let cnt = unsafe { (*d).spte_count.get() } as usize;
        if cnt > PTE_LIST_EXT {
            return Err(RmapError::BadDescriptor);
        }
        for i in 0..cnt {
            // SAFETY: As above; the entry is an SPTE in this rmap.
            let y =
                unsafe { age_spte_counted((*d).sptes[i].get(), test_only, p, on_tracked, failed) };
            if y && test_only {
                return Ok(true);
            }
            young |= y;
        }
        // SAFETY: As above.
        d = unsafe { (*d).more.get() };
    }
    Ok(young)
}

/// `kvm_rmap_age_gfn_range()` without `mmu_lock`: ages the rmaps in
/// `heads` (one per gfn), returning whether any SPTE was young.
/// With `test_only`, stops at the first young SPTE and writes no SPTE.
pub fn age_range(
    heads: &[RmapHead],
    test_only: bool,
    params: &AgeParams,
) -> Result<bool, RmapError> {
    age_range_with(heads, test_only, params, |_| {})
}

/// [`age_range`] with a hook called for each SPTE made access-tracked.
pub fn age_range_with(
    heads: &[RmapHead],
    test_only: bool,
    params: &AgeParams,
    on_tracked: impl FnMut(u64),
) -> Result<bool, RmapError> {
    age_range_stats(
        heads,
        test_only,
        params,
        &mut AgeStats::default(),
        on_tracked,
    )
}

/// What one aging pass saw; the kernel adds these to its debugfs counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgeStats {
    /// Non-empty rmaps that were locked and walked.
    pub visited: u64,
    /// Rmaps with at least one young SPTE (aged, unless `test_only`).
    pub young: u64,
    /// SPTE exchanges that lost to a concurrent SPTE change.
    pub cmpxchg_failed: u64,
    /// Spin iterations waiting for another holder's lock bit.
    pub spins: u64,
}

/// [`age_range_with`], adding what it saw to `stats`.
pub fn age_range_stats(
    heads: &[RmapHead],
    test_only: bool,
    params: &AgeParams,
    stats: &mut AgeStats,
    mut on_tracked: impl FnMut(u64),
) -> Result<bool, RmapError> {
    let mut young = false;
    for h in heads {
        let Some(g) = h.lock_readonly_counted(&mut stats.spins) else {
            continue;
        };
        stats.visited += 1;
        let r = age_locked(
            &g,
            test_only,
            params,
            &mut on_tracked,
            &mut stats.cmpxchg_failed,
        );
        // Unlocks on every path; an error here is corruption of the head.
        g.unlock()?;
        let y = r?;
        stats.young += y as u64;
        young |= y;
        if young && test_only {
            return Ok(true);
        }
    }
    Ok(young)
}
