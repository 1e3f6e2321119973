//! Stage-1 translation table descriptors: 4 KiB granule, 48-bit VA and PA (ARM ARM D8.3).
//!
//! ```text
//!  VA bit   47      39 38      30 29      21 20      12 11         0
//!          +----------+----------+----------+----------+------------+
//!          | L0 index | L1 index | L2 index | L3 index | page offset|
//!          +----------+----------+----------+----------+------------+
//!  a leaf at level 1 maps 1 GiB (block), at level 2 2 MiB (block), at level 3 4 KiB (page)
//! ```
//!
//! The layouts are declared once with `tock-registers`; [`Descriptor`] builds and reads them
//! through [`LocalRegisterCopy`]. Memory types are indices into `MAIR_EL1`, whose value is
//! [`MAIR_EL1_VALUE`].

use tock_registers::LocalRegisterCopy;
use tock_registers::register_bitfields;

/// Size of a translation granule and of a level 3 page.
pub const PAGE_SIZE: u64 = 4096;
/// Descriptors in one 4 KiB translation table (8 bytes each).
pub const ENTRIES_PER_TABLE: usize = 512;

register_bitfields! {u64,
    /// Table descriptor, levels 0 to 2 (ARM ARM D8.3, "Table descriptor format").
    pub STAGE1_TABLE_DESCRIPTOR [
        /// NSTable: for Secure state only; the next level is Non-secure. RES0 here.
        NSTable OFFSET(63) NUMBITS(1) [],
        /// APTable: limits on the access permissions of the next levels (hierarchical
        /// permissions, D8.4). We leave it 0 and give every permission in the leaves.
        APTable OFFSET(61) NUMBITS(2) [
            NoEffect = 0b00,
            NoEL0Access = 0b01,
            NoWrite = 0b10,
            NoWriteNoEL0Read = 0b11
        ],
        /// UXNTable: the next levels are never executable at EL0.
        UXNTable OFFSET(60) NUMBITS(1) [],
        /// PXNTable: the next levels are never executable at EL1.
        PXNTable OFFSET(59) NUMBITS(1) [],
        /// Bits [47:12] of the physical address of the next-level table.
        NEXT_LEVEL_TABLE_ADDR OFFSET(12) NUMBITS(36) [],
        /// Descriptor type: 1 means table at levels 0 to 2 (0 would be a block).
        TYPE OFFSET(1) NUMBITS(1) [
            Block = 0,
            Table = 1
        ],
        /// Valid bit: an invalid descriptor faults on any access (translation fault).
        VALID OFFSET(0) NUMBITS(1) [
            False = 0,
            True = 1
        ]
    ],

    /// Block (levels 1 and 2) and page (level 3) descriptors (ARM ARM D8.3, "Block
    /// descriptor and Page descriptor formats"; permissions in D8.4, attributes in D8.5).
    pub STAGE1_LEAF_DESCRIPTOR [
        /// UXN: never executable at EL0 (called XN in regimes with one EL).
        UXN OFFSET(54) NUMBITS(1) [],
        /// PXN: never executable at EL1.
        PXN OFFSET(53) NUMBITS(1) [],
        /// Output address bits [47:12]. For a level 1 block only [47:30] are used and for a
        /// level 2 block only [47:21]; the bits below are RES0 and kept zero.
        OUTPUT_ADDR OFFSET(12) NUMBITS(36) [],
        /// nG: not global. The TLB entry is tagged with the current ASID (user mappings).
        nG OFFSET(11) NUMBITS(1) [],
        /// AF: access flag. Set up front, so no access flag fault is ever taken.
        AF OFFSET(10) NUMBITS(1) [],
        /// SH: shareability of Normal memory (ignored for Device memory, which is always
        /// Outer Shareable).
        SH OFFSET(8) NUMBITS(2) [
            NonShareable = 0b00,
            OuterShareable = 0b10,
            InnerShareable = 0b11
        ],
        /// AP[2:1]: AP[2] (bit 7) makes the page read-only, AP[1] (bit 6) grants EL0 the same
        /// data access as EL1 (D8.4, "Data access permissions for stage 1").
        AP OFFSET(6) NUMBITS(2) [
            RW_EL1 = 0b00,
            RW_EL1_EL0 = 0b01,
            RO_EL1 = 0b10,
            RO_EL1_EL0 = 0b11
        ],
        /// NS: for Secure state only; the output address is Non-secure. RES0 here.
        NS OFFSET(5) NUMBITS(1) [],
        /// AttrIndx: index of the memory attributes in MAIR_EL1 (see [`MemoryType`]).
        AttrIndx OFFSET(2) NUMBITS(3) [],
        /// Descriptor type: at levels 1 and 2, 0 is a block; at level 3, 1 is a page (0 is
        /// reserved and behaves as invalid).
        TYPE OFFSET(1) NUMBITS(1) [
            Block = 0,
            Page = 1
        ],
        /// Valid bit.
        VALID OFFSET(0) NUMBITS(1) [
            False = 0,
            True = 1
        ]
    ]
}

