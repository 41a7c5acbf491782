// SPDX-License-Identifier: GPL-2.0

//! loom flavour of `rust/core/atomic_core.rs`: the same names, backed by
//! loom's model-checked atomics and cells, so the core files compile
//! unchanged and every interleaving of a small model can be explored.

pub use loom::cell::UnsafeCell;
pub use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Layouts differ from C under loom; see `atomic_core::TRACKED`.
pub const TRACKED: bool = true;

/// Spinning on a lock bit: yield to loom's scheduler so that a spin loop
/// is a finite, explorable sequence of steps rather than a livelock.
#[inline(always)]
pub fn spin_hint() {
    loom::thread::yield_now();
}
