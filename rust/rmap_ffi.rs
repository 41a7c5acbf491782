// SPDX-License-Identifier: GPL-2.0

//! `extern "C"` entry points of the x86 rmap core, declared for C in
//! `include/kvm_rs_rmap.h` and exported by `c/kvm_rs_exports.c`.
//!
//! This file is kernel glue only: it turns C pointers into the core types
//! of `core/rmap.rs` and `core/age.rs` and maps their errors to errnos.

use core::ffi::{c_int, c_uint, c_void};
use core::ptr::NonNull;
use core::sync::atomic::AtomicU32;

use crate::age::{self, age_range_stats, AgeParams, AgeStats, SpteAge};
use crate::rmap::{DescAlloc, PteListDesc, RmapError, RmapHead, SptePtr};
use kernel::bindings;

/// `sizeof(struct pte_list_desc)`, `KVM_RS_PTE_LIST_DESC_SIZE` in C.
pub const KVM_RS_PTE_LIST_DESC_SIZE: usize = 128;
const _: () = assert!(core::mem::size_of::<PteListDesc>() == KVM_RS_PTE_LIST_DESC_SIZE);

/// Module parameter `kvm_rs.lockless_aging` (0/1, default 1), only with
/// `CONFIG_KVM_RS_AB_TEST`: KVM's aging notifiers run without `mmu_lock`
/// when set, on the 6.12 locked path when clear. Written by the parameter
/// code (a plain C store), read by KVM with `READ_ONCE()` once per notifier
/// call. Without the option there is no switch and aging is always
/// lockless; the symbol still exists so that the FFI is one shape.
#[no_mangle]
pub static kvm_rs_lockless_aging: AtomicU32 = AtomicU32::new(1);

// The SPTE encodings `core/age.rs` relies on, as `include/kvm_rs_rmap.h`
// spells them (scripts/check_ffi.py compares the two); KVM's mmu.c checks
// the header against its own definitions with static_assert().
/// `SPTE_MMU_PRESENT_MASK`.
pub const KVM_RS_SPTE_MMU_PRESENT_MASK: u64 = 0x800;
/// `SPTE_TDP_AD_MASK`.
pub const KVM_RS_SPTE_TDP_AD_MASK: u64 = 0x30000000000000;
/// `SPTE_TDP_AD_DISABLED`.
pub const KVM_RS_SPTE_TDP_AD_DISABLED: u64 = 0x10000000000000;
/// `SHADOW_ACC_TRACK_SAVED_BITS_MASK`.
pub const KVM_RS_ACC_TRACK_SAVED_BITS_MASK: u64 = 0x5;
/// `SHADOW_ACC_TRACK_SAVED_BITS_SHIFT`.
pub const KVM_RS_ACC_TRACK_SAVED_BITS_SHIFT: u32 = 54;
/// `SHADOW_NONPRESENT_VALUE` (64-bit).
pub const KVM_RS_SHADOW_NONPRESENT_VALUE: u64 = 0x8000000000000000;
/// `FROZEN_SPTE`.
pub const KVM_RS_FROZEN_SPTE: u64 = 0x80000000000005a0;

const _: () = {
    assert!(KVM_RS_SPTE_MMU_PRESENT_MASK == age::SPTE_MMU_PRESENT_MASK);
    assert!(KVM_RS_SPTE_TDP_AD_MASK == age::SPTE_TDP_AD_MASK);
    assert!(KVM_RS_SPTE_TDP_AD_DISABLED == age::SPTE_TDP_AD_DISABLED);
    assert!(KVM_RS_ACC_TRACK_SAVED_BITS_MASK == age::ACC_TRACK_SAVED_BITS_MASK);
    assert!(KVM_RS_ACC_TRACK_SAVED_BITS_SHIFT == age::ACC_TRACK_SAVED_BITS_SHIFT);
    assert!(KVM_RS_SHADOW_NONPRESENT_VALUE == age::SHADOW_NONPRESENT_VALUE);
    assert!(KVM_RS_FROZEN_SPTE == age::FROZEN_SPTE);
};

/// [`kvm_rs_age_spte`]: not young, nothing written.
pub const KVM_RS_SPTE_OLD: c_int = 0;
/// [`kvm_rs_age_spte`]: young (test-only: nothing written).
pub const KVM_RS_SPTE_YOUNG: c_int = 1;
/// [`kvm_rs_age_spte`]: young, Accessed cleared.
pub const KVM_RS_SPTE_CLEARED: c_int = 2;
/// [`kvm_rs_age_spte`]: young, made access-tracked.
pub const KVM_RS_SPTE_TRACKED: c_int = 3;
/// [`kvm_rs_age_spte`]: young, but the SPTE changed under the exchange.
pub const KVM_RS_SPTE_LOST: c_int = 4;

