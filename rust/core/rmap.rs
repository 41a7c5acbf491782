// SPDX-License-Identifier: GPL-2.0

//! Shadow-MMU reverse maps (rmaps) with a per-head lock bit.
//!
//! An rmap lists the SPTEs that map one gfn at one level. Its head is C's
//! `struct kvm_rmap_head { unsigned long val; }`:
//!
//! - `0`: empty;
//! - bit 0 ([`MANY`]) clear: `val & !LOCKED` is the only SPTE pointer;
//! - bit 0 set: `val & !3` points to a [`PteListDesc`] chain;
//! - bit 1 ([`LOCKED`]): the head is locked.
//!
//! The lock is *not* a reader/writer lock: one holder at a time. The
//! writer side ([`RmapHead::lock`]) is used by code that changes the chain
//! and also holds `mmu_lock` for write; the read-only side
//! ([`RmapHead::lock_readonly`]) is taken without `mmu_lock` by aging and
//! restores the exact old value. Locking an empty head is a no-op. Walks
//! under `mmu_lock` that only read do not take the bit; they mask it off.
//!
//! Both sides are bit spinlocks: preemption is disabled from before the bit
//! is taken until after it is released, so a holder is never scheduled out
//! while another CPU spins on the bit. Both guards release the bit when they
//! are dropped, and every unlock path stores a value without [`LOCKED`],
//! also when it reports corruption: a head is never left locked.
//!
//! Descriptor memory comes from the caller through [`DescAlloc`] and is
//! never allocated or freed while the bit is held.

use crate::atomic_impl::{preempt_disable, preempt_enable};
use crate::shared::{HeadWord, LockedCell, SpteWord};

/// Head bit 0: the head points to a descriptor chain.
pub const MANY: usize = 1;
/// Head bit 1: the head is locked.
pub const LOCKED: usize = 2;
/// Both flag bits.
pub const FLAGS: usize = MANY | LOCKED;
/// Number of SPTE pointers per descriptor (6.12's `PTE_LIST_EXT`).
pub const PTE_LIST_EXT: usize = 14;

/// A pointer to one SPTE (C: `u64 *`).
pub type SptePtr = *const SpteWord;

/// Errors; the corruption cases are what C reports with
/// `KVM_BUG_ON_DATA_CORRUPTION()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmapError {
    /// An SPTE pointer is null or has one of the two flag bits set.
    BadSptePtr,
    /// `remove` on an empty rmap.
    Empty,
    /// `remove` of an SPTE that is not in the rmap.
    NotFound,
    /// A descriptor count is out of range (empty head descriptor, more than
    /// [`PTE_LIST_EXT`] entries, inconsistent `tail_count`).
    BadDescriptor,
    /// A value with [`LOCKED`] set was passed to an unlock; the head got
    /// its old value back, unlocked.
    LockedValue,
    /// The head changed while we held its lock (someone ignored the lock).
    /// The bit was released anyway (see the unlock functions).
    Changed {
        /// The value we expected to find.
        expected: usize,
        /// The value we found.
        found: usize,
    },
    /// The head changed between a writer's unlocked look and its lock:
    /// writers are not excluded from each other (`mmu_lock` not held).
    /// Nothing was added.
    ConcurrentWriter,
    /// [`RmapHead::add`] found the head changed while it held the bit, after
    /// it had built the new chain: the SPTE *is* in the rmap (the new chain
    /// was published and the head unlocked), but the rmap is corrupt. Every
    /// other error of `add` means the SPTE was not added.
    AddedToChangedHead,
}

/// Six-twelve's `struct pte_list_desc`, byte for byte (outside loom).
///
/// Tail descriptors (reached through `more`) are always full; new
/// descriptors become the head. All fields are written only under the head's
/// lock bit by the writer side.
#[repr(C)]
pub struct PteListDesc {
    /// Next (older, full) descriptor, or null.
    pub more: LockedCell<*mut PteListDesc>,
    /// Number of SPTEs stored in this descriptor.
    pub spte_count: LockedCell<u32>,
    /// Number of SPTEs stored in all descriptors after this one.
    pub tail_count: LockedCell<u32>,
    /// The SPTE pointers; entries `spte_count..` are null.
    pub sptes: [LockedCell<SptePtr>; PTE_LIST_EXT],
}

