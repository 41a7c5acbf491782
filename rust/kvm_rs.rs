// SPDX-License-Identifier: GPL-2.0

//! kvm-rs: Rust helpers for KVM memory management.
//!
//! This is the kernel crate root. The algorithm files under `core/` use only
//! `core` and are compiled unchanged here and in the host crate
//! (`rust/host`), where they are unit-, property- and loom-tested. This file
//! holds the kernel glue only: the module, its `extern "C"` entry points
//! (declared for C in `include/kvm_rs.h`) and the module parameters' storage.
//!
//! The 6.12 `module!` macro has no `params:` support, so the parameters are
//! declared with `module_param_named()` in `c/kvm_rs_exports.c` and stored
//! in the `#[no_mangle]` statics below.

use core::ffi::c_int;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::prelude::*;

#[path = "core/atomic_core.rs"]
pub mod atomic_impl;

#[path = "core/shared.rs"]
pub mod shared;

#[path = "core/rmap.rs"]
pub mod rmap;

#[path = "core/age.rs"]
pub mod age;

#[path = "rmap_ffi.rs"]
pub mod rmap_ffi;

#[path = "core/s2.rs"]
pub mod s2;

#[path = "s2_ffi.rs"]
pub mod s2_ffi;

/// ABI version of the entry points; equal to `KVM_RS_ABI_VERSION` in
/// `include/kvm_rs.h` (checked by `scripts/check_ffi.py`).
pub const KVM_RS_ABI_VERSION: u32 = 1;

/// Module parameter `kvm_rs.verbose`: log more at load time (0 or 1).
///
/// Written by the kernel's parameter code (a plain C store, as for every C
/// module parameter) and read here with relaxed loads, the Rust equivalent
/// of `READ_ONCE()`: the value is a hint that needs no ordering.
#[no_mangle]
pub static kvm_rs_verbose: AtomicU32 = AtomicU32::new(0);

/// Returns the ABI version implemented by this module.
#[no_mangle]
pub extern "C" fn kvm_rs_abi_version() -> u32 {
    KVM_RS_ABI_VERSION
}

extern "C" {
    /// C half of the module: checks that it links against this object and
    /// agrees on the ABI version, then creates the debugfs counters.
    /// Returns 0 or `-EINVAL`.
    fn kvm_rs_c_init() -> c_int;
    /// Undoes [`kvm_rs_c_init`].
    fn kvm_rs_c_exit();
}

module! {
    type: KvmRs,
    name: "kvm_rs",
    author: "kvm-rs developers",
    description: "Rust helpers for KVM memory management (rmap lock, lockless aging, stage-2 rules)",
    license: "GPL",
}

struct KvmRs;

impl kernel::Module for KvmRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: `kvm_rs_c_init` takes no arguments, is defined in this
        // module's C object and is called once, before any `kvm_rs_c_exit`.
        let rc = unsafe { kvm_rs_c_init() };
        if rc != 0 {
            pr_err!("C and Rust halves disagree on the ABI version\n");
            return Err(EINVAL);
        }
        // Relaxed: a diagnostic knob, see `kvm_rs_verbose`.
        if kvm_rs_verbose.load(Ordering::Relaxed) != 0 {
            pr_info!("kvm-rs loaded, ABI {}\n", KVM_RS_ABI_VERSION);
        }
        Ok(KvmRs)
    }
}

impl Drop for KvmRs {
    fn drop(&mut self) {
        // SAFETY: `kvm_rs_c_init` succeeded (the module exists); this runs
        // once, at unload, when no user of the exports is left.
        unsafe { kvm_rs_c_exit() };
    }
}