/// `struct kvm_rs_desc_ops`: KVM's descriptor cache.
#[repr(C)]
pub struct KvmRsDescOps {
    alloc: Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>,
    free: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    ctx: *mut c_void,
}

/// `struct kvm_rs_age_params`.
#[repr(C)]
pub struct KvmRsAgeParams {
    accessed_mask: u64,
    acc_track_mask: u64,
}

const _: () = {
    assert!(core::mem::size_of::<KvmRsDescOps>() == 24);
    assert!(core::mem::size_of::<KvmRsAgeParams>() == 16);
};

/// A [`DescAlloc`] backed by C callbacks.
struct CAlloc<'a>(&'a KvmRsDescOps);

// SAFETY: `kvm_rs_desc_ops` is documented (include/kvm_rs_rmap.h) to return
// zeroed `struct pte_list_desc` memory (a valid empty descriptor) that is
// private until freed, never NULL, without sleeping, and to take back what
// it returned.
unsafe impl DescAlloc for CAlloc<'_> {
    fn alloc(&mut self) -> NonNull<PteListDesc> {
        let f = self.0.alloc.expect("kvm_rs_desc_ops without alloc");
        // SAFETY: A C callback with the contract above; `ctx` is its own.
        let p = unsafe { f(self.0.ctx) }.cast::<PteListDesc>();
        // KVM's cache BUG()s instead of returning NULL (6.12's
        // kvm_mmu_memory_cache_alloc()); a NULL here breaks the contract,
        // and a panic (a BUG()) is what 6.12 does in that case.
        NonNull::new(p).expect("kvm_rs_desc_ops.alloc returned NULL")
    }

    unsafe fn free(&mut self, desc: NonNull<PteListDesc>) {
        if let Some(f) = self.0.free {
            // SAFETY: `desc` came from `alloc` (the trait's contract).
            unsafe { f(self.0.ctx, desc.as_ptr().cast::<c_void>()) };
        }
    }
}

/// The negative errno C sees for `e` (documented in include/kvm_rs_rmap.h).
fn errno(e: RmapError) -> c_int {
    let code = match e {
        RmapError::NotFound => bindings::ENOENT,
        RmapError::Empty => bindings::ENODATA,
        RmapError::BadSptePtr | RmapError::BadDescriptor | RmapError::LockedValue => {
            bindings::EINVAL
        }
        RmapError::Changed { .. } | RmapError::ConcurrentWriter => bindings::EBUSY,
        RmapError::AddedToChangedHead => bindings::EUCLEAN,
    };
    -(code as c_int)
}

/// Adds `sptep` to the rmap; returns the previous count or a negative errno.
///
/// # Safety
///
/// `head` points to a `struct kvm_rmap_head` that lives as long as the
/// rmap is used; the caller holds `kvm->mmu_lock` for write (the only
/// writer of this head); `sptep` is a live SPTE that stays valid while it
/// is in the rmap; `ops` is valid for the call.
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_rmap_add(
    head: *mut usize,
    sptep: *mut u64,
    ops: *const KvmRsDescOps,
) -> c_int {
    // SAFETY: The caller's contract covers `head` and `ops`.
    let (h, ops) = unsafe { (RmapHead::from_raw(head), &*ops) };
    // SAFETY: We are the only writer (mmu_lock held for write).
    match unsafe { h.add(sptep as SptePtr, &mut CAlloc(ops)) } {
        Ok(n) => n.min(c_int::MAX as usize) as c_int,
        Err(e) => errno(e),
    }
}

/// Removes `sptep` from the rmap; 0 or a negative errno.
///
/// # Safety
///
/// As for [`kvm_rs_rmap_add`].
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_rmap_remove(
    head: *mut usize,
    sptep: *mut u64,
    ops: *const KvmRsDescOps,
) -> c_int {
    // SAFETY: The caller's contract covers `head` and `ops`.
    let (h, ops) = unsafe { (RmapHead::from_raw(head), &*ops) };
    // SAFETY: We are the only writer (mmu_lock held for write).
    match unsafe { h.remove(sptep as SptePtr, &mut CAlloc(ops)) } {
        Ok(()) => 0,
        Err(e) => errno(e),
    }
}

/// Empties the rmap, calling `f(ctx, sptep)` for every SPTE after the chain
/// left the head; 1 if it was not empty, 0 if it was, or a negative errno.
///
/// # Safety
///
/// As for [`kvm_rs_rmap_add`]; `f` may be called with `ctx` any number of
/// times during the call.
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_rmap_zap_all(
    head: *mut usize,
    f: Option<unsafe extern "C" fn(*mut c_void, *mut u64)>,
    ctx: *mut c_void,
    ops: *const KvmRsDescOps,
) -> c_int {
    // SAFETY: The caller's contract covers `head` and `ops`.
    let (h, ops) = unsafe { (RmapHead::from_raw(head), &*ops) };
    let cb = |s: SptePtr| {
        if let Some(f) = f {
            // SAFETY: `s` was in the rmap: a live SPTE the caller zaps.
            unsafe { f(ctx, s as *mut u64) };
        }
    };
    // SAFETY: We are the only writer (mmu_lock held for write).
    match unsafe { h.zap_all(&mut CAlloc(ops), cb) } {
        Ok(any) => any as c_int,
        Err(e) => errno(e),
    }
}

