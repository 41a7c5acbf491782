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

loom::thread_local! {
    static PREEMPT_DEPTH: core::cell::Cell<u32> = core::cell::Cell::new(0);
}

/// `preempt_disable()` in a model: counts the calling loom thread's depth.
#[inline(always)]
pub fn preempt_disable() {
    PREEMPT_DEPTH.with(|d| d.set(d.get() + 1));
}

/// `preempt_enable()` in a model; an unbalanced enable fails the model.
#[inline(always)]
pub fn preempt_enable() {
    PREEMPT_DEPTH.with(|d| {
        assert!(d.get() > 0, "preempt_enable() without preempt_disable()");
        d.set(d.get() - 1)
    });
}

/// The calling loom thread's preemption-disable depth (0 = preemptible).
pub fn preempt_depth() -> u32 {
    PREEMPT_DEPTH.with(|d| d.get())
}