// The C layout, checked at compile time; loom's cells are bigger.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    if !crate::atomic_impl::TRACKED {
        assert!(size_of::<PteListDesc>() == 8 + 4 + 4 + PTE_LIST_EXT * 8);
        assert!(offset_of!(PteListDesc, more) == 0);
        assert!(offset_of!(PteListDesc, spte_count) == 8);
        assert!(offset_of!(PteListDesc, tail_count) == 12);
        assert!(offset_of!(PteListDesc, sptes) == 16);
        assert!(size_of::<RmapHead>() == size_of::<usize>());
        assert!(size_of::<SpteWord>() == 8);
    }
    // The low two bits of both kinds of pointer must be free for flags.
    assert!(align_of::<PteListDesc>() >= 4);
    assert!(align_of::<SpteWord>() >= 4);
};

impl PteListDesc {
    /// An empty descriptor (what a zeroing allocator returns).
    pub fn new() -> Self {
        Self {
            more: LockedCell::new(core::ptr::null_mut()),
            spte_count: LockedCell::new(0),
            tail_count: LockedCell::new(0),
            sptes: core::array::from_fn(|_| LockedCell::new(core::ptr::null())),
        }
    }
}

impl Default for PteListDesc {
    fn default() -> Self {
        Self::new()
    }
}

/// Where descriptors come from: KVM's per-vCPU `kvm_mmu_memory_cache`,
/// topped up before `mmu_lock` is taken (allocation cannot sleep there).
///
/// Allocation cannot fail, as in 6.12: KVM tops the cache up before it
/// takes `mmu_lock` (a failed top-up fails the fault with `-ENOMEM` before
/// any SPTE is installed), and `kvm_mmu_memory_cache_alloc()` BUGs rather
/// than return nothing. So [`RmapHead::add`] never leaves an installed
/// SPTE out of its rmap for lack of memory.
///
/// # Safety
///
/// `alloc` must return a pointer to a valid, initialised [`PteListDesc`]
/// that nothing else uses until it is passed back to `free` of an allocator
/// of the same type, and it must not sleep. `free` must accept every
/// pointer returned by `alloc`.
pub unsafe trait DescAlloc {
    /// Returns a descriptor.
    fn alloc(&mut self) -> core::ptr::NonNull<PteListDesc>;

    /// Returns a descriptor.
    ///
    /// # Safety
    ///
    /// `desc` came from `alloc`, is not reachable from any rmap and is not
    /// used afterwards.
    unsafe fn free(&mut self, desc: core::ptr::NonNull<PteListDesc>);
}

/// `struct kvm_rmap_head`.
///
/// # Invariants
///
/// The value is `0`, or an [`SptePtr`] with both flag bits clear that is
/// valid while it is in the rmap, or a pointer to a [`PteListDesc`] chain
/// (`| MANY`) that this head owns: every descriptor came from a
/// [`DescAlloc`], is non-empty if it is the first, full if it is a tail, and
/// is changed only under the lock bit by the writer side and freed only
/// after being unlinked under the bit. Bit 1 is set only while a holder is
/// inside its critical section.
#[repr(transparent)]
pub struct RmapHead {
    val: HeadWord,
}

/// Proof that the read-only side holds a head's lock bit (with preemption
/// disabled). [`ReadLocked::unlock`] releases it and reports corruption;
/// dropping the guard releases it too.
///
/// # Invariants
///
/// `old` is non-zero, the head held `old | LOCKED` when the guard was made,
/// this task took the bit, and preemption was disabled once for the guard.
#[must_use = "dropping the guard unlocks the head at once"]
pub struct ReadLocked<'a> {
    head: &'a RmapHead,
    old: usize,
}

