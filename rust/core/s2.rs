// SPDX-License-Identifier: GPL-2.0

//! arm64 stage-2 helpers: the descriptor, permission relaxation, the
//! break-before-make decision and the TLB maintenance plan.
//!
//! This file uses only `core`. It is compiled unchanged into the host
//! test crate (`rust/host`) and into the kernel crate, where a thin
//! `extern "C"` layer returns the `#[repr(u32)]` codes defined here to
//! `arch/arm64/kvm/hyp/pgtable.c`. Every function is pure: it looks at
//! descriptor values and returns a decision; the caller does the
//! `cmpxchg`, the cache maintenance and the TLBI.
//!
//! # Supported translation regimes
//!
//! Only the **4K granule** with a **48-bit output address** (no FEAT_LPA2,
//! no 52-bit PA), start levels 0 to 3. The level decides what a valid
//! descriptor is:
//!
//! | level | bit 1 = 1              | bit 1 = 0                   |
//! |-------|------------------------|-----------------------------|
//! | 0     | table (512 GiB span)   | reserved (faults)           |
//! | 1     | table (1 GiB span)     | block, 1 GiB                |
//! | 2     | table (2 MiB span)     | block, 2 MiB                |
//! | 3     | page, 4 KiB            | reserved (faults)           |
//!
//! 16K and 64K granules (different spans and minimum block levels) and
//! LPA2 (where bits 9:8 hold OA\[51:50\] instead of SH) are not supported.
//!
//! # Rules
//!
//! * [`relax`] only ever **adds** permissions (sets S2AP R/W, clears XN).
//!   Permissions are compared as **sets** of {R, W, X}, never as encoded
//!   numbers: RX and RW are incomparable, and neither is "less" than the
//!   other (the bug class discussed in the RFC that led to 6.12's design).
//! * [`map_decide`] never changes only the permissions of a valid leaf:
//!   it answers [`MapDecision::PermsOnly`] and the caller returns
//!   `-EAGAIN`, as 6.12 does; if the vCPU still lacks the access it takes a
//!   permission fault and goes through [`relax`]. A change of output
//!   address, attributes or size of a valid entry is a full
//!   break-before-make, except that the break may be skipped for a pure
//!   **block-size change** (table <-> block at the same level, identical
//!   output address, attributes and permissions) when FEAT_BBM level 2 is
//!   implemented, the capability is final and it is not forced off.
//! * [`tlbi_plan`] says which invalidation the change needs: none only if
//!   the old entry was not valid; a local (non-shareable) TLBI by IPA
//!   when permissions only grow; a broadcast TLBI by IPA for a
//!   restriction, an unmap, an output-address or attribute change; a
//!   broadcast invalidation of the whole VMID when a table entry is
//!   replaced (by a block or anything else) or a block is replaced by a
//!   table, which covers every block-size change made without a break.
//!
//! # Forward progress
//!
//! The stage-2 fault path is: translation fault -> map, permission fault
//! -> relax; a `-EAGAIN` from either returns to the guest, which retries
//! the access. It cannot loop forever between the two:
//!
//! 1. Neither path ever removes a permission or invalidates an entry that
//!    another vCPU installed: [`relax`] takes the union with the existing
//!    permissions, and [`map_decide`] on a valid entry with the same
//!    output address and attributes answers `Same`/`PermsOnly` (no
//!    write). So, on its own, the fault path moves each entry
//!    monotonically up a finite lattice: invalid -> locked -> valid(P) ->
//!    valid(P') with P' a strict superset of P (at most 3 steps up).
//! 2. A vCPU whose access is still refused after a `-EAGAIN` faults
//!    again. If the entry is valid it is a permission fault and [`relax`]
//!    makes the access permitted in one successful `cmpxchg`; a failed
//!    `cmpxchg` means another writer moved the entry, which by (1) can
//!    happen only a bounded number of times. If the entry is invalid,
//!    the map path installs it (the break is just taking the lock).
//! 3. A locked entry is owned by a walker whose next step (make) needs
//!    nothing from anybody else, so waiting vCPUs only wait for that
//!    walker to be scheduled.
//!
//! Only the restriction paths (write protection for dirty logging,
//! unmap, MMU notifiers) move an entry down, and each of those is a
//! separate external event; between two of them every faulting vCPU
//! completes in a bounded number of steps. `rust/host/tests/
//! s2_exhaustive.rs` checks this by exploring every interleaving of a
//! small state machine (2 and 3 vCPUs, all wanted permission sets, a
//! bounded number of restrictions) that calls the functions of this
//! file, and shows that the pre-5.12 behaviour (the map path rewriting
//! the permissions of a valid entry to what the faulting vCPU wants)
//! livelocks in the same model.