type TableReg = LocalRegisterCopy<u64, STAGE1_TABLE_DESCRIPTOR::Register>;
type LeafReg = LocalRegisterCopy<u64, STAGE1_LEAF_DESCRIPTOR::Register>;

/// Bits [47:12]: where a table or page address sits in a descriptor.
const ADDR_MASK_4K: u64 = 0x0000_ffff_ffff_f000;

/// Memory types, each an index into `MAIR_EL1` (the descriptor's AttrIndx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MemoryType {
    /// Device-nGnRE: MMIO. No gathering, no reordering, early write acknowledgement.
    Device = 0,
    /// Normal memory, inner and outer Write-Back, Read-Allocate, Write-Allocate,
    /// non-transient; mapped Inner Shareable.
    Normal = 1,
    /// Normal memory, inner and outer Non-cacheable (buffers shared with non-coherent DMA).
    NormalNonCacheable = 2,
}

impl MemoryType {
    /// The memory type at a MAIR index, if it is one of ours.
    pub const fn from_attr_index(index: u64) -> Option<Self> {
        match index {
            0 => Some(Self::Device),
            1 => Some(Self::Normal),
            2 => Some(Self::NormalNonCacheable),
            _ => None,
        }
    }
}

/// MAIR_EL1.Attr<n> encodings (ARM ARM D17.2, MAIR_EL1).
mod mair {
    /// 0b0000_dd00 with dd = 0b01: Device-nGnRE.
    pub const DEVICE_NGNRE: u64 = 0x04;
    /// Outer 0b1111 (Write-Back non-transient, RA, WA), inner 0b1111 (the same).
    pub const NORMAL_WB_RA_WA: u64 = 0xff;
    /// Outer 0b0100 (Non-cacheable), inner 0b0100 (Non-cacheable).
    pub const NORMAL_NON_CACHEABLE: u64 = 0x44;
}

/// MAIR_EL1 value whose attribute index `i` matches [`MemoryType`] `i`; indices 3 to 7 are
/// unused (0, Device-nGnRnE).
pub const MAIR_EL1_VALUE: u64 = (mair::DEVICE_NGNRE << (8 * MemoryType::Device as u64))
    | (mair::NORMAL_WB_RA_WA << (8 * MemoryType::Normal as u64))
    | (mair::NORMAL_NON_CACHEABLE << (8 * MemoryType::NormalNonCacheable as u64));

/// What a leaf mapping allows: the memory type, who may access it, and who may execute it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapAttrs {
    /// Memory type (AttrIndx).
    pub memory: MemoryType,
    /// Accessible from EL0 (AP[1]).
    pub user: bool,
    /// Writable (AP[2] clear); applies to EL1 and, if `user`, to EL0.
    pub writable: bool,
    /// Executable at EL0 (UXN clear).
    pub user_exec: bool,
    /// Executable at EL1 (PXN clear).
    pub kernel_exec: bool,
    /// Global: valid in every address space (nG clear). User mappings are per-ASID.
    pub global: bool,
}

