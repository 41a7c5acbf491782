// SPDX-License-Identifier: GPL-2.0

//! C entry points of the arm64 stage-2 helpers (`core/s2.rs`).
//!
//! Declared for C in `include/kvm_rs_s2.h` (checked by
//! `scripts/check_ffi.py`) and called from the host build of
//! `arch/arm64/kvm/hyp/pgtable.c` and from the KUnit suite. The functions
//! only translate between scalar C arguments and the core types; every
//! decision is made in `core/s2.rs`.
//!
//! An argument the core cannot represent (a level outside 0..=3, e.g. the
//! level -1 of an LPA2 table) gets the most conservative answer: a full
//! break-before-make, a whole-VMID broadcast invalidation, "not a valid
//! leaf" for relax.
//!
//! The module parameters and event counters used by the C side live here
//! too, as atomics; see [`kvm_rs_s2_mode`] and [`kvm_rs_s2_count`].

use crate::s2::{self, Caps, Descriptor, Entry, Level, MapDecision, Perms, Relax, TlbiPlan};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// `kvm_rs_s2_map_decide()` caps argument: bits 3:0 hold
/// ID_AA64MMFR2_EL1.BBM.
pub const KVM_RS_S2_CAPS_BBM_MASK: u32 = 0xf;
/// `kvm_rs_s2_map_decide()` caps argument: the system capabilities are final.
pub const KVM_RS_S2_CAPS_FINAL: u32 = 0x10;
/// `kvm_rs_s2_map_decide()` caps argument: skipping the break is allowed
/// (not forced off, conflict aborts handled).
pub const KVM_RS_S2_CAPS_ENABLED: u32 = 0x20;
/// Flag or-ed into the `kvm_rs_s2_relax()` result: invalidate the I-cache
/// to PoU before installing the new descriptor.
pub const KVM_RS_S2_RELAX_ICACHE: u32 = 0x100;
/// Number of event counters (`KVM_RS_S2_EV_*` in the header).
pub const KVM_RS_S2_NR_EVENTS: u32 = 16;

/// `KVM_RS_S2_MAP_*`: the [`MapDecision`] codes, equal to the header's
/// (checked by `scripts/check_ffi.py`) and to the enum (checked below).
pub const KVM_RS_S2_MAP_SAME: u32 = 0;
/// See [`KVM_RS_S2_MAP_SAME`].
pub const KVM_RS_S2_MAP_PERMS_ONLY: u32 = 1;
/// See [`KVM_RS_S2_MAP_SAME`].
pub const KVM_RS_S2_MAP_INSTALL: u32 = 2;
/// See [`KVM_RS_S2_MAP_SAME`].
pub const KVM_RS_S2_MAP_FULL_BBM: u32 = 3;
/// See [`KVM_RS_S2_MAP_SAME`].
pub const KVM_RS_S2_MAP_BREAK_SKIPPED: u32 = 4;
/// See [`KVM_RS_S2_MAP_SAME`].
pub const KVM_RS_S2_MAP_BUSY: u32 = 5;
/// `KVM_RS_S2_TLBI_*`: the [`TlbiPlan`] codes.
pub const KVM_RS_S2_TLBI_NONE: u32 = 0;
/// See [`KVM_RS_S2_TLBI_NONE`].
pub const KVM_RS_S2_TLBI_LOCAL_IPA: u32 = 1;
/// See [`KVM_RS_S2_TLBI_NONE`].
pub const KVM_RS_S2_TLBI_BCAST_IPA: u32 = 2;
/// See [`KVM_RS_S2_TLBI_NONE`].
pub const KVM_RS_S2_TLBI_BCAST_VMID: u32 = 3;
/// `KVM_RS_S2_RELAX_*`: the [`s2::RelaxCode`] codes.
pub const KVM_RS_S2_RELAX_UNCHANGED: u32 = 0;
/// See [`KVM_RS_S2_RELAX_UNCHANGED`].
pub const KVM_RS_S2_RELAX_RELAXED: u32 = 1;
/// See [`KVM_RS_S2_RELAX_UNCHANGED`].
pub const KVM_RS_S2_RELAX_NOT_VALID: u32 = 2;
/// `KVM_RS_S2_PERM_*`: the mask of [`Perms::from_mask`].
pub const KVM_RS_S2_PERM_R: u32 = 1;
/// See [`KVM_RS_S2_PERM_R`].
pub const KVM_RS_S2_PERM_W: u32 = 2;
/// See [`KVM_RS_S2_PERM_R`].
pub const KVM_RS_S2_PERM_X: u32 = 4;