/// Bit masks of a stage-2 descriptor, 4K granule, 48-bit OA, named after
/// the ARM ARM (VMSAv8-64 stage 2 descriptor formats). The values are
/// those of 6.12's `asm/kvm_pgtable.h` and `hyp/pgtable.c`.
pub mod bits {
    /// Bit 0: the descriptor is valid (`KVM_PTE_VALID`).
    pub const VALID: u64 = 1 << 0;
    /// Bit 1: descriptor type, 1 = table (levels 0-2) or page (level 3),
    /// 0 = block (levels 1-2) (`KVM_PTE_TYPE`).
    pub const TYPE: u64 = 1 << 1;
    /// Bits 5:2: stage-2 MemAttr (`KVM_PTE_LEAF_ATTR_LO_S2_MEMATTR`).
    pub const MEMATTR: u64 = 0xf << 2;
    /// Bit 6: S2AP\[0\], read permission (`KVM_PTE_LEAF_ATTR_LO_S2_S2AP_R`).
    pub const S2AP_R: u64 = 1 << 6;
    /// Bit 7: S2AP\[1\], write permission (`KVM_PTE_LEAF_ATTR_LO_S2_S2AP_W`).
    pub const S2AP_W: u64 = 1 << 7;
    /// Bits 9:8: shareability (`KVM_PTE_LEAF_ATTR_LO_S2_SH`).
    pub const SH: u64 = 0x3 << 8;
    /// Bit 10: access flag (`KVM_PTE_LEAF_ATTR_LO_S2_AF`).
    pub const AF: u64 = 1 << 10;
    /// Bit 16: nT, block translation entry hint for FEAT_BBM level 1.
    /// KVM never sets it; it is compared like any other attribute bit.
    pub const NT: u64 = 1 << 16;
    /// Bits 47:12: output address of a leaf, or next-level table address
    /// of a table descriptor (`KVM_PTE_ADDR_MASK` for 4K pages).
    pub const OA: u64 = 0x0000_ffff_ffff_f000;
    /// Bit 52: Contiguous hint. KVM's stage 2 does not use it.
    pub const CONTIGUOUS: u64 = 1 << 52;
    /// Bit 54: execute-never. 6.12 uses this single bit
    /// (`KVM_PTE_LEAF_ATTR_HI_S2_XN`); bit 53 (FEAT_XNX) is left clear.
    pub const XN: u64 = 1 << 54;
    /// Bits 58:55: reserved for software use (`KVM_PTE_LEAF_ATTR_HI_SW`).
    pub const SW: u64 = 0xf << 55;
    /// The permission bits: S2AP R, S2AP W and XN
    /// (`KVM_PTE_LEAF_ATTR_S2_PERMS`).
    pub const PERMS: u64 = S2AP_R | S2AP_W | XN;
    /// Bit 10 of an *invalid* descriptor: a walker owns this entry in the
    /// middle of a break-before-make (`KVM_INVALID_PTE_LOCKED`).
    pub const KVM_LOCKED: u64 = 1 << 10;
    /// Bits 9:2 of an invalid descriptor: page owner id
    /// (`KVM_INVALID_PTE_OWNER_MASK`, protected KVM).
    pub const KVM_OWNER: u64 = 0xff << 2;
}

/// A translation table level of the 4K granule, 0 to 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(u8);

impl Level {
    /// Level 0: tables only.
    pub const L0: Level = Level(0);
    /// Level 1: tables and 1 GiB blocks.
    pub const L1: Level = Level(1);
    /// Level 2: tables and 2 MiB blocks.
    pub const L2: Level = Level(2);
    /// Level 3: 4 KiB pages.
    pub const L3: Level = Level(3);

    /// Returns the level `level`, or `None` outside 0..=3.
    pub const fn new(level: u8) -> Option<Level> {
        if level <= 3 {
            Some(Level(level))
        } else {
            None
        }
    }

    /// Returns the level as a number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Returns the size of the input address range one entry at this
    /// level translates (4 KiB at level 3, 2 MiB at 2, 1 GiB at 1, 512 GiB
    /// at 0).
    pub const fn span(self) -> u64 {
        1u64 << (12 + 9 * (3 - self.0 as u32))
    }
}

/// What a descriptor is at a given level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bit 0 clear and not locked: translation fault. KVM may keep an
    /// owner id in bits 9:2.
    Invalid,
    /// Bit 0 clear with [`bits::KVM_LOCKED`]: another walker is in the
    /// middle of a break-before-make on this entry.
    Locked,
    /// Bit 0 set but an encoding this level does not allow (a block at
    /// level 0, bit 1 clear at level 3): the hardware faults on it and
    /// never caches it. KVM never writes one.
    Reserved,
    /// Table descriptor (levels 0-2).
    Table,
    /// Block descriptor (levels 1-2).
    Block,
    /// Page descriptor (level 3).
    Page,
}

impl Kind {
    /// Returns true for a leaf that translates: a block or a page.
    pub const fn is_leaf(self) -> bool {
        matches!(self, Kind::Block | Kind::Page)
    }