impl MapAttrs {
    /// Kernel data: read-write, never executable.
    pub const KERNEL_RW: Self = Self {
        memory: MemoryType::Normal,
        user: false,
        writable: true,
        user_exec: false,
        kernel_exec: false,
        global: true,
    };
    /// Kernel text: read-only, executable at EL1 only.
    pub const KERNEL_RX: Self = Self {
        memory: MemoryType::Normal,
        user: false,
        writable: false,
        user_exec: false,
        kernel_exec: true,
        global: true,
    };
    /// Kernel MMIO: Device-nGnRE, read-write, never executable.
    pub const KERNEL_DEVICE: Self = Self {
        memory: MemoryType::Device,
        user: false,
        writable: true,
        user_exec: false,
        kernel_exec: false,
        global: true,
    };
    /// User data: read-write from EL0, never executable, per-ASID.
    pub const USER_RW: Self = Self {
        memory: MemoryType::Normal,
        user: true,
        writable: true,
        user_exec: false,
        kernel_exec: false,
        global: false,
    };
    /// User text: read-only, executable at EL0 only, per-ASID.
    pub const USER_RX: Self = Self {
        memory: MemoryType::Normal,
        user: true,
        writable: false,
        user_exec: true,
        kernel_exec: false,
        global: false,
    };
    /// User read-only data: never executable, per-ASID.
    pub const USER_RO: Self = Self {
        memory: MemoryType::Normal,
        user: true,
        writable: false,
        user_exec: false,
        kernel_exec: false,
        global: false,
    };
}

/// One 64-bit stage-1 translation table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Descriptor(u64);

impl Descriptor {
    /// All zeroes: VALID clear, so any access through it takes a translation fault.
    pub const INVALID: Self = Self(0);

    /// Wraps a raw descriptor read from a table.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value to store in a table.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A table descriptor (levels 0 to 2) pointing at the 4 KiB-aligned table at
    /// `next_table_pa`. The hierarchical controls (APTable, UXNTable, PXNTable, NSTable) are
    /// left 0, so the leaves alone decide permissions.
    pub fn table(next_table_pa: u64) -> Self {
        debug_assert!(
            next_table_pa & !ADDR_MASK_4K == 0,
            "table address {next_table_pa:#x} is not a 4 KiB-aligned 48-bit address"
        );
        let mut reg = TableReg::new(0);
        reg.write(
            STAGE1_TABLE_DESCRIPTOR::VALID::True
                + STAGE1_TABLE_DESCRIPTOR::TYPE::Table
                + STAGE1_TABLE_DESCRIPTOR::NEXT_LEVEL_TABLE_ADDR
                    .val((next_table_pa & ADDR_MASK_4K) >> 12),
        );
        Self(reg.get())
    }

    /// A leaf: a block at level 1 (1 GiB) or 2 (2 MiB), a page at level 3 (4 KiB).
    ///
    /// `pa` must be aligned to [`level_size`]`(level)` (checked in debug builds; the low bits
    /// are masked off). AF is set; Normal memory is Inner Shareable. Device memory is always
    /// mapped execute-never at both ELs whatever `attrs` says: without XN the PE may fetch
    /// instructions from it speculatively (ARM ARM B2, "Device memory"). Level 0 cannot hold a
    /// leaf with a 4 KiB granule; it yields [`Descriptor::INVALID`] (and fails the debug
    /// assertion).
    pub fn leaf(level: u8, pa: u64, attrs: MapAttrs) -> Self {
        use STAGE1_LEAF_DESCRIPTOR as L;
        debug_assert!(
            (1..=3).contains(&level),
            "no leaf descriptor at level {level}"
        );
        if !(1..=3).contains(&level) {
            return Self::INVALID;
        }
        let size = level_size(level);
        debug_assert!(
            pa.is_multiple_of(size),
            "{pa:#x} is not aligned to {size:#x}"
        );
        let oa = pa & ADDR_MASK_4K & !(size - 1);

        let device = attrs.memory == MemoryType::Device;
        let mut reg = LeafReg::new(0);
        reg.write(
            L::VALID::True
                + if level == 3 {
                    L::TYPE::Page
                } else {
                    L::TYPE::Block
                }
                + L::OUTPUT_ADDR.val(oa >> 12)
                + L::AttrIndx.val(attrs.memory as u64)
                + match (attrs.user, attrs.writable) {
                    (false, true) => L::AP::RW_EL1,
                    (true, true) => L::AP::RW_EL1_EL0,
                    (false, false) => L::AP::RO_EL1,
                    (true, false) => L::AP::RO_EL1_EL0,
                }
                + if device {
                    L::SH::NonShareable
                } else {
                    L::SH::InnerShareable
                }
                + L::AF::SET
                + if attrs.global {
                    L::nG::CLEAR
                } else {
                    L::nG::SET
                }
                + if attrs.kernel_exec && !device {
                    L::PXN::CLEAR
                } else {
                    L::PXN::SET
                }
                + if attrs.user_exec && !device {
                    L::UXN::CLEAR
                } else {
                    L::UXN::SET
                },
        );
        Self(reg.get())
    }

