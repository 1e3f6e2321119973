//! Validating a user program image: a static little-endian AArch64 ELF64 executable whose
//! loadable segments fit, without overlapping, in the user half of the address space.
//!
//! Headers are read with the `elf` crate (`ElfBytes::minimal_parse`); everything the kernel
//! relies on when it maps and copies the segments is checked here, so the loader can do
//! plain arithmetic afterwards.

use core::fmt;

use elf::ElfBytes;
use elf::abi;
use elf::endian::AnyEndian;
use elf::parse::ParseError;
use heapless::Vec;

/// One past the highest user virtual address: TTBR0_EL1 covers 48 bits (T0SZ = 16).
pub const USER_VA_END: u64 = 1 << 48;
/// Granule that segments are mapped with; also the size of the never-mapped page at 0.
const PAGE_SIZE: u64 = 4096;
/// Most loadable segments an image may have.
pub const MAX_SEGMENTS: usize = 8;

/// A `PT_LOAD` segment: `file_size` bytes from `file_offset`, zero-filled up to `mem_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First virtual address (need not be page aligned).
    pub vaddr: u64,
    /// Bytes in memory, at least `file_size`.
    pub mem_size: u64,
    /// Where the initialised bytes start in the file.
    pub file_offset: u64,
    /// Initialised bytes; the rest of `mem_size` is zero.
    pub file_size: u64,
    /// `PF_R`.
    pub readable: bool,
    /// `PF_W`.
    pub writable: bool,
    /// `PF_X`.
    pub executable: bool,
}

impl Segment {
    /// One past the last byte in memory (checked not to wrap by [`parse_user_image`]).
    pub const fn vaddr_end(&self) -> u64 {
        self.vaddr.saturating_add(self.mem_size)
    }

    /// The page-aligned virtual range the segment occupies, as `(start, end)`.
    pub const fn page_range(&self) -> (u64, u64) {
        (
            self.vaddr & !(PAGE_SIZE - 1),
            self.vaddr_end().div_ceil(PAGE_SIZE) * PAGE_SIZE,
        )
    }
}

/// A validated user program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserImage {
    /// Entry point, inside an executable segment.
    pub entry: u64,
    /// The non-empty `PT_LOAD` segments, in program header order.
    pub segments: Vec<Segment, MAX_SEGMENTS>,
}

/// Why an image cannot be run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// No `\x7fELF` magic.
    NotElf,
    /// `EI_CLASS` is not `ELFCLASS64`.
    Not64Bit(u8),
    /// `EI_DATA` is not `ELFDATA2LSB`.
    NotLittleEndian(u8),
    /// `e_machine` is not `EM_AARCH64` (183).
    NotAArch64(u16),
    /// `e_type` is not `ET_EXEC` (a shared object or PIE, a relocatable, a core file).
    NotExecutable(u16),
    /// The `elf` crate rejected the headers (truncated file, bad table offsets or sizes).
    Malformed(&'static str),
    /// No `PT_LOAD` segment with a non-zero size.
    NoLoadSegments,
    /// More than [`MAX_SEGMENTS`] `PT_LOAD` segments.
    TooManySegments,
    /// Segment `n` (program header index) has `p_offset + p_filesz` past the end of the file.
    FileRangeOutsideFile(usize),
    /// Segment `n` has `p_filesz > p_memsz`.
    FileSizeExceedsMemSize(usize),
    /// Segment `n` has `p_vaddr` and `p_offset` not congruent modulo 4096, so it cannot be
    /// mapped from page-aligned file data.
    Misaligned(usize),
    /// Segment `n` wraps around or ends above [`USER_VA_END`].
    OutsideUserSpace(usize),
    /// Segment `n` starts in the page at address 0, which stays unmapped to catch null
    /// pointers.
    InZeroPage(usize),
    /// Segments `a` and `b` share a page.
    Overlap(usize, usize),
    /// The entry point is not inside an executable segment.
    BadEntry(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotElf => f.write_str("not an ELF file"),
            Self::Not64Bit(class) => write!(f, "not a 64-bit ELF (EI_CLASS {class})"),
            Self::NotLittleEndian(data) => write!(f, "not a little-endian ELF (EI_DATA {data})"),
            Self::NotAArch64(machine) => write!(f, "not an AArch64 ELF (e_machine {machine})"),
            Self::NotExecutable(ty) => {
                write!(f, "not a static executable (e_type {ty}, expected ET_EXEC)")
            }
            Self::Malformed(why) => write!(f, "malformed ELF: {why}"),
            Self::NoLoadSegments => f.write_str("no PT_LOAD segment"),
            Self::TooManySegments => write!(f, "more than {MAX_SEGMENTS} PT_LOAD segments"),
            Self::FileRangeOutsideFile(n) => {
                write!(f, "segment {n}: file range lies outside the file")
            }
            Self::FileSizeExceedsMemSize(n) => write!(f, "segment {n}: p_filesz > p_memsz"),
            Self::Misaligned(n) => {
                write!(
                    f,
                    "segment {n}: p_vaddr and p_offset differ modulo the page size"
                )
            }
            Self::OutsideUserSpace(n) => {
                write!(f, "segment {n}: wraps or ends above the user address space")
            }
            Self::InZeroPage(n) => write!(f, "segment {n}: starts below 0x1000"),
            Self::Overlap(a, b) => write!(f, "segments {a} and {b} share a page"),
            Self::BadEntry(entry) => {
                write!(f, "entry point {entry:#x} is not in an executable segment")
            }
        }
    }
}