    /// Returns true if the hardware may walk through or cache this entry:
    /// a table, a block or a page.
    pub const fn is_valid(self) -> bool {
        matches!(self, Kind::Table | Kind::Block | Kind::Page)
    }
}

/// A set of stage-2 access permissions.
///
/// This is a set, not a number: compare with [`Perms::contains`], never
/// with `<`/`>` on an encoding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Perms {
    /// Read (S2AP\[0\]).
    pub r: bool,
    /// Write (S2AP\[1\]).
    pub w: bool,
    /// Execute (XN clear).
    pub x: bool,
}

impl Perms {
    /// No access.
    pub const NONE: Perms = Perms::new(false, false, false);
    /// Read, write and execute.
    pub const RWX: Perms = Perms::new(true, true, true);

    /// Returns the set {R if `r`, W if `w`, X if `x`}.
    pub const fn new(r: bool, w: bool, x: bool) -> Perms {
        Perms { r, w, x }
    }

    /// Returns the set from a mask with R = 1, W = 2, X = 4 (the values of
    /// 6.12's `KVM_PGTABLE_PROT_X/W/R` are different: this is not that
    /// enum). Other bits are ignored.
    pub const fn from_mask(mask: u32) -> Perms {
        Perms::new(mask & 1 != 0, mask & 2 != 0, mask & 4 != 0)
    }

    /// Returns the mask with R = 1, W = 2, X = 4.
    pub const fn mask(self) -> u32 {
        (self.r as u32) | (self.w as u32) << 1 | (self.x as u32) << 2
    }

    /// Returns true if every permission in `other` is also in `self`
    /// (`self` is a superset of `other`).
    pub const fn contains(self, other: Perms) -> bool {
        (self.r || !other.r) && (self.w || !other.w) && (self.x || !other.x)
    }

    /// Returns the union of both sets.
    pub const fn union(self, other: Perms) -> Perms {
        Perms::new(self.r || other.r, self.w || other.w, self.x || other.x)
    }

    /// Returns true if both sets hold the same permissions.
    pub const fn same(self, other: Perms) -> bool {
        self.contains(other) && other.contains(self)
    }
}

/// A stage-2 translation table descriptor (6.12's `kvm_pte_t`), 4K
/// granule, 48-bit output address.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor(u64);

impl Descriptor {
    /// The all-zero invalid descriptor.
    pub const INVALID: Descriptor = Descriptor(0);
    /// KVM's locked-invalid marker (`KVM_INVALID_PTE_LOCKED`).
    pub const LOCKED: Descriptor = Descriptor(bits::KVM_LOCKED);

    /// Wraps a raw descriptor value.
    pub const fn from_raw(raw: u64) -> Descriptor {
        Descriptor(raw)
    }

    /// Returns the raw descriptor value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Returns a table descriptor pointing to the next-level table at
    /// `next` (only bits 47:12 are kept).
    pub const fn table(next: u64) -> Descriptor {
        Descriptor((next & bits::OA) | bits::TYPE | bits::VALID)
    }

    /// Returns a block (levels 1-2) or page (level 3) descriptor, built
    /// the way 6.12's `kvm_init_valid_leaf_pte()` and
    /// `stage2_set_prot_attr()` do: output address `oa` (bits 47:12
    /// kept), MemAttr `mem_attr` (4 bits), shareability `sh` (2 bits), the
    /// access flag set and permissions `perms`. At level 0 the result is a
    /// reserved encoding.
    pub const fn leaf(level: Level, oa: u64, mem_attr: u8, sh: u8, perms: Perms) -> Descriptor {
        let ty = if level.0 == 3 { bits::TYPE } else { 0 };
        let d = (oa & bits::OA)
            | ((mem_attr as u64) << 2) & bits::MEMATTR
            | ((sh as u64) << 8) & bits::SH
            | bits::AF
            | ty
            | bits::VALID;
        Descriptor(d).with_perms(perms)
    }

    /// Returns true if bit 0 is set (6.12's `kvm_pte_valid()`). See
    /// [`Descriptor::kind`] for what the hardware does with it.
    pub const fn is_valid(self) -> bool {
        self.0 & bits::VALID != 0
    }

    /// Returns true for KVM's locked-invalid marker (6.12's
    /// `stage2_pte_is_locked()`).
    pub const fn is_locked(self) -> bool {
        !self.is_valid() && self.0 & bits::KVM_LOCKED != 0
    }

    /// Returns what this descriptor is at `level`.
    pub const fn kind(self, level: Level) -> Kind {
        if !self.is_valid() {
            return if self.is_locked() {
                Kind::Locked
            } else {
                Kind::Invalid
            };
        }
        let type_bit = self.0 & bits::TYPE != 0;
        match (level.0, type_bit) {
            (3, true) => Kind::Page,
            (3, false) => Kind::Reserved,
            (0, false) => Kind::Reserved,
            (_, true) => Kind::Table,
            (_, false) => Kind::Block,
        }
    }

