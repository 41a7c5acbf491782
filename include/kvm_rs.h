/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvm-rs: the C view of the Rust entry points. This header is the single
 * description of the FFI; scripts/check_ffi.py keeps it equal to the
 * `#[no_mangle] extern "C"` functions of rust/kvm_rs.rs.
 */
#ifndef KVM_RS_H
#define KVM_RS_H

#include <linux/types.h>

/* Version of the kvm-rs C ABI; bumped on every incompatible change. */
#define KVM_RS_ABI_VERSION 1

/**
 * kvm_rs_abi_version() - ABI version implemented by the loaded kvm-rs.
 *
 * Return: KVM_RS_ABI_VERSION of the Rust side; callers compare it with the
 * header's value to catch a stale module.
 */
u32 kvm_rs_abi_version(void);

/* Module parameter storage, owned by Rust (AtomicU32, same layout as u32). */
extern unsigned int kvm_rs_verbose;

#endif /* KVM_RS_H */