/// The writer side's guard from [`RmapHead::lock`]: the old value (with
/// [`LOCKED`] clear) and, if it is non-zero, the bit. Preemption is disabled
/// while it lives. [`RmapHead::unlock`] publishes a new value; dropping the
/// guard restores the old one.
///
/// # Invariants
///
/// If `old` is non-zero, the head held `old | LOCKED` when the guard was
/// made and this task took the bit; preemption was disabled once for the
/// guard in every case.
#[must_use = "dropping the guard unlocks the head at once"]
pub struct WriteLocked<'a> {
    head: &'a RmapHead,
    old: usize,
}

impl WriteLocked<'_> {
    /// The head's value before locking, with [`LOCKED`] clear.
    pub fn value(&self) -> usize {
        self.old
    }

    /// Stores `new` in the locked head with release ordering, dropping the
    /// bit, and re-enables preemption. The head is unlocked on every path:
    ///
    /// - `new` with [`LOCKED`] set: the old value is restored,
    ///   [`RmapError::LockedValue`];
    /// - the head changed while locked (someone ignored the bit): `new` is
    ///   stored all the same (it is the chain this writer built, and writers
    ///   are serialised), [`RmapError::Changed`].
    ///
    /// # Safety
    ///
    /// `new` satisfies the head's type invariant (it is the chain the
    /// caller built while holding the bit, or the old value).
    pub unsafe fn unlock(self, new: usize) -> Result<(), RmapError> {
        let guard = core::mem::ManuallyDrop::new(self);
        guard.release(new)
    }

    /// Stores `new` with release ordering (a value with [`LOCKED`] set is
    /// refused and the old value restored), then re-enables preemption.
    fn release(&self, new: usize) -> Result<(), RmapError> {
        let (store, mut res) = if new & LOCKED != 0 {
            (self.old, Err(RmapError::LockedValue))
        } else {
            (new, Ok(()))
        };
        // A cheap load of a line we own: corruption detection only (an
        // empty head is not locked, but only a writer may fill it).
        let expected = if self.old == 0 { 0 } else { self.old | LOCKED };
        let found = self.head.val.load();
        if found != expected && res.is_ok() {
            res = Err(RmapError::Changed { expected, found });
        }
        // INVARIANT: `store` is `new` (the caller's valid chain) or the old
        // value; either way without the bit, so the head is unlocked.
        self.head.val.store_release(store);
        preempt_enable();
        res
    }
}

impl Drop for WriteLocked<'_> {
    /// An early return leaves the chain as it was: restore the old value.
    fn drop(&mut self) {
        let _ = self.release(self.old);
    }
}

fn desc_of(val: usize) -> *mut PteListDesc {
    (val & !FLAGS) as *mut PteListDesc
}

/// Count of SPTEs in a chain whose head descriptor is `d`.
///
/// # Safety
///
/// `d` is live and its fields are not being written concurrently.
unsafe fn desc_total(d: *const PteListDesc) -> Result<usize, RmapError> {
    // SAFETY: The caller guarantees `d` is live and not written concurrently.
    let (cnt, tail) = unsafe { ((*d).spte_count.get(), (*d).tail_count.get()) };
    let cnt = cnt as usize;
    if cnt == 0 || cnt > PTE_LIST_EXT {
        return Err(RmapError::BadDescriptor);
    }
    Ok(cnt + tail as usize)
}

impl RmapHead {
    /// An empty head.
    pub fn new() -> Self {
        // INVARIANT: 0 is the empty rmap.
        Self {
            val: HeadWord::new(0),
        }
    }

    /// Views C's `struct kvm_rmap_head *` as an [`RmapHead`].
    ///
    /// # Safety
    ///
    /// Only outside loom (`TRACKED == false`). `p` is valid for the
    /// lifetime `'a`, is accessed only atomically or under the protocol
    /// described in this module, and satisfies the type invariant.
    pub unsafe fn from_raw<'a>(p: *mut usize) -> &'a RmapHead {
        // SAFETY: `RmapHead` is `repr(transparent)` over an atomic usize, which
        // has the layout of `usize`; the caller guarantees validity.
        unsafe { &*(p as *const RmapHead) }
    }

