// SPDX-License-Identifier: GPL-2.0

//! Test helpers: a descriptor allocator that tracks every descriptor, and
//! SPTE values.
#![allow(dead_code)]

use kvm_rs_host::rmap::{DescAlloc, PteListDesc, RmapHead, PTE_LIST_EXT};
use kvm_rs_host::shared::SpteWord;
use std::collections::HashSet;
use std::ptr::NonNull;

/// A present, A/D-enabled, young SPTE for legacy/NPT masks (A = bit 5).
pub const YOUNG: u64 = (1 << 11) | (1 << 5) | 1;
/// The same, not accessed.
pub const OLD: u64 = (1 << 11) | 1;

/// Allocator that remembers what it handed out, reuses freed descriptors
/// (to provoke use-after-free bugs), poisons them on free, detects double
/// and foreign frees.
pub struct TrackingAlloc {
    pool: Vec<Box<PteListDesc>>,
    free_list: Vec<*mut PteListDesc>,
    live: HashSet<usize>,
    pub allocs: usize,
    pub frees: usize,
    pub bad_frees: usize,
}

impl TrackingAlloc {
    pub fn new() -> Self {
        Self {
            pool: Vec::new(),
            free_list: Vec::new(),
            live: HashSet::new(),
            allocs: 0,
            frees: 0,
            bad_frees: 0,
        }
    }

    pub fn live(&self) -> usize {
        self.live.len()
    }
}

// SAFETY: Descriptors are boxed and kept in `pool` until the allocator is
// dropped, so every pointer handed out stays valid; `alloc` never returns a
// descriptor that is live.
unsafe impl DescAlloc for TrackingAlloc {
    fn alloc(&mut self) -> NonNull<PteListDesc> {
        let p = match self.free_list.pop() {
            Some(p) => p,
            None => {
                let mut b = Box::new(PteListDesc::new());
                let p: *mut PteListDesc = &mut *b;
                self.pool.push(b);
                p
            }
        };
        assert!(self.live.insert(p as usize));
        self.allocs += 1;
        NonNull::new(p).unwrap()
    }

    unsafe fn free(&mut self, desc: NonNull<PteListDesc>) {
        let p = desc.as_ptr();
        if !self.live.remove(&(p as usize)) {
            self.bad_frees += 1;
            return;
        }
        self.frees += 1;
        // SAFETY: The caller hands the descriptor back; it is ours again.
        unsafe {
            let d = &*p;
            d.more.set(0xdead_0000 as *mut PteListDesc);
            d.spte_count.set(0xdead);
            d.tail_count.set(0xdead);
            for s in d.sptes.iter() {
                s.set(0xbad0 as *const SpteWord);
            }
        }
        self.free_list.push(p);
    }
}

/// Checks the 6.12 chain shape of `head` holding `n` SPTEs and returns the
/// number of descriptors: tails full, head descriptor non-empty, tail counts
/// consistent.
pub fn check_shape(head: &RmapHead, n: usize) -> usize {
    let v = head.raw();
    assert_eq!(v & 2, 0, "left locked");
    if v == 0 {
        assert_eq!(n, 0);
        return 0;
    }
    if v & 1 == 0 {
        assert_eq!(n, 1);
        return 0;
    }
    let mut d = (v & !3) as *const PteListDesc;
    let mut first = true;
    let mut seen = 0usize;
    let mut descs = 0;
    while !d.is_null() {
        // SAFETY: Single-threaded test; the chain is live.
        let (cnt, tail, more) = unsafe {
            let r = &*d;
            (
                r.spte_count.get() as usize,
                r.tail_count.get() as usize,
                r.more.get(),
            )
        };
        assert!(cnt >= 1 && cnt <= PTE_LIST_EXT);
        if !first {
            assert_eq!(cnt, PTE_LIST_EXT, "tail not full");
        }
        assert_eq!(cnt + tail, n - seen, "tail_count");
        seen += cnt;
        first = false;
        descs += 1;
        d = more;
    }
    assert_eq!(seen, n);
    descs
}