    /// VALID is set.
    pub fn is_valid(self) -> bool {
        TableReg::new(self.0).is_set(STAGE1_TABLE_DESCRIPTOR::VALID)
    }

    /// A valid table descriptor, as read at `level` (tables exist at levels 0 to 2 only).
    pub fn is_table(self, level: u8) -> bool {
        level <= 2
            && TableReg::new(self.0).matches_all(
                STAGE1_TABLE_DESCRIPTOR::VALID::True + STAGE1_TABLE_DESCRIPTOR::TYPE::Table,
            )
    }

    /// A valid block (levels 1 and 2) or page (level 3) descriptor, as read at `level`.
    pub fn is_leaf(self, level: u8) -> bool {
        use STAGE1_LEAF_DESCRIPTOR as L;
        let reg = LeafReg::new(self.0);
        match level {
            1 | 2 => reg.matches_all(L::VALID::True + L::TYPE::Block),
            3 => reg.matches_all(L::VALID::True + L::TYPE::Page),
            _ => false,
        }
    }

    /// The next-level table's address for a table, the output address for a leaf, and 0 for
    /// anything else at this level.
    pub fn output_address(self, level: u8) -> u64 {
        if self.is_table(level) {
            TableReg::new(self.0).read(STAGE1_TABLE_DESCRIPTOR::NEXT_LEVEL_TABLE_ADDR) << 12
        } else if self.is_leaf(level) {
            let oa = LeafReg::new(self.0).read(STAGE1_LEAF_DESCRIPTOR::OUTPUT_ADDR) << 12;
            oa & !(level_size(level) - 1)
        } else {
            0
        }
    }

    /// The attributes of a leaf. `None` for an invalid or table descriptor, and for a leaf
    /// whose AttrIndx is not a [`MemoryType`].
    ///
    /// No level is needed: a valid descriptor with TYPE clear is a block; with TYPE set it is
    /// a page if AF is set (every leaf we build has AF) and otherwise taken for a table.
    pub fn attrs(self) -> Option<MapAttrs> {
        use STAGE1_LEAF_DESCRIPTOR as L;
        let reg = LeafReg::new(self.0);
        if !reg.is_set(L::VALID) {
            return None;
        }
        // TYPE set means table at levels 0-2 but page at level 3. Bit 10 is ignored in table
        // descriptors and we keep it 0, while every leaf we build has AF = 1.
        if reg.read(L::TYPE) == 1 && !reg.is_set(L::AF) {
            return None;
        }
        let ap = reg.read(L::AP);
        Some(MapAttrs {
            memory: MemoryType::from_attr_index(reg.read(L::AttrIndx))?,
            user: ap & 0b01 != 0,
            writable: ap & 0b10 == 0,
            user_exec: !reg.is_set(L::UXN),
            kernel_exec: !reg.is_set(L::PXN),
            global: !reg.is_set(L::nG),
        })
    }
}

/// Bytes mapped by one entry at `level`: 512 GiB, 1 GiB, 2 MiB, 4 KiB for levels 0 to 3, and
/// 0 for any other level.
pub const fn level_size(level: u8) -> u64 {
    match level {
        0..=3 => 1 << (12 + 9 * (3 - level as u32)),
        _ => 0,
    }
}