    /// The raw value (`READ_ONCE(head->val)`), possibly with [`LOCKED`].
    pub fn raw(&self) -> usize {
        self.val.load()
    }

    /// Whether the head is empty (bit 1 ignored).
    pub fn is_empty(&self) -> bool {
        self.val.load() & !LOCKED == 0
    }

    /// Spins until the bit is clear, then takes it. Returns the old value
    /// with [`LOCKED`] clear, or `0` without locking if the head is empty.
    #[inline(always)]
    fn lock_from(&self, old: usize) -> usize {
        self.lock_from_counted(old, &mut 0)
    }

    /// [`RmapHead::lock_from`], adding the number of spin iterations (waits
    /// for another holder's bit) to `spins`.
    #[inline(always)]
    fn lock_from_counted(&self, mut old: usize, spins: &mut u64) -> usize {
        loop {
            while old & LOCKED != 0 {
                *spins += 1;
                crate::atomic_impl::spin_hint();
                old = self.val.load();
            }
            if old == 0 {
                return 0;
            }
            match self.val.try_lock(old, old | LOCKED) {
                Ok(_) => return old,
                Err(cur) => old = cur,
            }
        }
    }

    /// Writer side: disables preemption and takes the bit (no bit on an
    /// empty head: only writers fill an empty head, and they are
    /// serialised by `mmu_lock`).
    ///
    /// # Safety
    ///
    /// The caller is the only writer-side user of this head while the
    /// guard lives (C: holds `mmu_lock` for write).
    pub unsafe fn lock(&self) -> WriteLocked<'_> {
        preempt_disable();
        // INVARIANT: preemption is off; `lock_from` took the bit unless it
        // returned 0.
        WriteLocked {
            head: self,
            old: self.lock_from(self.val.load()),
        }
    }

    /// Read-only side, used without `mmu_lock`: returns `None` after one
    /// load if the head is empty; otherwise disables preemption, spins while
    /// the bit is held, re-checks for empty and takes the bit with an
    /// acquire CAS.
    #[inline(always)]
    pub fn lock_readonly(&self) -> Option<ReadLocked<'_>> {
        self.lock_readonly_counted(&mut 0)
    }

    /// [`RmapHead::lock_readonly`], adding its spin iterations to `spins`.
    #[inline(always)]
    pub fn lock_readonly_counted(&self, spins: &mut u64) -> Option<ReadLocked<'_>> {
        let old = self.val.load();
        if old == 0 {
            return None;
        }
        preempt_disable();
        match self.lock_from_counted(old, spins) {
            0 => {
                preempt_enable();
                None
            }
            // INVARIANT: the bit is ours, taken from `old | LOCKED`, with
            // preemption disabled once.
            old => Some(ReadLocked { head: self, old }),
        }
    }

    /// Adds `spte`; returns the number of SPTEs that were already there.
    ///
    /// A descriptor, if one is needed, is taken from `alloc` before the bit
    /// is locked and filled in while still private; on failure the rmap is
    /// unchanged.
    ///
    /// # Safety
    ///
    /// The caller is the only writer-side user of this head for the call
    /// (C: `mmu_lock` held for write); `spte` stays valid until it is
    /// removed from the rmap (by `remove` or `zap_all`); every call on this
    /// head uses allocators of the same type.
    pub unsafe fn add<A: DescAlloc>(
        &self,
        spte: SptePtr,
        alloc: &mut A,
    ) -> Result<usize, RmapError> {
        if spte.is_null() || spte as usize & FLAGS != 0 {
            return Err(RmapError::BadSptePtr);
        }
        // Writers are exclusive and readers restore the exact value, so this
        // look stays true until we lock; the lock re-checks it.
        let peek = self.val.load() & !LOCKED;
        let mut fresh: Option<core::ptr::NonNull<PteListDesc>> = None;
        let (count, needs_desc) = if peek == 0 {
            (0, false)
        } else if peek & MANY == 0 {
            (1, true)
        } else {
            let d = desc_of(peek);
            // SAFETY: We are the only writer; readers don't write descriptors,
            // and the type invariant says `d` is live.
            let cnt = unsafe { (*d).spte_count.get() } as usize;
            // SAFETY: As above.
            let total = unsafe { desc_total(d) }?;
            (total, cnt == PTE_LIST_EXT)
        };
        if needs_desc {
            let n = alloc.alloc();
            let p = n.as_ptr();
            // SAFETY: `p` is a fresh descriptor that only we can reach.
            unsafe {
                if peek & MANY == 0 {
                    (*p).more.set(core::ptr::null_mut());
                    (*p).sptes[0].set(peek as SptePtr);
                    (*p).sptes[1].set(spte);
                    (*p).spte_count.set(2);
                    (*p).tail_count.set(0);
                    for s in (&(*p).sptes)[2..].iter() {
                        s.set(core::ptr::null());
                    }
                } else {
                    (*p).more.set(desc_of(peek));
                    (*p).sptes[0].set(spte);
                    (*p).spte_count.set(1);
                    (*p).tail_count.set(count as u32);
                    for s in (&(*p).sptes)[1..].iter() {
                        s.set(core::ptr::null());
                    }
                }
            }
            fresh = Some(n);
        }

        // SAFETY: The caller is the only writer; the guard unlocks.
        let guard = unsafe { self.lock() };
        if guard.old != peek {
            // Dropping the guard restores the value we locked.
            drop(guard);
            if let Some(n) = fresh {
                // SAFETY: `n` was never published.
                unsafe { alloc.free(n) };
            }
            return Err(RmapError::ConcurrentWriter);
        }
        let new = match fresh {
            Some(n) => n.as_ptr() as usize | MANY,
            None if peek == 0 => spte as usize,
            None => {
                let d = desc_of(peek);
                // SAFETY: We hold the bit and are the only writer: exclusive
                // access to the head descriptor, which is live and not full.
                unsafe {
                    let c = (*d).spte_count.get();
                    (*d).sptes[c as usize].set(spte);
                    (*d).spte_count.set(c + 1);
                }
                peek
            }
        };
        // SAFETY: `new` is the extended chain; we locked this head above.
        match unsafe { guard.unlock(new) } {
            Ok(()) => Ok(count),
            // `new` was published: the SPTE is in the rmap.
            Err(RmapError::Changed { .. }) => Err(RmapError::AddedToChangedHead),
            // The old value was restored (`new` had LOCKED set, i.e. the
            // descriptor pointer was misaligned): nothing was added.
            Err(e) => {
                if let Some(n) = fresh {
                    // SAFETY: `n` was never published.
                    unsafe { alloc.free(n) };
                }
                Err(e)
            }
        }
    }

    /// Removes `spte`. The last entry of the head descriptor fills the hole,
    /// so tails stay full; an emptied head descriptor is unlinked under the
    /// bit and freed to `alloc` after unlocking.
    ///
    /// Returns [`RmapError::Empty`] / [`RmapError::NotFound`] (the rmap is
    /// unchanged and unlocked) instead of crashing on corruption.
    ///
    /// # Safety
    ///
    /// The caller is the only writer-side user of this head for the call;
    /// `alloc` is of the same type as the allocators used to add.
    pub unsafe fn remove<A: DescAlloc>(
        &self,
        spte: SptePtr,
        alloc: &mut A,
    ) -> Result<(), RmapError> {
        // SAFETY: The caller is the only writer; every path below unlocks.
        let guard = unsafe { self.lock() };
        let old = guard.old;
        let mut to_free = None;
        let res = if old == 0 {
            Err(RmapError::Empty)
        } else if old & MANY == 0 {
            if old as SptePtr == spte {
                Ok(0)
            } else {
                Err(RmapError::NotFound)
            }
        } else {
            // SAFETY: We hold the bit as the only writer.
            unsafe { Self::remove_from_chain(old, spte, &mut to_free) }
        };
        let new = *res.as_ref().unwrap_or(&old);
        // SAFETY: `new` is the old value or the shortened chain.
        let unlocked = unsafe { guard.unlock(new) };
        if let Some(d) = to_free {
            // SAFETY: `d` was unlinked under the bit: readers that could see it
            // released the bit before we acquired it, later ones cannot reach
            // it.
            unsafe { alloc.free(d) };
        }
        unlocked?;
        res.map(|_| ())
    }

    /// Returns the new head value.
    ///
    /// # Safety
    ///
    /// The caller holds the bit as the only writer; `old` is the locked
    /// value and has [`MANY`] set.
    unsafe fn remove_from_chain(
        old: usize,
        spte: SptePtr,
        to_free: &mut Option<core::ptr::NonNull<PteListDesc>>,
    ) -> Result<usize, RmapError> {
        let head = desc_of(old);
        // SAFETY: Exclusive access to the live chain (caller holds the bit
        // as the only writer); all pointers come from the chain itself.
        unsafe {
            let j = (*head).spte_count.get() as usize;
            if j == 0 || j > PTE_LIST_EXT {
                return Err(RmapError::BadDescriptor);
            }
            let mut d = head;
            while !d.is_null() {
                let cnt = ((*d).spte_count.get() as usize).min(PTE_LIST_EXT);
                for i in 0..cnt {
                    if (*d).sptes[i].get() != spte {
                        continue;
                    }
                    let last = (*head).sptes[j - 1].get();
                    (*d).sptes[i].set(last);
                    (*head).sptes[j - 1].set(core::ptr::null());
                    (*head).spte_count.set((j - 1) as u32);
                    if j > 1 {
                        return Ok(old);
                    }
                    let more = (*head).more.get();
                    *to_free = core::ptr::NonNull::new(head);
                    return Ok(if more.is_null() {
                        0
                    } else {
                        more as usize | MANY
                    });
                }
                d = (*d).more.get();
            }
        }
        Err(RmapError::NotFound)
    }

    /// Removes every SPTE: detaches the chain under the bit, then calls `f`
    /// on each SPTE pointer and frees the descriptors. Returns whether there
    /// was anything.
    ///
    /// # Safety
    ///
    /// As for [`RmapHead::remove`].
    pub unsafe fn zap_all<A: DescAlloc>(
        &self,
        alloc: &mut A,
        mut f: impl FnMut(SptePtr),
    ) -> Result<bool, RmapError> {
        // SAFETY: The caller is the only writer; we unlock right away.
        let guard = unsafe { self.lock() };
        let old = guard.old;
        // SAFETY: Detaching leaves a valid (empty) rmap.
        let unlocked = unsafe { guard.unlock(0) };
        if old == 0 {
            unlocked?;
            return Ok(false);
        }
        // Even if the head changed under the bit, the chain we detached is
        // ours to zap: leaving its SPTEs would leave them unreachable.
        let res = unlocked.map(|()| true);
        if old & MANY == 0 {
            f(old as SptePtr);
            return res;
        }
        // The chain is ours now: readers that saw it have released the bit
        // before our acquire, later ones see an empty head.
        let mut d = desc_of(old);
        while let Some(n) = core::ptr::NonNull::new(d) {
            // SAFETY: `d` is a live descriptor we own exclusively.
            unsafe {
                let cnt = ((*d).spte_count.get() as usize).min(PTE_LIST_EXT);
                for s in (&(*d).sptes)[..cnt].iter() {
                    f(s.get());
                }
                d = (*d).more.get();
                alloc.free(n);
            }
        }
        res
    }

    /// Number of SPTEs (6.12's `pte_list_count()`); 0 on a corrupt head
    /// descriptor.
    ///
    /// # Safety
    ///
    /// The caller is a writer-side user (C: holds `mmu_lock`), so no one
    /// changes the chain concurrently.
    pub unsafe fn count(&self) -> usize {
        // SAFETY: Forwarded from the caller.
        unsafe { count_of(self.val.load() & !LOCKED) }
    }

    /// Iterates the SPTE pointers without taking the bit.
    ///
    /// # Safety
    ///
    /// As for [`RmapHead::count`], for the lifetime of the iterator.
    pub unsafe fn iter(&self) -> RmapIter<'_> {
        RmapIter::new(self.val.load() & !LOCKED)
    }
}