    /// Returns bits 47:12: the output address of a leaf, or the address of
    /// the next-level table of a table descriptor.
    pub const fn output_address(self) -> u64 {
        self.0 & bits::OA
    }

    /// Returns MemAttr\[3:0\] (bits 5:2).
    pub const fn mem_attr(self) -> u8 {
        ((self.0 & bits::MEMATTR) >> 2) as u8
    }

    /// Returns SH\[1:0\] (bits 9:8).
    pub const fn sh(self) -> u8 {
        ((self.0 & bits::SH) >> 8) as u8
    }

    /// Returns the access flag (bit 10). Meaningless for an invalid
    /// descriptor, where bit 10 is KVM's lock.
    pub const fn af(self) -> bool {
        self.0 & bits::AF != 0
    }

    /// Returns the execute-never bit (bit 54).
    pub const fn xn(self) -> bool {
        self.0 & bits::XN != 0
    }

    /// Returns the software bits 58:55, shifted down.
    pub const fn sw(self) -> u8 {
        ((self.0 & bits::SW) >> 55) as u8
    }

    /// Returns the permission set of a leaf: R from S2AP\[0\], W from
    /// S2AP\[1\], X from XN clear. Only meaningful for a block or page.
    pub const fn perms(self) -> Perms {
        Perms::new(
            self.0 & bits::S2AP_R != 0,
            self.0 & bits::S2AP_W != 0,
            self.0 & bits::XN == 0,
        )
    }

    /// Returns this descriptor with the permission bits set to exactly
    /// `perms`, every other bit unchanged.
    pub const fn with_perms(self, perms: Perms) -> Descriptor {
        let mut d = self.0 & !bits::PERMS;
        if perms.r {
            d |= bits::S2AP_R;
        }
        if perms.w {
            d |= bits::S2AP_W;
        }
        if !perms.x {
            d |= bits::XN;
        }
        Descriptor(d)
    }

    /// Returns every bit except S2AP R/W and XN: two leaves with equal
    /// values here differ at most in their permissions.
    pub const fn without_perms(self) -> u64 {
        self.0 & !bits::PERMS
    }
}

/// A descriptor together with what its subtree translates, as
/// [`map_decide`] needs it to recognise a pure block-size change.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The descriptor.
    pub desc: Descriptor,
    /// Only read when `desc` is a table: a block descriptor at the same
    /// level that translates every address of the span exactly as the
    /// subtree does (same output address, attributes and permissions),
    /// when the caller knows the subtree is a complete, uniform split of
    /// one block (eager splitting builds such tables). Anything that is
    /// not a valid block at this level, e.g. 0, means "not known", and
    /// the break is then never skipped.
    pub block_equiv: Descriptor,
}

impl Entry {
    /// An entry that is a leaf or invalid (no subtree).
    pub const fn new(desc: Descriptor) -> Entry {
        Entry {
            desc,
            block_equiv: Descriptor::INVALID,
        }
    }

    /// A table entry whose subtree translates like the block `equiv`.
    pub const fn uniform_table(desc: Descriptor, equiv: Descriptor) -> Entry {
        Entry {
            desc,
            block_equiv: equiv,
        }
    }
}

/// The FEAT_BBM state the kernel has established.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// ID_AA64MMFR2_EL1.BBM (bits 55:52) of the sanitised, system-wide
    /// register: 0, 1 or 2 (an unsigned field, so larger means more).
    pub bbm_level: u8,
    /// True once the system capabilities are final (6.12's
    /// `cpus_have_final_cap()` may be used). Before that a late CPU could
    /// still lower the level.
    pub is_final: bool,
    /// False when the feature is forced off (command line or debugfs), or
    /// when the kernel cannot handle a TLB conflict abort on the stage-2
    /// fault path.
    pub enabled: bool,
}

impl Caps {
    /// Builds the capabilities from a raw ID_AA64MMFR2_EL1 value.
    pub const fn from_mmfr2(mmfr2: u64, is_final: bool, enabled: bool) -> Caps {
        Caps {
            bbm_level: ((mmfr2 >> 52) & 0xf) as u8,
            is_final,
            enabled,
        }
    }

    /// Returns true if the break of a pure block-size change may be
    /// skipped: FEAT_BBM level 2 or more, final, and enabled.
    pub const fn may_skip_break(self) -> bool {
        self.bbm_level >= 2 && self.is_final && self.enabled
    }
}

/// Outcome of [`relax`].
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relax {
    /// The entry already grants every wanted permission: write nothing.
    /// The caller still does the local TLBI of [`tlbi_plan`]`(old, old)`:
    /// the faulting CPU may hold a stale, more restrictive entry.
    Unchanged,
    /// Install `new` with a `cmpxchg` against the old value; on failure
    /// return `-EAGAIN`. `new` differs from the old value only by added
    /// permissions.
    Relaxed {
        /// The descriptor to install.
        new: Descriptor,
        /// Execute permission is being added: invalidate the instruction
        /// cache to PoU for the span *before* installing `new`.
        icache_inval: bool,
    },
    /// The entry is not a valid leaf (invalid, locked, a table, or a
    /// reserved encoding): return `-EAGAIN`, the vCPU retries and takes
    /// the fault that matches the current entry.
    NotValid,
}

