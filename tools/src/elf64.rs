//! A minimal ELF64 little-endian executable writer: a file header, program headers, segment data.
//!
//! It makes the x86-64 `init` of a bad-initrd scenario, and test kernels for the Image tests.

pub const EM_X86_64: u16 = 62;
/// Only the Image tests write AArch64 files; the real kernel comes from rustc.
#[cfg(test)]
pub const EM_AARCH64: u16 = 183;
pub const PT_LOAD: u32 = 1;
pub const PF_X: u32 = 1;
pub const PF_R: u32 = 4;

const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const ET_EXEC: u16 = 2;
/// Segment alignment: file offset and address agree modulo a 4 KiB page, as loaders expect.
const ALIGN: u64 = 0x1000;

/// One program header and the bytes it loads.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    pub p_type: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub paddr: u64,
    pub data: &'a [u8],
    /// At least `data.len()`; the rest is zero-filled (bss).
    pub memsz: u64,
}

/// Lays out an `ET_EXEC` file: headers first, then each segment's data at the next offset that is
/// congruent to its address modulo 4 KiB.
pub fn write_exec(machine: u16, entry: u64, segments: &[Segment<'_>]) -> Vec<u8> {
    let mut offsets = Vec::with_capacity(segments.len());
    let mut cursor = (EHDR_LEN + PHDR_LEN * segments.len()) as u64;
    for seg in segments {
        let skew = (seg.vaddr % ALIGN + ALIGN - cursor % ALIGN) % ALIGN;
        offsets.push(cursor + skew);
        cursor += skew + seg.data.len() as u64;
    }

    let mut out = Vec::with_capacity(cursor as usize);
    out.extend_from_slice(b"\x7fELF");
    // ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV, then padding to 16 bytes.
    out.extend_from_slice(&[2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&ET_EXEC.to_le_bytes());
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&(EHDR_LEN as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_LEN as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR_LEN as u16).to_le_bytes());
    out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx

    for (seg, offset) in segments.iter().zip(&offsets) {
        out.extend_from_slice(&seg.p_type.to_le_bytes());
        out.extend_from_slice(&seg.flags.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&seg.vaddr.to_le_bytes());
        out.extend_from_slice(&seg.paddr.to_le_bytes());
        out.extend_from_slice(&(seg.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&seg.memsz.max(seg.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&ALIGN.to_le_bytes());
    }
    for (seg, offset) in segments.iter().zip(&offsets) {
        out.resize(*offset as usize, 0);
        out.extend_from_slice(seg.data);
    }
    out
}
