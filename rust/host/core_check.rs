// SPDX-License-Identifier: GPL-2.0

//! Compile check of the core files with the kernel's toolchain (Debian
//! rustc 1.85, `#![no_std]`, edition 2021, kernel-like lints), without
//! needing a built kernel tree. `make check-host` runs it.
#![no_std]
#![allow(dead_code)]

#[path = "../core/atomic_core.rs"]
pub mod atomic_impl;

#[path = "../core/s2.rs"]
pub mod s2;

#[path = "../core/shared.rs"]
pub mod shared;

#[path = "../core/rmap.rs"]
pub mod rmap;

#[path = "../core/age.rs"]
pub mod age;