/// C-ABI code of a [`Relax`] outcome.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelaxCode {
    /// [`Relax::Unchanged`].
    Unchanged = 0,
    /// [`Relax::Relaxed`].
    Relaxed = 1,
    /// [`Relax::NotValid`].
    NotValid = 2,
}

/// C-ABI form of a [`Relax`] outcome, for the kernel's `extern "C"` layer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelaxResult {
    /// Which outcome.
    pub code: RelaxCode,
    /// For [`RelaxCode::Relaxed`]: invalidate the I-cache first.
    /// Otherwise false.
    pub icache_inval: bool,
    /// For [`RelaxCode::Relaxed`]: the descriptor to install. Otherwise
    /// the old value.
    pub new: u64,
}

impl Relax {
    /// Converts to the C-ABI form; `old` is the descriptor given to
    /// [`relax`].
    pub const fn to_c(self, old: Descriptor) -> RelaxResult {
        match self {
            Relax::Unchanged => RelaxResult {
                code: RelaxCode::Unchanged,
                icache_inval: false,
                new: old.0,
            },
            Relax::Relaxed { new, icache_inval } => RelaxResult {
                code: RelaxCode::Relaxed,
                icache_inval,
                new: new.0,
            },
            Relax::NotValid => RelaxResult {
                code: RelaxCode::NotValid,
                icache_inval: false,
                new: old.0,
            },
        }
    }
}

/// Adds the permissions `want` to the leaf `old` at `level`.
///
/// Never removes a permission: the result grants `old`'s permission set
/// united with `want`, compared as sets. Only the S2AP R/W and XN bits
/// can differ between `old` and the new descriptor.
pub const fn relax(old: Descriptor, level: Level, want: Perms) -> Relax {
    if !old.kind(level).is_leaf() {
        return Relax::NotValid;
    }
    let have = old.perms();
    let grant = have.union(want);
    if grant.same(have) {
        return Relax::Unchanged;
    }
    Relax::Relaxed {
        new: old.with_perms(grant),
        icache_inval: grant.x && !have.x,
    }
}

/// What the stage-2 map path does with one entry.
///
/// The discriminants are the C-ABI codes.
#[must_use]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapDecision {
    /// The entry already is exactly the wanted one: write nothing, return
    /// `-EAGAIN` (the fault handler reports success).
    Same = 0,
    /// Same output address, attributes and size, only the permissions
    /// differ (in any direction): write nothing, return `-EAGAIN`. The
    /// map path never changes permissions; a vCPU that still lacks an
    /// access faults again and goes through [`relax`].
    PermsOnly = 1,
    /// The old entry is invalid (or a reserved encoding, which the
    /// hardware never caches): lock it with a `cmpxchg`, do the cache
    /// maintenance and make the new entry. No TLBI.
    Install = 2,
    /// Full break-before-make: `cmpxchg` to the locked marker, the
    /// [`tlbi_plan`] invalidation and its DSB, cache maintenance, then
    /// make the new entry.
    FullBbm = 3,
    /// FEAT_BBM level 2 block-size change with identical output address,
    /// attributes and permissions: `cmpxchg` old -> new directly, then a
    /// broadcast invalidation of the whole VMID ([`tlbi_plan`] says so).
    BreakSkippedBbml2 = 4,
    /// Another walker holds the entry locked (mid break-before-make):
    /// write nothing, return `-EAGAIN`.
    Busy = 5,
}

/// Number of descriptors in one 4K-granule translation table.
pub const ENTRIES_PER_TABLE: usize = 512;

/// The block at `level` that a next-level table translates exactly like,
/// if the table is a complete, uniform split of one block: all
/// [`ENTRIES_PER_TABLE`] entries valid leaves at `level + 1` (blocks at
/// level 2 or pages at level 3), output addresses consecutive from a base
/// aligned to `level`'s span, every other bit equal. Returns
/// [`Descriptor::INVALID`] for anything else: a wrong length, no blocks at
/// `level` (level 0 or 3), a nested table (a 1 GiB block split straight to
/// pages), a hole, a gap, a differing attribute or permission.
///
/// This is what eager page splitting builds (6.12's
/// `kvm_pgtable_stage2_create_unlinked()` from one block's output address
/// and permissions), so the caller can pass the result to [`map_decide`]
/// as the new table's [`Entry::block_equiv`] after checking the table
/// rather than trusting its construction.
pub fn split_block_equiv(entries: &[u64], level: Level) -> Descriptor {
    let child = match Level::new(level.0 + 1) {
        Some(c) if level.0 >= 1 => c,
        _ => return Descriptor::INVALID,
    };
    if entries.len() != ENTRIES_PER_TABLE {
        return Descriptor::INVALID;
    }
    let first = Descriptor(entries[0]);
    if !matches!(first.kind(child), Kind::Block | Kind::Page) {
        return Descriptor::INVALID;
    }
    let base = first.output_address();
    if base & (level.span() - 1) != 0 {
        return Descriptor::INVALID;
    }
    let rest = first.0 & !bits::OA;
    let mut oa = base;
    for &e in entries {
        // Same kind, attributes and permissions (all non-OA bits), and the
        // next output address.
        if e & !bits::OA != rest || e & bits::OA != oa {
            return Descriptor::INVALID;
        }
        oa += child.span();
    }
    // The block: the children's bits with the block type (bit 1 clear).
    Descriptor((rest & !bits::TYPE) | base)
}