const _: () = {
    assert!(MapDecision::Same as u32 == KVM_RS_S2_MAP_SAME);
    assert!(MapDecision::PermsOnly as u32 == KVM_RS_S2_MAP_PERMS_ONLY);
    assert!(MapDecision::Install as u32 == KVM_RS_S2_MAP_INSTALL);
    assert!(MapDecision::FullBbm as u32 == KVM_RS_S2_MAP_FULL_BBM);
    assert!(MapDecision::BreakSkippedBbml2 as u32 == KVM_RS_S2_MAP_BREAK_SKIPPED);
    assert!(MapDecision::Busy as u32 == KVM_RS_S2_MAP_BUSY);
    assert!(TlbiPlan::None as u32 == KVM_RS_S2_TLBI_NONE);
    assert!(TlbiPlan::LocalIpa as u32 == KVM_RS_S2_TLBI_LOCAL_IPA);
    assert!(TlbiPlan::BroadcastIpa as u32 == KVM_RS_S2_TLBI_BCAST_IPA);
    assert!(TlbiPlan::BroadcastVmid as u32 == KVM_RS_S2_TLBI_BCAST_VMID);
    assert!(s2::RelaxCode::Unchanged as u32 == KVM_RS_S2_RELAX_UNCHANGED);
    assert!(s2::RelaxCode::Relaxed as u32 == KVM_RS_S2_RELAX_RELAXED);
    assert!(s2::RelaxCode::NotValid as u32 == KVM_RS_S2_RELAX_NOT_VALID);
    assert!(Perms::from_mask(KVM_RS_S2_PERM_R).r);
    assert!(Perms::from_mask(KVM_RS_S2_PERM_W).w);
    assert!(Perms::from_mask(KVM_RS_S2_PERM_X).x);
};

/// Module parameter `kvm_rs.s2_mode`: 0 = 6.12's C decisions, 1 = kvm-rs's.
///
/// Written by the kernel's parameter code (sysfs, a plain C store) and read
/// by C with `READ_ONCE()`: each fault reads it once and follows one mode
/// for that fault, so no ordering with anything else is needed.
#[no_mangle]
pub static kvm_rs_s2_mode: AtomicU32 = AtomicU32::new(1);

/// Module parameter `kvm_rs.s2_bbml2`: 1 allows skipping the break of a
/// pure block-size change when FEAT_BBM level 2 is final; 0 forces it off.
/// Read like [`kvm_rs_s2_mode`].
#[no_mangle]
pub static kvm_rs_s2_bbml2: AtomicU32 = AtomicU32::new(0);

/// Module parameter `kvm_rs.s2_inject_conflict` (a test hook): the number
/// of coming stage-2 aborts that `kvm_handle_guest_abort()` handles as TLB
/// conflict aborts. Emulators never report a real conflict, so this is how
/// the conflict path (local VMID invalidation, then the vCPU retries) runs
/// in a test VM. Written by the parameter code or by a test, consumed by
/// [`kvm_rs_s2_take_injected_conflict`].
#[no_mangle]
pub static kvm_rs_s2_inject_conflict: AtomicU32 = AtomicU32::new(0);

