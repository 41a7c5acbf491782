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
