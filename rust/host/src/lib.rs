//! Host build of the kvm-rs core.
//!
//! The files under `rust/core/` are compiled unchanged here and into the
//! kernel crate (`rust/kvm_rs.rs`). They reach their atomics only through
//! `crate::atomic_impl`, which is `core::sync::atomic` in the kernel and
//! in normal host builds, and loom's checked atomics under `--cfg loom`.
#![no_std]

#[cfg(any(test, loom))]
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
