//! Host build of the kvm-rs core.
//!
//! The files under `rust/core/` are compiled unchanged here and into the
//! kernel crate (`rust/kvm_rs.rs`). They reach their atomics only through
//! `crate::atomic_impl`, which is `core::sync::atomic` in the kernel and
//! in normal host builds, and loom's checked atomics under `--cfg loom`.
#![no_std]

extern crate std;

#[cfg(not(loom))]
#[path = "../../core/atomic_core.rs"]
pub mod atomic_impl;

#[cfg(loom)]
#[path = "atomic_loom.rs"]
pub mod atomic_impl;

/// arm64 stage-2 helpers (descriptor, relax, BBM decision, TLBI plan).
#[path = "../../core/s2.rs"]
pub mod s2;

/// Atomics and cells on memory shared with C (rmap head, SPTEs).
#[path = "../../core/shared.rs"]
pub mod shared;

/// x86 shadow-MMU rmaps with the bit-1 lock.
#[path = "../../core/rmap.rs"]
pub mod rmap;

/// Lockless aging of rmaps.
#[path = "../../core/age.rs"]
pub mod age;

/// The host's stand-in for the kernel's preemption control, which the core
/// calls through `kvm_rs_preempt_disable()` / `kvm_rs_preempt_enable()`
/// (kvm-rs's C half in the kernel): a per-thread depth counter, so tests
/// can check that no lock bit is ever held while preemptible.
#[cfg(not(loom))]
pub mod preempt {
    use core::cell::Cell;

    std::thread_local! {
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    /// The calling thread's preemption-disable depth (0 = preemptible).
    pub fn depth() -> u32 {
        DEPTH.with(|d| d.get())
    }

    /// The kernel's `preempt_disable()`.
    #[no_mangle]
    pub extern "C" fn kvm_rs_preempt_disable() {
        DEPTH.with(|d| d.set(d.get() + 1));
    }

    /// The kernel's `preempt_enable()`; an unbalanced call panics.
    #[no_mangle]
    pub extern "C" fn kvm_rs_preempt_enable() {
        DEPTH.with(|d| {
            assert!(d.get() > 0, "preempt_enable() without preempt_disable()");
            d.set(d.get() - 1)
        });
    }
}