/// A static description of what the `elf` crate found wrong.
fn describe(error: ParseError) -> &'static str {
    match error {
        ParseError::BadMagic(_) => "bad magic",
        ParseError::UnsupportedElfClass(_) => "unsupported EI_CLASS",
        ParseError::UnsupportedElfEndianness(_) => "unsupported EI_DATA",
        ParseError::UnsupportedVersion(_) => "unsupported ELF version",
        ParseError::BadOffset(_) => "offset out of bounds",
        ParseError::BadEntsize(_) => "wrong program or section header entry size",
        ParseError::SliceReadError(_) | ParseError::TryFromSliceError(_) => {
            "header or table extends past the end of the file"
        }
        ParseError::IntegerOverflow | ParseError::TryFromIntError(_) => {
            "table offset or size overflows"
        }
        _ => "unreadable headers",
    }
}

/// Checks a user program and returns its entry point and loadable segments.
///
/// Checks, in order: ELF magic, 64-bit, little-endian, headers readable, AArch64,
/// `ET_EXEC`; then for each non-empty `PT_LOAD` (empty ones are skipped): file range inside
/// the file, `p_filesz <= p_memsz`, `p_vaddr == p_offset` mod 4096, no wrap and below
/// [`USER_VA_END`], not starting in page 0; then that no two segments share a page, and that
/// the entry point is inside an executable segment.
pub fn parse_user_image(bytes: &[u8]) -> Result<UserImage, ElfError> {
    parse_image(bytes, bytes.len() as u64)
}

/// [`parse_user_image`] of a file not in memory: `head` is its first bytes (they must hold
/// the ELF header and the program header table), `file_len` its length, against which the
/// segments' file ranges are checked. The section header table is not needed: its fields in
/// `head`'s ELF header are cleared (a loader that reads a file through the file server
/// reads the headers only).
pub fn parse_user_image_head(head: &mut [u8], file_len: u64) -> Result<UserImage, ElfError> {
    if head.len() >= EHDR64_SIZE && head.get(..abi::EI_CLASS) == Some(&abi::ELFMAGIC[..]) {
        head[E_SHOFF..E_SHOFF + 8].fill(0);
        head[E_SHNUM..E_SHNUM + 4].fill(0); // e_shnum, e_shstrndx
    }
    parse_image(head, file_len)
}

/// Size of an ELF64 header, and where its section header fields are (ELF64 spec, Fig. 2).
const EHDR64_SIZE: usize = 64;
const E_SHOFF: usize = 0x28;
const E_SHNUM: usize = 0x3c;

