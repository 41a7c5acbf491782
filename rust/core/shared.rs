// SPDX-License-Identifier: GPL-2.0

//! The one place where kvm-rs touches memory it shares with KVM's C code
//! (or with other CPUs without a lock): the rmap head word, the SPTEs, and
//! the descriptor fields that the rmap bit lock protects.
//!
//! Every operation names its Linux-kernel-memory-model (LKMM) equivalent
//! and gives a one-line reason for its ordering. The atomics come from
//! `crate::atomic_impl`, which is `core::sync::atomic` in the kernel and in
//! normal host builds and loom's checked types under `--cfg loom`.
//!
//! All wrappers are `#[repr(transparent)]`, so outside loom a `HeadWord`
//! has the layout of C's `unsigned long`, a `SpteWord` that of `u64` and a
//! `LockedCell<T>` that of `T`.

use crate::atomic_impl::{AtomicU64, AtomicUsize, Ordering, UnsafeCell};

/// The value word of a `struct kvm_rmap_head` (`unsigned long val`).
#[repr(transparent)]
pub struct HeadWord(AtomicUsize);

impl HeadWord {
    /// Creates a word holding `v`.
    #[inline(always)]
    pub fn new(v: usize) -> Self {
        Self(AtomicUsize::new(v))
    }

    /// `READ_ONCE(head->val)`.
    ///
    /// Relaxed: a hint only (empty? locked?); nothing is dereferenced on the
    /// strength of this load unless an acquire CAS or `mmu_lock` follows.
    #[inline(always)]
    pub fn load(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// `try_cmpxchg_acquire(&head->val, &old, new)`: takes the lock bit.
    ///
    /// Acquire on success: pairs with the release in [`Self::store_release`]
    /// of the previous holder, so everything that holder did to the chain
    /// and to the SPTEs (including a reader's last SPTE access) happens
    /// before our critical section. Relaxed on failure: we only retry.
    #[inline(always)]
    pub fn try_lock(&self, old: usize, new: usize) -> Result<usize, usize> {
        self.0
            .compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed)
    }

    /// `smp_store_release(&head->val, v)`: drops the lock bit and publishes
    /// `v`.
    ///
    /// Release: the chain contents written by a writer, and every descriptor
    /// read and SPTE access made by a reader, must be visible to / complete
    /// before the next holder (who may free what we just looked at).
    #[inline(always)]
    pub fn store_release(&self, v: usize) {
        self.0.store(v, Ordering::Release)
    }

    /// `atomic_long_andnot_release(LOCKED, &head->val)`: drops the lock bit
    /// from a head whose value someone else changed while we held it (the
    /// corruption path of an unlock), without overwriting their value.
    ///
    /// Release: as for [`Self::store_release`].
    #[inline(always)]
    pub fn clear_locked_release(&self) {
        self.0.fetch_and(!crate::rmap::LOCKED, Ordering::Release);
    }
}

/// One SPTE (`u64` in a shadow page table), as seen through a `u64 *`.
///
/// Hardware and other CPUs change SPTEs concurrently (the CPU sets
/// Accessed/Dirty, fast page faults `cmpxchg` them), so every access is
/// atomic.
#[repr(transparent)]
pub struct SpteWord(AtomicU64);

impl SpteWord {
    /// Creates an SPTE holding `v` (host tests and models only; in the kernel
    /// SPTEs live in shadow page tables).
    #[inline(always)]
    pub fn new(v: u64) -> Self {
        Self(AtomicU64::new(v))
    }

    /// `READ_ONCE(*sptep)`.
    ///
    /// Relaxed: the value decides on, and is the expected value of, a
    /// following cmpxchg on the same word; the pfn in it is handed to KVM,
    /// which may only use it while the primary MMU keeps the page mapped
    /// (the aging callers hold the primary PTE lock or the folio). No other
    /// memory is read through it.
    #[inline(always)]
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// `WRITE_ONCE(*sptep, v)`.
    ///
    /// Relaxed: SPTE updates publish no other memory; ordering against the
    /// rmap comes from the head's release/acquire.
    #[inline(always)]
    pub fn store(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }

    /// `xchg_relaxed(sptep, v)`: zapping an SPTE while reading back the
    /// Accessed/Dirty bits the CPU may set concurrently.
    ///
    /// Relaxed: only this word's value matters; see [`Self::store`].
    #[inline(always)]
    pub fn swap(&self, v: u64) -> u64 {
        self.0.swap(v, Ordering::Relaxed)
    }

    /// `try_cmpxchg64_relaxed(sptep, &old, new)`.
    ///
    /// Relaxed: clearing Accessed or making an SPTE access-tracked publishes
    /// nothing; the head's release store (or RCU, for the TDP MMU) orders it
    /// before a later writer frees the page table. Failure means someone
    /// else changed the SPTE and we just report what is there now.
    #[inline(always)]
    pub fn try_cmpxchg(&self, old: u64, new: u64) -> Result<u64, u64> {
        self.0
            .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
    }
}

/// A descriptor field (`more`, `spte_count`, `tail_count`, `sptes[i]`).
///
/// Plain memory in C: it is written only by the holder of the rmap's bit
/// lock that also holds `mmu_lock` for write, and read by holders of the bit
/// or of `mmu_lock`. Under loom every access is checked for races, so a
/// model fails if a reader touches a descriptor without the lock, including
/// after it was freed (the loom allocator poisons freed descriptors).
#[repr(transparent)]
pub struct LockedCell<T: Copy>(UnsafeCell<T>);

impl<T: Copy> LockedCell<T> {
    /// Creates a cell holding `v`.
    #[inline(always)]
    pub fn new(v: T) -> Self {
        Self(UnsafeCell::new(v))
    }

    /// Plain read of the field.
    ///
    /// # Safety
    ///
    /// No one may be writing the field concurrently: the caller holds the
    /// rmap's bit lock, or is the (only) writer-side user of the rmap
    /// (`mmu_lock` held for write), or owns the descriptor exclusively.
    #[inline(always)]
    pub unsafe fn get(&self) -> T {
        // SAFETY: The caller guarantees that there is no concurrent write, so
        // the pointer from the cell is valid for a plain read.
        self.0.with(|p| unsafe { *p })
    }

    /// Plain write of the field.
    ///
    /// # Safety
    ///
    /// The caller has exclusive access to the field: it holds the rmap's
    /// bit lock *and* is the writer-side user, or it owns the descriptor
    /// exclusively (not reachable from any rmap head).
    #[inline(always)]
    pub unsafe fn set(&self, v: T) {
        // SAFETY: The caller guarantees exclusive access, so nobody else reads
        // or writes the field while we store to it.
        self.0.with_mut(|p| unsafe { *p = v })
    }
}