/// Decides how the map path replaces `old` with `new` at `level`.
///
/// `old` is the value the walker read (`ctx->old`), `new` what it wants
/// to install; both as [`Entry`] so that a table can say which block it
/// is equivalent to.
pub const fn map_decide(old: Entry, new: Entry, level: Level, caps: Caps) -> MapDecision {
    let old_kind = old.desc.kind(level);
    let new_kind = new.desc.kind(level);

    if matches!(old_kind, Kind::Locked) {
        return MapDecision::Busy;
    }
    if !old_kind.is_valid() {
        return MapDecision::Install;
    }
    // From here on the old entry is a valid table, block or page.
    if old.desc.0 == new.desc.0 {
        return MapDecision::Same;
    }
    match (old_kind, new_kind) {
        (Kind::Block, Kind::Block) | (Kind::Page, Kind::Page) => {
            if old.desc.without_perms() == new.desc.without_perms() {
                MapDecision::PermsOnly
            } else {
                MapDecision::FullBbm
            }
        }
        (Kind::Table, Kind::Block) => size_change(old.block_equiv, new.desc, level, caps),
        (Kind::Block, Kind::Table) => size_change(old.desc, new.block_equiv, level, caps),
        // A different table, or an invalid/reserved new value.
        _ => MapDecision::FullBbm,
    }
}

/// The block-size change between the block `block` and a table whose
/// subtree translates like `equiv`: the break may be skipped only when
/// `equiv` is exactly `block` (ARM ARM, "Support levels for changing
/// block size": FEAT_BBM only covers a change of size, never of output
/// address; we also require identical attributes and permissions).
const fn size_change(
    block: Descriptor,
    equiv: Descriptor,
    level: Level,
    caps: Caps,
) -> MapDecision {
    let equiv_is_block = matches!(equiv.kind(level), Kind::Block);
    if equiv_is_block && equiv.0 == block.0 && caps.may_skip_break() {
        MapDecision::BreakSkippedBbml2
    } else {
        MapDecision::FullBbm
    }
}

/// The TLB invalidation a change of one stage-2 entry needs.
///
/// The discriminants are the C-ABI codes.
#[must_use]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbiPlan {
    /// Nothing: the old entry was not valid, so no TLB can hold it.
    None = 0,
    /// Local (non-shareable) TLBI by IPA, 6.12's
    /// `__kvm_tlb_flush_vmid_ipa_nsh`: permissions only grew. Another CPU
    /// holding the old, more restrictive entry at worst faults once more
    /// and invalidates locally itself.
    LocalIpa = 1,
    /// Broadcast (inner-shareable) TLBI by IPA, `__kvm_tlb_flush_vmid_ipa`:
    /// a restriction, an unmap, an output-address or attribute change of a
    /// leaf. Any CPU may hold the old, more permissive entry.
    BroadcastIpa = 2,
    /// Broadcast invalidation of the whole VMID, `__kvm_tlb_flush_vmid`: a
    /// table entry replaced by anything, or a block replaced by a table.
    /// The span held many translations (or walk-cache entries), and after
    /// a block-size change made without a break the TLB may hold
    /// conflicting entries of both sizes that a TLBI by address is not
    /// guaranteed to remove.
    BroadcastVmid = 3,
}