impl Default for RmapHead {
    fn default() -> Self {
        Self::new()
    }
}

/// # Safety
///
/// `val` is a valid head value whose chain nobody changes concurrently.
unsafe fn count_of(val: usize) -> usize {
    if val == 0 {
        0
    } else if val & MANY == 0 {
        1
    } else {
        // SAFETY: Forwarded from the caller.
        unsafe { desc_total(desc_of(val)) }.unwrap_or(0)
    }
}

impl<'a> ReadLocked<'a> {
    /// The head's value with [`LOCKED`] clear (never 0).
    pub fn value(&self) -> usize {
        self.old
    }

    /// Number of SPTEs.
    pub fn count(&self) -> usize {
        // SAFETY: Holding the bit keeps the chain stable.
        unsafe { count_of(self.old) }
    }

    /// Iterates the SPTE pointers; the chain is stable while locked.
    pub fn iter(&self) -> RmapIter<'_> {
        RmapIter::new(self.old)
    }

    /// Drops the bit, restoring the exact old value with release ordering,
    /// and re-enables preemption.
    ///
    /// A head that changed while we held it (someone ignored the bit) is
    /// reported with [`RmapError::Changed`] and still unlocked: the bit is
    /// cleared from whatever value is there, which is not overwritten.
    #[inline(always)]
    pub fn unlock(self) -> Result<(), RmapError> {
        let guard = core::mem::ManuallyDrop::new(self);
        guard.release()
    }

    #[inline(always)]
    fn release(&self) -> Result<(), RmapError> {
        let expected = self.old | LOCKED;
        // Corruption detection only; a load of a line we own.
        let found = self.head.val.load();
        let res = if found == expected {
            // INVARIANT: the value we locked, unchanged and unlocked.
            self.head.val.store_release(self.old);
            Ok(())
        } else {
            // INVARIANT: the bit is cleared; the value is someone else's.
            self.head.val.clear_locked_release();
            Err(RmapError::Changed { expected, found })
        };
        preempt_enable();
        res
    }
}

