// SPDX-License-Identifier: GPL-2.0

//! The atomic primitives behind [`crate::sync`]-style wrappers: the plain
//! `core` ones. The kernel crate and the normal host build use this file;
//! loom builds substitute `rust/host/src/atomic_loom.rs` with the same names.

pub use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Hint to the CPU that we are spinning on a lock bit (`cpu_relax()`).
#[inline(always)]
pub fn spin_hint() {
    core::hint::spin_loop();
}

extern "C" {
    /// `preempt_disable()`, provided by kvm-rs's C half in the kernel
    /// (`c/kvm_rs_exports.c`) and by the host crate's test environment.
    fn kvm_rs_preempt_disable();
    /// `preempt_enable()`, paired with [`kvm_rs_preempt_disable`].
    fn kvm_rs_preempt_enable();
}

/// Disables preemption: called before a head's lock bit is taken, so that
/// a holder is never scheduled out while other CPUs spin on the bit.
#[inline(always)]
pub fn preempt_disable() {
    // SAFETY: A C function without arguments or preconditions; every call
    // is paired with a later [`preempt_enable`] on the same task.
    unsafe { kvm_rs_preempt_disable() }
}

/// Re-enables preemption after the lock bit was released.
#[inline(always)]
pub fn preempt_enable() {
    // SAFETY: Pairs with an earlier [`preempt_disable`] of the same task.
    unsafe { kvm_rs_preempt_enable() }
}

/// `true` when the atomics and [`UnsafeCell`] are instrumented by a model
/// checker (loom) and therefore do not have the C layout. The C layout
/// assertions are only made when this is `false`.
pub const TRACKED: bool = false;

/// A plain interior-mutability cell with loom's closure-based interface.
///
/// In the kernel and in normal host builds this is exactly a
/// `core::cell::UnsafeCell<T>` (same size and layout as `T`); under loom the
/// same name is `loom::cell::UnsafeCell`, which checks every access for data
/// races. Callers are responsible for exclusion.
#[repr(transparent)]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    /// Creates a cell holding `v`.
    #[inline(always)]
    pub const fn new(v: T) -> Self {
        Self(core::cell::UnsafeCell::new(v))
    }

    /// Calls `f` with a pointer for reading the contents.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for writing the contents.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