/// Index of `va` in a table at `level`: VA bits [47:39], [38:30], [29:21] or [20:12] for
/// levels 0 to 3 (D8.2, "Translation table walk"); 0 for any other level.
pub const fn table_index(va: u64, level: u8) -> usize {
    match level {
        0..=3 => ((va >> (12 + 9 * (3 - level as u32))) & 0x1ff) as usize,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRESETS: [MapAttrs; 6] = [
        MapAttrs::KERNEL_RW,
        MapAttrs::KERNEL_RX,
        MapAttrs::KERNEL_DEVICE,
        MapAttrs::USER_RW,
        MapAttrs::USER_RX,
        MapAttrs::USER_RO,
    ];

    #[test]
    fn mair_matches_memory_types() {
        assert_eq!(MAIR_EL1_VALUE, 0x0000_0000_0044_ff04);
        for (index, ty) in [
            MemoryType::Device,
            MemoryType::Normal,
            MemoryType::NormalNonCacheable,
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(ty as usize, index);
            assert_eq!(MemoryType::from_attr_index(index as u64), Some(ty));
        }
        assert_eq!(MemoryType::from_attr_index(3), None);
    }

    #[test]
    fn level_sizes_and_indices() {
        assert_eq!(level_size(0), 512 << 30);
        assert_eq!(level_size(1), 1 << 30);
        assert_eq!(level_size(2), 2 << 20);
        assert_eq!(level_size(3), 4096);
        assert_eq!(level_size(4), 0);

        // Each index field set to a distinct value, plus a page offset that must be ignored.
        let va = (0x1a5 << 39) | (0x0c3 << 30) | (0x17e << 21) | (0x001 << 12) | 0xabc;
        assert_eq!(table_index(va, 0), 0x1a5);
        assert_eq!(table_index(va, 1), 0x0c3);
        assert_eq!(table_index(va, 2), 0x17e);
        assert_eq!(table_index(va, 3), 0x001);
        assert_eq!(table_index(va, 4), 0);
        // Bits above 47 (TTBR1 addresses) do not leak into the level 0 index.
        assert_eq!(table_index(0xffff_0000_0000_0000 | va, 0), 0x1a5);
        assert_eq!(table_index(0x4000_0000, 1), 1);
        assert_eq!(table_index(0x4020_0000, 2), 1);
        assert_eq!(table_index(u64::MAX, 3), 511);
    }

    #[test]
    fn kernel_rw_block_exact_encoding() {
        // VALID (1) | block (TYPE 0) | AttrIndx 1 (1 << 2) | AP 0b00 | SH 0b11 (3 << 8)
        // | AF (1 << 10) | nG 0 = 0x705; OA 0x4000_0000; PXN (1 << 53) | UXN (1 << 54).
        let d = Descriptor::leaf(2, 0x4000_0000, MapAttrs::KERNEL_RW);
        assert_eq!(d.raw(), 0x0060_0000_4000_0705);
        // The same bits make a 1 GiB block at level 1.
        assert_eq!(
            Descriptor::leaf(1, 0x4000_0000, MapAttrs::KERNEL_RW).raw(),
            0x0060_0000_4000_0705
        );
    }

    #[test]
    fn exact_encodings_of_each_preset() {
        // Page: VALID | TYPE 1 = 0b11.
        // KERNEL_RX: AttrIndx 1 (0x4), AP 0b10 (0x80), SH 0x300, AF 0x400 -> 0x787; UXN only.
        assert_eq!(
            Descriptor::leaf(3, 0x4008_0000, MapAttrs::KERNEL_RX).raw(),
            0x0040_0000_4008_0787
        );
        // KERNEL_DEVICE 2 MiB block: AttrIndx 0, AP 0b00, SH 0 (ignored for Device), AF
        // -> 0x401; PXN | UXN.
        assert_eq!(
            Descriptor::leaf(2, 0x0800_0000, MapAttrs::KERNEL_DEVICE).raw(),
            0x0060_0000_0800_0401
        );
        // USER_RW: AttrIndx 1 (0x4), AP 0b01 (0x40), SH 0x300, AF 0x400, nG 0x800 -> 0xf47;
        // PXN | UXN.
        assert_eq!(
            Descriptor::leaf(3, 0x4123_4000, MapAttrs::USER_RW).raw(),
            0x0060_0000_4123_4f47
        );
        // USER_RX: AP 0b11 (0xc0) -> 0xfc7; PXN only.
        assert_eq!(
            Descriptor::leaf(3, 0x4123_4000, MapAttrs::USER_RX).raw(),
            0x0020_0000_4123_4fc7
        );
        // USER_RO: AP 0b11 -> 0xfc7; PXN | UXN.
        assert_eq!(
            Descriptor::leaf(3, 0x4123_4000, MapAttrs::USER_RO).raw(),
            0x0060_0000_4123_4fc7
        );
        // Non-cacheable user buffer: AttrIndx 2 (0x8) instead of 1 -> 0xf4b.
        let nc = MapAttrs {
            memory: MemoryType::NormalNonCacheable,
            ..MapAttrs::USER_RW
        };
        assert_eq!(
            Descriptor::leaf(3, 0x4123_4000, nc).raw(),
            0x0060_0000_4123_4f4b
        );
    }

    #[test]
    fn device_memory_is_always_execute_never() {
        let exec_device = MapAttrs {
            memory: MemoryType::Device,
            kernel_exec: true,
            user_exec: true,
            ..MapAttrs::KERNEL_RX
        };
        let attrs = Descriptor::leaf(3, 0x0900_0000, exec_device)
            .attrs()
            .unwrap();
        assert!(!attrs.kernel_exec && !attrs.user_exec);
    }

    #[test]
    fn leaf_round_trips_for_every_preset_and_level() {
        for attrs in PRESETS {
            for level in 1..=3u8 {
                let pa = 0x0000_8000_0000_0000 + 5 * level_size(level);
                let d = Descriptor::leaf(level, pa, attrs);
                assert!(d.is_valid());
                assert!(d.is_leaf(level), "{attrs:?} level {level}");
                assert!(!d.is_table(level));
                assert_eq!(d.output_address(level), pa);
                assert_eq!(d.attrs(), Some(attrs), "level {level}");
                assert_eq!(Descriptor::from_raw(d.raw()), d);
            }
        }
    }

    #[test]
    fn leaf_kinds_depend_on_level() {
        let block = Descriptor::leaf(2, 0x4000_0000, MapAttrs::KERNEL_RW);
        let page = Descriptor::leaf(3, 0x4000_0000, MapAttrs::KERNEL_RW);
        // A block pattern at level 3 is reserved; a page pattern at level 0-2 is a table.
        assert!(!block.is_leaf(3) && !block.is_table(3));
        assert!(
            !block.is_leaf(0),
            "no blocks at level 0 with a 4 KiB granule"
        );
        assert!(page.is_table(2) && !page.is_leaf(2));
        assert!(!page.is_table(3));
    }

    #[test]
    fn table_descriptors() {
        let t = Descriptor::table(0x4010_0000);
        assert_eq!(t.raw(), 0x0000_0000_4010_0003);
        for level in 0..=2 {
            assert!(t.is_table(level));
            assert!(!t.is_leaf(level));
            assert_eq!(t.output_address(level), 0x4010_0000);
        }
        assert_eq!(t.attrs(), None);
        assert_eq!(
            Descriptor::table(0x0000_ffff_ffff_f000).raw(),
            0x0000_ffff_ffff_f003
        );
    }

    #[test]
    fn invalid_descriptors() {
        let d = Descriptor::INVALID;
        assert!(!d.is_valid());
        for level in 0..=3 {
            assert!(!d.is_table(level) && !d.is_leaf(level));
            assert_eq!(d.output_address(level), 0);
        }
        assert_eq!(d.attrs(), None);
        // A leaf with every bit set except VALID is still invalid.
        let not_valid =
            Descriptor::from_raw(Descriptor::leaf(3, 0x1000, MapAttrs::USER_RW).raw() & !1);
        assert!(!not_valid.is_valid() && !not_valid.is_leaf(3));
        assert_eq!(not_valid.attrs(), None);
        // AttrIndx 5 is not one of ours.
        let odd =
            Descriptor::from_raw(Descriptor::leaf(3, 0x1000, MapAttrs::USER_RW).raw() | (5 << 2));
        assert_eq!(odd.attrs(), None);
    }

    #[test]
    fn output_address_ignores_attribute_bits() {
        // Software bits, Contiguous, DBM and RES0 bits below the block size do not leak in.
        let raw = Descriptor::leaf(2, 0x4020_0000, MapAttrs::KERNEL_RW).raw()
            | (0xf << 55)
            | (1 << 52)
            | (1 << 51)
            | (0x1ff << 12);
        assert_eq!(Descriptor::from_raw(raw).output_address(2), 0x4020_0000);
        assert_eq!(Descriptor::from_raw(raw).output_address(3), 0);
    }
}