/// Returns the invalidation needed when `old` is replaced by `new` at
/// `level` (or kept, when `new == old`: a fault on a valid entry means the
/// faulting CPU may hold a stale entry, so that is [`TlbiPlan::LocalIpa`]).
///
/// With a full break-before-make the invalidation is done in the break,
/// before the new entry is made; when the break is skipped it is done
/// after the `cmpxchg`.
pub const fn tlbi_plan(old: Descriptor, new: Descriptor, level: Level) -> TlbiPlan {
    let old_kind = old.kind(level);
    let new_kind = new.kind(level);
    if !old_kind.is_valid() {
        return TlbiPlan::None;
    }
    if matches!(old_kind, Kind::Table) || matches!(new_kind, Kind::Table) {
        return TlbiPlan::BroadcastVmid;
    }
    // The old entry is a block or a page.
    if !new_kind.is_leaf() {
        return TlbiPlan::BroadcastIpa;
    }
    if old.without_perms() == new.without_perms() && new.perms().contains(old.perms()) {
        TlbiPlan::LocalIpa
    } else {
        TlbiPlan::BroadcastIpa
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 6.12 values, from arch/arm64/include/asm/kvm_pgtable.h and
    // arch/arm64/kvm/hyp/pgtable.c, written out as numbers on purpose.
    #[test]
    fn bit_values_match_6_12() {
        assert_eq!(bits::VALID, 0x1);
        assert_eq!(bits::TYPE, 0x2);
        assert_eq!(bits::MEMATTR, 0x3c); // GENMASK(5, 2)
        assert_eq!(bits::S2AP_R, 0x40); // BIT(6)
        assert_eq!(bits::S2AP_W, 0x80); // BIT(7)
        assert_eq!(bits::SH, 0x300); // GENMASK(9, 8)
        assert_eq!(bits::AF, 0x400); // BIT(10)
        assert_eq!(bits::OA, 0x0000_ffff_ffff_f000); // GENMASK(47, 12)
        assert_eq!(bits::XN, 0x0040_0000_0000_0000); // BIT(54)
        assert_eq!(bits::SW, 0x0780_0000_0000_0000); // GENMASK(58, 55)
        assert_eq!(bits::PERMS, 0x0040_0000_0000_00c0);
        assert_eq!(bits::KVM_LOCKED, 0x400); // BIT(10)
        assert_eq!(bits::KVM_OWNER, 0x3fc); // GENMASK(9, 2)
    }

    #[test]
    fn known_page_encoding() {
        // Normal memory with FWB (MT_S2_FWB_NORMAL = 6), inner shareable
        // (3), read/write, not executable, PA 0x8000_0000, level 3.
        let d = Descriptor::leaf(Level::L3, 0x8000_0000, 6, 3, Perms::new(true, true, false));
        assert_eq!(d.raw(), 0x0040_0000_8000_07db);
        assert_eq!(d.kind(Level::L3), Kind::Page);
        assert_eq!(d.output_address(), 0x8000_0000);
        assert_eq!(d.mem_attr(), 6);
        assert_eq!(d.sh(), 3);
        assert!(d.af());
        assert!(d.xn());
        assert_eq!(d.perms(), Perms::new(true, true, false));

        // The same at level 2 is a 2 MiB block (bit 1 clear).
        let b = Descriptor::leaf(Level::L2, 0x8000_0000, 6, 3, Perms::new(true, true, false));
        assert_eq!(b.raw(), 0x0040_0000_8000_07d9);
        assert_eq!(b.kind(Level::L2), Kind::Block);
        // Without FWB, MT_S2_NORMAL = 0xf; read/execute.
        let rx = Descriptor::leaf(
            Level::L3,
            0x1234_5000,
            0xf,
            3,
            Perms::new(true, false, true),
        );
        assert_eq!(rx.raw(), 0x0000_0000_1234_577f);
        assert_eq!(rx.perms(), Perms::new(true, false, true));
    }

    fn split(block: Descriptor, level: Level) -> [u64; ENTRIES_PER_TABLE] {
        let child = Level::new(level.get() + 1).unwrap();
        let page_type = if child.get() == 3 { bits::TYPE } else { 0 };
        core::array::from_fn(|i| {
            (block.raw() & !bits::OA)
                | page_type
                | (block.output_address() + i as u64 * child.span())
        })
    }

    #[test]
    fn split_block_equiv_recognises_uniform_splits() {
        let rw = Perms::new(true, true, false);
        let caps = Caps {
            bbm_level: 2,
            is_final: true,
            enabled: true,
        };
        for (level, oa) in [(Level::L2, 0x8020_0000u64), (Level::L1, 0x4000_0000)] {
            let block = Descriptor::leaf(level, oa, 6, 3, rw);
            let table = split(block, level);
            assert_eq!(split_block_equiv(&table, level), block);
            // What eager splitting then asks: the break may be skipped.
            let t = Descriptor::table(0x9000_0000);
            assert_eq!(
                map_decide(
                    Entry::new(block),
                    Entry::uniform_table(t, split_block_equiv(&table, level)),
                    level,
                    caps
                ),
                MapDecision::BreakSkippedBbml2
            );
            // Any one entry off makes it "not known".
            for i in [0, 1, 255, 511] {
                for bad in [
                    table[i] ^ bits::S2AP_W,
                    table[i] ^ bits::AF,
                    table[i] ^ bits::XN,
                    table[i] ^ (1 << 55),
                    table[i] ^ 0x4, // MemAttr
                    table[i] + level.span(),
                    0,
                    bits::KVM_LOCKED,
                    Descriptor::table(0x7000_0000).raw(),
                ] {
                    let mut t2 = table;
                    t2[i] = bad;
                    assert_eq!(
                        split_block_equiv(&t2, level),
                        Descriptor::INVALID,
                        "{i} {bad:#x}"
                    );
                }
            }
            // Two entries swapped: every OA present, but out of order.
            let mut t3 = table;
            t3.swap(3, 4);
            assert_eq!(split_block_equiv(&t3, level), Descriptor::INVALID);
            // A table of the wrong length.
            assert_eq!(split_block_equiv(&table[..511], level), Descriptor::INVALID);
        }
        // A base that is not aligned to the parent block.
        let page = Descriptor::leaf(Level::L3, 0x8020_1000, 6, 3, rw);
        let shifted: [u64; ENTRIES_PER_TABLE] =
            core::array::from_fn(|i| page.raw() + i as u64 * Level::L3.span());
        assert_eq!(split_block_equiv(&shifted, Level::L2), Descriptor::INVALID);
        // No blocks at level 0 (4K granule) and no level below 3.
        let l3 = split(
            Descriptor::leaf(Level::L2, 0x8020_0000, 6, 3, rw),
            Level::L2,
        );
        assert_eq!(split_block_equiv(&l3, Level::L0), Descriptor::INVALID);
        assert_eq!(split_block_equiv(&l3, Level::L3), Descriptor::INVALID);
        // A 1 GiB block split down to a level of tables: not a leaf split.
        let tables: [u64; ENTRIES_PER_TABLE] =
            core::array::from_fn(|i| Descriptor::table(0x1000_0000 + i as u64 * 0x1000).raw());
        assert_eq!(split_block_equiv(&tables, Level::L1), Descriptor::INVALID);
    }

    #[test]
    fn kinds_by_level() {
        let t = Descriptor::table(0x4000_0000);
        assert_eq!(t.raw(), 0x4000_0003);
        assert_eq!(t.kind(Level::L0), Kind::Table);
        assert_eq!(t.kind(Level::L1), Kind::Table);
        assert_eq!(t.kind(Level::L2), Kind::Table);
        assert_eq!(t.kind(Level::L3), Kind::Page);
        let b = Descriptor::from_raw(0x4000_0401);
        assert_eq!(b.kind(Level::L0), Kind::Reserved);
        assert_eq!(b.kind(Level::L1), Kind::Block);
        assert_eq!(b.kind(Level::L3), Kind::Reserved);
        assert_eq!(Descriptor::LOCKED.kind(Level::L2), Kind::Locked);
        assert!(Descriptor::LOCKED.is_locked());
        assert_eq!(Descriptor::INVALID.kind(Level::L2), Kind::Invalid);
        // An owner annotation (owner id 1 in bits 9:2) is invalid, not locked.
        assert_eq!(Descriptor::from_raw(1 << 2).kind(Level::L3), Kind::Invalid);
        assert_eq!(Level::new(4), None);
        assert_eq!(Level::L1.span(), 1 << 30);
        assert_eq!(Level::L3.span(), 4096);
    }

    #[test]
    fn rx_vs_rw_is_not_an_order() {
        let rx = Perms::new(true, false, true);
        let rw = Perms::new(true, true, false);
        assert!(!rx.contains(rw));
        assert!(!rw.contains(rx));
        // Encoded as 6.12 does, RW (0xc0, XN set) is numerically above RX
        // (0x40, XN clear) in the low byte, and RX is above RW once XN is
        // flipped: a numeric comparison says nothing about the sets.
        let old = Descriptor::leaf(Level::L3, 0x1000, 6, 3, rw);
        match relax(old, Level::L3, rx) {
            Relax::Relaxed { new, icache_inval } => {
                assert_eq!(new.perms(), Perms::RWX);
                assert!(icache_inval);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn caps_from_mmfr2() {
        let c = Caps::from_mmfr2(2 << 52, true, true);
        assert_eq!(c.bbm_level, 2);
        assert!(c.may_skip_break());
        assert!(!Caps::from_mmfr2(2 << 52, false, true).may_skip_break());
        assert!(!Caps::from_mmfr2(2 << 52, true, false).may_skip_break());
        assert!(!Caps::from_mmfr2(1 << 52, true, true).may_skip_break());
    }

    #[test]
    fn relax_c_form() {
        let old = Descriptor::leaf(Level::L3, 0x1000, 6, 3, Perms::new(true, false, false));
        let r = relax(old, Level::L3, Perms::new(false, true, false)).to_c(old);
        assert_eq!(r.code, RelaxCode::Relaxed);
        assert!(!r.icache_inval);
        assert_eq!(r.new, old.raw() | bits::S2AP_W);
        let r = relax(Descriptor::LOCKED, Level::L3, Perms::RWX).to_c(Descriptor::LOCKED);
        assert_eq!(r.code, RelaxCode::NotValid);
        assert_eq!(r.new, bits::KVM_LOCKED);
    }
}