/// Consumes one injected TLB conflict abort: true when
/// [`kvm_rs_s2_inject_conflict`] was above 0 (and is now one less).
#[no_mangle]
pub extern "C" fn kvm_rs_s2_take_injected_conflict() -> bool {
    // Relaxed (both orderings): a plain count; the abort it turns into a
    // conflict carries no data that another CPU must see in order with it,
    // and the update only has to be atomic so that concurrent vCPUs consume
    // each injection once. At 0 this is one load and no store.
    kvm_rs_s2_inject_conflict
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// ID_AA64MMFR2_EL1.BBM and `KVM_RS_S2_CAPS_FINAL`, as established once by
/// the C side after the system capabilities are finalised (0 before).
#[no_mangle]
pub static kvm_rs_s2_hwcaps: AtomicU32 = AtomicU32::new(0);

static EVENTS: [AtomicU64; KVM_RS_S2_NR_EVENTS as usize] =
    [const { AtomicU64::new(0) }; KVM_RS_S2_NR_EVENTS as usize];

fn level(level: u32) -> Option<Level> {
    if level > 3 {
        None
    } else {
        Level::new(level as u8)
    }
}

/// Map path: how to replace `old` by `new` at `level` (a
/// [`MapDecision`] code). `old_equiv`/`new_equiv` are the blocks a table
/// side translates exactly like (0 when unknown); `caps` is made of the
/// `KVM_RS_S2_CAPS_*` bits.
#[no_mangle]
pub extern "C" fn kvm_rs_s2_map_decide(
    old: u64,
    old_equiv: u64,
    new: u64,
    new_equiv: u64,
    level: u32,
    caps: u32,
) -> u32 {
    let Some(level) = self::level(level) else {
        return MapDecision::FullBbm as u32;
    };
    let caps = Caps {
        bbm_level: (caps & KVM_RS_S2_CAPS_BBM_MASK) as u8,
        is_final: caps & KVM_RS_S2_CAPS_FINAL != 0,
        enabled: caps & KVM_RS_S2_CAPS_ENABLED != 0,
    };
    let old = Entry::uniform_table(Descriptor::from_raw(old), Descriptor::from_raw(old_equiv));
    let new = Entry::uniform_table(Descriptor::from_raw(new), Descriptor::from_raw(new_equiv));
    s2::map_decide(old, new, level, caps) as u32
}

/// The block at `level` that the next-level table `table` (512 entries)
/// translates exactly like, if it is a complete, uniform split of one
/// block; 0 otherwise (see [`s2::split_block_equiv`]).
///
/// # Safety
///
/// `table` must point to 512 readable, aligned `u64` descriptors that no
/// one writes during the call (a table not linked into any page table
/// yet, as eager splitting builds it).
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_s2_split_block_equiv(table: *const u64, level: u32) -> u64 {
    let Some(level) = self::level(level) else {
        return 0;
    };
    if table.is_null() {
        return 0;
    }
    // SAFETY: The caller guarantees 512 readable, aligned, unchanging
    // descriptors at `table`.
    let entries = unsafe { core::slice::from_raw_parts(table, s2::ENTRIES_PER_TABLE) };
    s2::split_block_equiv(entries, level).raw()
}

/// The TLB invalidation replacing `old` by `new` at `level` needs (a
/// [`TlbiPlan`] code).
#[no_mangle]
pub extern "C" fn kvm_rs_s2_tlbi_plan(old: u64, new: u64, level: u32) -> u32 {
    let Some(level) = self::level(level) else {
        return TlbiPlan::BroadcastVmid as u32;
    };
    s2::tlbi_plan(Descriptor::from_raw(old), Descriptor::from_raw(new), level) as u32
}

/// Permission fault: adds `want` (R = 1, W = 2, X = 4) to the leaf `old`
/// at `level`. Returns a [`s2::RelaxCode`], or-ed with
/// `KVM_RS_S2_RELAX_ICACHE` when X is added, and stores the descriptor to
/// install (`old` unless relaxed) in `*new`.
///
/// # Safety
///
/// `new` must be valid for a write of a `u64`.
#[no_mangle]
pub unsafe extern "C" fn kvm_rs_s2_relax(old: u64, level: u32, want: u32, new: *mut u64) -> u32 {
    let old = Descriptor::from_raw(old);
    let r = match self::level(level) {
        Some(level) => s2::relax(old, level, Perms::from_mask(want)),
        None => Relax::NotValid,
    };
    let c = r.to_c(old);
    // SAFETY: the caller guarantees `new` is valid for a `u64` write.
    unsafe { new.write(c.new) };
    let icache = if c.icache_inval {
        KVM_RS_S2_RELAX_ICACHE
    } else {
        0
    };
    c.code as u32 | icache
}

/// Counts one event `ev` (`KVM_RS_S2_EV_*`); out-of-range events are
/// ignored.
#[no_mangle]
pub extern "C" fn kvm_rs_s2_count(ev: u32) {
    if let Some(c) = EVENTS.get(ev as usize) {
        // Relaxed: a statistic; readers only need each increment once.
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Returns the value of counter `ev`, 0 for an out-of-range event.
#[no_mangle]
pub extern "C" fn kvm_rs_s2_stat(ev: u32) -> u64 {
    // Relaxed: see `kvm_rs_s2_count`.
    EVENTS
        .get(ev as usize)
        .map_or(0, |c| c.load(Ordering::Relaxed))
}