/// Number of SPTEs in the rmap (6.12's `pte_list_count()`).
///
/// # Safety
///
/// `head` is valid and the caller holds `mmu_lock` (the chain cannot change).
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_rmap_count(head: *mut usize) -> c_uint {
    // SAFETY: The caller's contract; the chain is stable under mmu_lock.
    unsafe { RmapHead::from_raw(head).count() as c_uint }
}

extern "C" {
    /// Adds one aging call's numbers to the per-CPU counters behind
    /// debugfs (`c/kvm_rs_exports.c`): no cache line is shared between
    /// CPUs that age at the same time.
    fn kvm_rs_age_account(visited: u64, young: u64, cmpxchg_failed: u64, spins: u64);
}

/// Ages `nr` consecutive rmap heads without `mmu_lock`: 1 if any SPTE was
/// young, 0 if none, or a negative errno on a corrupt rmap.
///
/// # Safety
///
/// `heads` points to `nr` live `struct kvm_rmap_head`s (a memslot's rmap
/// array, kept alive by the caller's SRCU read lock); every SPTE in them is
/// live while it is in its rmap (KVM removes rmap entries under the bit
/// before freeing a page table); `params` is valid; `on_tracked`, if set,
/// may be called with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_rmap_age(
    heads: *mut usize,
    nr: usize,
    test_only: bool,
    params: *const KvmRsAgeParams,
    on_tracked: Option<unsafe extern "C" fn(*mut c_void, u64)>,
    ctx: *mut c_void,
) -> c_int {
    if heads.is_null() || nr == 0 {
        return 0;
    }
    // SAFETY: `RmapHead` is a transparent atomic word with the layout of
    // `unsigned long`, and the caller guarantees `nr` consecutive live heads
    // behind `heads` (the slice is derived from the raw pointer to all of
    // them, not from a reference to the first).
    let hs = unsafe { core::slice::from_raw_parts(heads.cast::<RmapHead>().cast_const(), nr) };
    // SAFETY: The caller guarantees `params` is valid.
    let p = unsafe { &*params };
    let ap = AgeParams {
        accessed_mask: p.accessed_mask,
        acc_track_mask: p.acc_track_mask,
    };
    let mut st = AgeStats::default();
    let r = age_range_stats(hs, test_only, &ap, &mut st, |old| {
        if let Some(f) = on_tracked {
            // SAFETY: A C callback with its own `ctx` (caller's contract).
            unsafe { f(ctx, old) };
        }
    });
    // SAFETY: A plain C function of this module; it only does this_cpu_add.
    unsafe { kvm_rs_age_account(st.visited, st.young, st.cmpxchg_failed, st.spins) };
    match r {
        Ok(y) => y as c_int,
        Err(e) => errno(e),
    }
}

/// Ages one SPTE with kvm-rs's rule (`core/age.rs`): the TDP MMU's lockless
/// walk calls this for every present leaf SPTE, with the value its
/// iterator read and checked (`old_spte`); the SPTE is changed only if it
/// still holds that value. Returns one of `KVM_RS_SPTE_*`
/// (`KVM_RS_SPTE_TRACKED`: `old_spte` was replaced by its access-tracked
/// form, so the caller can keep a writable page's dirty state).
///
/// # Safety
///
/// `sptep` points to a live, 8-byte aligned SPTE whose page table cannot be
/// freed during the call (the caller is inside an RCU read-side critical
/// section and the table is freed through RCU); `params` is valid.
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_age_spte(
    sptep: *mut u64,
    old_spte: u64,
    test_only: bool,
    params: *const KvmRsAgeParams,
) -> c_int {
    // SAFETY: The caller guarantees `params` is valid.
    let p = unsafe { &*params };
    let ap = AgeParams {
        accessed_mask: p.accessed_mask,
        acc_track_mask: p.acc_track_mask,
    };
    // SAFETY: The caller keeps the SPTE's table alive (RCU); `SptePtr` is
    // an atomic view of the same `u64`.
    match unsafe { age::age_spte_from(sptep.cast_const().cast(), old_spte, test_only, &ap) } {
        SpteAge::Old => KVM_RS_SPTE_OLD,
        SpteAge::Young => KVM_RS_SPTE_YOUNG,
        SpteAge::Cleared => KVM_RS_SPTE_CLEARED,
        SpteAge::Tracked(_) => KVM_RS_SPTE_TRACKED,
        SpteAge::Lost => KVM_RS_SPTE_LOST,
    }
}