fn parse_image(bytes: &[u8], file_len: u64) -> Result<UserImage, ElfError> {
    // Identification first, so each kind of wrong file gets its own error.
    if bytes.get(..abi::EI_CLASS) != Some(&abi::ELFMAGIC[..]) {
        return Err(ElfError::NotElf);
    }
    let class = bytes.get(abi::EI_CLASS).copied().unwrap_or(0);
    if class != abi::ELFCLASS64 {
        return Err(ElfError::Not64Bit(class));
    }
    let data = bytes.get(abi::EI_DATA).copied().unwrap_or(0);
    if data != abi::ELFDATA2LSB {
        return Err(ElfError::NotLittleEndian(data));
    }

    let file = ElfBytes::<AnyEndian>::minimal_parse(bytes)
        .map_err(|e| ElfError::Malformed(describe(e)))?;
    if file.ehdr.e_machine != abi::EM_AARCH64 {
        return Err(ElfError::NotAArch64(file.ehdr.e_machine));
    }
    if file.ehdr.e_type != abi::ET_EXEC {
        return Err(ElfError::NotExecutable(file.ehdr.e_type));
    }

    let mut segments: Vec<Segment, MAX_SEGMENTS> = Vec::new();
    // Program header index of each kept segment, for error messages.
    let mut indices: Vec<usize, MAX_SEGMENTS> = Vec::new();
    let table = file.segments().ok_or(ElfError::NoLoadSegments)?;
    for (index, ph) in table.iter().enumerate() {
        if ph.p_type != abi::PT_LOAD || ph.p_memsz == 0 && ph.p_filesz == 0 {
            continue;
        }
        match ph.p_offset.checked_add(ph.p_filesz) {
            Some(end) if end <= file_len => {}
            _ => return Err(ElfError::FileRangeOutsideFile(index)),
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(ElfError::FileSizeExceedsMemSize(index));
        }
        if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
            return Err(ElfError::Misaligned(index));
        }
        match ph.p_vaddr.checked_add(ph.p_memsz) {
            Some(end) if end <= USER_VA_END => {}
            _ => return Err(ElfError::OutsideUserSpace(index)),
        }
        if ph.p_vaddr < PAGE_SIZE {
            return Err(ElfError::InZeroPage(index));
        }
        let segment = Segment {
            vaddr: ph.p_vaddr,
            mem_size: ph.p_memsz,
            file_offset: ph.p_offset,
            file_size: ph.p_filesz,
            readable: ph.p_flags & abi::PF_R != 0,
            writable: ph.p_flags & abi::PF_W != 0,
            executable: ph.p_flags & abi::PF_X != 0,
        };
        segments
            .push(segment)
            .map_err(|_| ElfError::TooManySegments)?;
        // Same capacity as `segments`, so this push cannot fail once that one succeeded.
        indices.push(index).map_err(|_| ElfError::TooManySegments)?;
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadSegments);
    }

    // Each page has one set of permissions, so segments may not share one.
    for (i, a) in segments.iter().enumerate() {
        for (j, b) in segments.iter().enumerate().skip(i + 1) {
            let (a_start, a_end) = a.page_range();
            let (b_start, b_end) = b.page_range();
            if a_start < b_end && b_start < a_end {
                return Err(ElfError::Overlap(indices[i], indices[j]));
            }
        }
    }

    let entry = file.ehdr.e_entry;
    if !segments
        .iter()
        .any(|s| s.executable && entry >= s.vaddr && entry < s.vaddr_end())
    {
        return Err(ElfError::BadEntry(entry));
    }
    Ok(UserImage { entry, segments })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;

    const EHDR_SIZE: usize = 64;
    const PHDR_SIZE: usize = 56;
    const RX: u32 = abi::PF_R | abi::PF_X;
    const RW: u32 = abi::PF_R | abi::PF_W;

    struct Ph {
        p_type: u32,
        flags: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
    }

    fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
        Ph {
            p_type: abi::PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
        }
    }

    /// An ELF64 little-endian header, program headers right after it, then zeros up to
    /// `file_len`.
    struct Image {
        class: u8,
        data: u8,
        e_type: u16,
        machine: u16,
        entry: u64,
        phdrs: Vec<Ph>,
        file_len: usize,
    }

    impl Image {
        fn new(entry: u64, phdrs: Vec<Ph>) -> Self {
            Self {
                class: abi::ELFCLASS64,
                data: abi::ELFDATA2LSB,
                e_type: abi::ET_EXEC,
                machine: abi::EM_AARCH64,
                entry,
                phdrs,
                file_len: 0x3000,
            }
        }

        fn bytes(&self) -> Vec<u8> {
            let mut b = Vec::new();
            b.extend_from_slice(&abi::ELFMAGIC);
            b.extend_from_slice(&[
                self.class,
                self.data,
                abi::EV_CURRENT,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ]);
            b.extend_from_slice(&self.e_type.to_le_bytes());
            b.extend_from_slice(&self.machine.to_le_bytes());
            b.extend_from_slice(&1u32.to_le_bytes()); // e_version
            b.extend_from_slice(&self.entry.to_le_bytes());
            b.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
            b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
            b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
            b.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
            b.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
            b.extend_from_slice(&(self.phdrs.len() as u16).to_le_bytes());
            b.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
            assert_eq!(b.len(), EHDR_SIZE);
            for ph in &self.phdrs {
                b.extend_from_slice(&ph.p_type.to_le_bytes());
                b.extend_from_slice(&ph.flags.to_le_bytes());
                b.extend_from_slice(&ph.offset.to_le_bytes());
                b.extend_from_slice(&ph.vaddr.to_le_bytes());
                b.extend_from_slice(&ph.vaddr.to_le_bytes()); // p_paddr
                b.extend_from_slice(&ph.filesz.to_le_bytes());
                b.extend_from_slice(&ph.memsz.to_le_bytes());
                b.extend_from_slice(&PAGE_SIZE.to_le_bytes()); // p_align
            }
            b.resize(b.len().max(self.file_len), 0);
            b
        }
    }

    /// Text at 0x40_0000 from file offset 0 (headers included, as ld does), data and bss two
    /// pages up.
    fn two_segments() -> Image {
        Image::new(
            0x40_0100,
            std::vec![
                load(RX, 0, 0x40_0000, 0x1800, 0x1800),
                Ph {
                    p_type: abi::PT_GNU_STACK,
                    flags: RW,
                    offset: 0,
                    vaddr: 0,
                    filesz: 0,
                    memsz: 0
                },
                load(RW, 0x2000, 0x40_2000, 0x800, 0x5000),
            ],
        )
    }

    fn parse(image: &Image) -> Result<UserImage, ElfError> {
        parse_user_image(&image.bytes())
    }

    #[test]
    fn valid_two_segment_image() {
        let image = parse(&two_segments()).unwrap();
        assert_eq!(image.entry, 0x40_0100);
        assert_eq!(
            image.segments.as_slice(),
            &[
                Segment {
                    vaddr: 0x40_0000,
                    mem_size: 0x1800,
                    file_offset: 0,
                    file_size: 0x1800,
                    readable: true,
                    writable: false,
                    executable: true,
                },
                Segment {
                    vaddr: 0x40_2000,
                    mem_size: 0x5000,
                    file_offset: 0x2000,
                    file_size: 0x800,
                    readable: true,
                    writable: true,
                    executable: false,
                },
            ]
        );
        assert_eq!(image.segments[1].page_range(), (0x40_2000, 0x40_7000));
    }

    #[test]
    fn identification_errors() {
        assert_eq!(parse_user_image(b""), Err(ElfError::NotElf));
        assert_eq!(parse_user_image(b"\x7fEL"), Err(ElfError::NotElf));
        assert_eq!(parse_user_image(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        assert_eq!(parse_user_image(b"\x7fELF"), Err(ElfError::Not64Bit(0)));

        let mut image = two_segments();
        image.class = abi::ELFCLASS32;
        assert_eq!(parse(&image), Err(ElfError::Not64Bit(1)));
        let mut image = two_segments();
        image.data = abi::ELFDATA2MSB;
        assert_eq!(parse(&image), Err(ElfError::NotLittleEndian(2)));
        let mut image = two_segments();
        image.machine = abi::EM_X86_64;
        assert_eq!(parse(&image), Err(ElfError::NotAArch64(62)));
        let mut image = two_segments();
        image.e_type = abi::ET_DYN;
        assert_eq!(parse(&image), Err(ElfError::NotExecutable(3)));
    }

    #[test]
    fn truncated_headers_are_malformed() {
        let bytes = two_segments().bytes();
        // Inside the file header, then inside the program headers.
        for len in [8, 20, 63, 64, 100, EHDR_SIZE + 3 * PHDR_SIZE - 1] {
            assert!(
                matches!(parse_user_image(&bytes[..len]), Err(ElfError::Malformed(_))),
                "{len}"
            );
        }
        // Every prefix that cuts into a segment's file data is an error, never a panic.
        for len in 0..0x2800 {
            assert!(parse_user_image(&bytes[..len]).is_err(), "{len}");
        }
        assert!(parse_user_image(&bytes[..0x2800]).is_ok());
    }

    #[test]
    fn headers_only_with_the_file_length() {
        let full = two_segments().bytes();
        let want = parse_user_image(&full).unwrap();
        // The headers alone, with section header fields pointing past them: cleared.
        let mut head = full[..0x200].to_vec();
        head[0x28..0x30].copy_from_slice(&0x2f00u64.to_le_bytes());
        head[0x3c..0x3e].copy_from_slice(&9u16.to_le_bytes());
        assert!(parse_user_image(&head).is_err());
        assert_eq!(parse_user_image_head(&mut head.clone(), 0x3000), Ok(want));
        // Segments are checked against the file's length, not the head's.
        assert_eq!(
            parse_user_image_head(&mut head.clone(), 0x27ff),
            Err(ElfError::FileRangeOutsideFile(2))
        );
        // Headers cut short, or not an ELF file at all.
        assert!(matches!(
            parse_user_image_head(&mut head[..100].to_vec(), 0x3000),
            Err(ElfError::Malformed(_))
        ));
        assert_eq!(
            parse_user_image_head(&mut b"#!/bin/sh\n".to_vec(), 10),
            Err(ElfError::NotElf)
        );
    }

    #[test]
    fn load_segment_count() {
        let mut image = two_segments();
        image.phdrs.retain(|p| p.p_type != abi::PT_LOAD);
        assert_eq!(parse(&image), Err(ElfError::NoLoadSegments));
        image.phdrs.clear();
        assert_eq!(parse(&image), Err(ElfError::NoLoadSegments));
        // An empty PT_LOAD does not count.
        image.phdrs.push(load(RX, 0, 0x40_0000, 0, 0));
        assert_eq!(parse(&image), Err(ElfError::NoLoadSegments));

        let many = |n: u64| {
            let phdrs = (0..n).map(|i| load(RX, 0x1000 * i, 0x40_0000 + 0x1000 * i, 0x100, 0x100));
            Image {
                file_len: 0x1_0000,
                ..Image::new(0x40_0000, phdrs.collect())
            }
        };
        assert_eq!(parse(&many(8)).unwrap().segments.len(), 8);
        assert_eq!(parse(&many(9)), Err(ElfError::TooManySegments));
    }

    #[test]
    fn segment_errors() {
        let with = |ph: Ph| {
            let mut image = two_segments();
            image.phdrs[2] = ph;
            parse(&image)
        };
        assert_eq!(
            with(load(RW, 0x2000, 0x40_2000, 0x1001, 0x2000)),
            Err(ElfError::FileRangeOutsideFile(2))
        );
        assert_eq!(
            with(load(RW, u64::MAX - 4, 0x40_2000, 0x10, 0x2000)),
            Err(ElfError::FileRangeOutsideFile(2))
        );
        assert_eq!(
            with(load(RW, 0x2000, 0x40_2000, 0x800, 0x7ff)),
            Err(ElfError::FileSizeExceedsMemSize(2))
        );
        assert_eq!(
            with(load(RW, 0x2000, 0x40_2010, 0x800, 0x800)),
            Err(ElfError::Misaligned(2))
        );
        assert_eq!(
            with(load(RW, 0x2000, 0xffff_ffff_ffff_f000, 0, 0x2000)),
            Err(ElfError::OutsideUserSpace(2))
        );
        assert_eq!(
            with(load(RW, 0x2000, USER_VA_END - 0x1000, 0, 0x1001)),
            Err(ElfError::OutsideUserSpace(2))
        );
        assert_eq!(
            with(load(RW, 0x2000, 0x2000 + (USER_VA_END - 0x4000), 0, 0x2000))
                .map(|i| i.segments.len()),
            Ok(2),
            "ends at USER_VA_END exactly"
        );
        assert_eq!(
            with(load(RW, 0x2000, 0x0000, 0x10, 0x10)),
            Err(ElfError::InZeroPage(2))
        );
        assert_eq!(
            with(load(RW, 0x2ff0, 0x0ff0, 0x10, 0x10)),
            Err(ElfError::InZeroPage(2))
        );
        assert!(
            with(load(RW, 0x2000, 0x1000, 0x10, 0x10)).is_ok(),
            "page 1 is fine"
        );
    }

    #[test]
    fn overlapping_segments() {
        let with = |ph: Ph| {
            let mut image = two_segments();
            image.phdrs[2] = ph;
            parse(&image)
        };
        // Data starting in the page where text ends (0x40_1000..0x40_2000).
        assert_eq!(
            with(load(RW, 0x2800, 0x40_1800, 0x10, 0x10)),
            Err(ElfError::Overlap(0, 2))
        );
        // Data below text, whose bss runs into the first text page.
        assert_eq!(
            with(load(RW, 0x2000, 0x3f_e000, 0x10, 0x2001)),
            Err(ElfError::Overlap(0, 2))
        );
        // Byte-exact overlap.
        assert_eq!(
            with(load(RW, 0x0, 0x40_0000, 0x10, 0x10)),
            Err(ElfError::Overlap(0, 2))
        );
        // Adjacent pages are fine.
        assert!(with(load(RW, 0x2000, 0x40_2000, 0x10, 0x10)).is_ok());
    }

    #[test]
    fn entry_point_must_be_executable() {
        let mut image = two_segments();
        image.entry = 0x40_2000; // in the data segment
        assert_eq!(parse(&image), Err(ElfError::BadEntry(0x40_2000)));
        image.entry = 0x40_1800; // one past the end of text
        assert_eq!(parse(&image), Err(ElfError::BadEntry(0x40_1800)));
        image.entry = 0;
        assert_eq!(parse(&image), Err(ElfError::BadEntry(0)));
        image.entry = 0x40_17fc; // last instruction of text
        assert!(parse(&image).is_ok());
    }

    #[test]
    fn display_texts() {
        assert_eq!(std::format!("{}", ElfError::NotElf), "not an ELF file");
        assert_eq!(
            std::format!("{}", ElfError::NotAArch64(62)),
            "not an AArch64 ELF (e_machine 62)"
        );
        assert_eq!(
            std::format!("{}", ElfError::Overlap(0, 2)),
            "segments 0 and 2 share a page"
        );
        assert_eq!(
            std::format!("{}", ElfError::BadEntry(0x1234)),
            "entry point 0x1234 is not in an executable segment"
        );
    }

    #[test]
    fn mutations_never_panic() {
        let good = two_segments().bytes();
        let mut state = 0xdead_beef_u64;
        for _ in 0..5_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + state % 4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mutate the headers, where the interesting fields are.
                let at = (state % (EHDR_SIZE + 3 * PHDR_SIZE) as u64) as usize;
                bytes[at] = (state >> 32) as u8;
            }
            if let Ok(image) = parse_user_image(&bytes) {
                for s in &image.segments {
                    assert!(s.file_offset + s.file_size <= bytes.len() as u64);
                    assert!(s.vaddr >= PAGE_SIZE && s.vaddr_end() <= USER_VA_END);
                }
            }
        }
    }
}