impl Drop for ReadLocked<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// Iterator over an rmap's SPTE pointers (6.12's `rmap_iterator`).
pub struct RmapIter<'a> {
    single: SptePtr,
    desc: *const PteListDesc,
    pos: usize,
    _head: core::marker::PhantomData<&'a RmapHead>,
}

impl RmapIter<'_> {
    fn new(val: usize) -> Self {
        let (single, desc) = if val & MANY == 0 {
            (val as SptePtr, core::ptr::null())
        } else {
            (core::ptr::null(), desc_of(val) as *const PteListDesc)
        };
        Self {
            single,
            desc,
            pos: 0,
            _head: core::marker::PhantomData,
        }
    }
}

impl Iterator for RmapIter<'_> {
    type Item = SptePtr;

    fn next(&mut self) -> Option<SptePtr> {
        if !self.single.is_null() {
            let s = self.single;
            self.single = core::ptr::null();
            return Some(s);
        }
        while !self.desc.is_null() {
            // SAFETY: The creator of the iterator guarantees the chain is stable
            // and live for its lifetime.
            unsafe {
                let cnt = ((*self.desc).spte_count.get() as usize).min(PTE_LIST_EXT);
                if self.pos < cnt {
                    self.pos += 1;
                    return Some((*self.desc).sptes[self.pos - 1].get());
                }
                self.desc = (*self.desc).more.get();
                self.pos = 0;
            }
        }
        None
    }
}
