//! Kernel ELF → arm64 `Image`: the flat binary QEMU boots with the Linux arm64 boot protocol.
//!
//! QEMU hands the device tree's address in x0 only to an `Image`, not to an ELF (docs/design.md
//! §3). The kernel's entry assembly emits the 64-byte boot header itself; this module lays the
//! loadable segments out flat and checks that header (Linux `Documentation/arm64/booting.rst`):
//!
//! ```text
//! 0x00 code0, code1    0x08 text_offset    0x10 image_size    0x18 flags
//! 0x20 res2..res4      0x38 magic "ARM\x64"                   0x3c res5
//! ```

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};

pub const HEADER_LEN: usize = 64;
pub const IMAGE_SIZE_OFFSET: usize = 0x10;
pub const MAGIC_OFFSET: usize = 0x38;
pub const MAGIC: &[u8; 4] = b"ARM\x64";
/// Refuse absurd layouts (segments far apart) rather than allocate gigabytes of zeros.
const MAX_FLAT_LEN: u64 = 256 << 20;

/// A flattened kernel.
#[derive(Debug)]
pub struct Image {
    /// File bytes of every PT_LOAD segment at `p_paddr - base`, gaps zero-filled, no trailing bss.
    pub bytes: Vec<u8>,
    /// The header's `image_size`: what the kernel claims to occupy once loaded.
    pub image_size: u64,
    /// From the lowest load address to the end of the last segment's memory, bss included.
    pub mem_span: u64,
}

/// A loadable segment, in physical addresses.
struct Load<'a> {
    paddr: u64,
    memsz: u64,
    data: &'a [u8],
}

/// Flattens a little-endian AArch64 ELF64 kernel and checks its boot header.
pub fn from_elf(file: &[u8]) -> Result<Image, String> {
    let header = elf::FileHeader64::<object::Endianness>::parse(file)
        .map_err(|e| format!("not an ELF64 file: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| format!("bad ELF header: {e}"))?;
    if endian != object::Endianness::Little {
        return Err("the kernel ELF is big-endian; the arm64 Image format is little-endian".into());
    }
    if header.e_machine(endian) != elf::EM_AARCH64 {
        return Err(format!(
            "the kernel ELF is for machine {}, not AArch64",
            header.e_machine(endian)
        ));
    }
    let phdrs = header
        .program_headers(endian, file)
        .map_err(|e| format!("bad program headers: {e}"))?;

    let mut loads = Vec::new();
    for ph in phdrs.iter().filter(|ph| ph.p_type(endian) == elf::PT_LOAD) {
        let paddr = ph.p_paddr(endian);
        let memsz = ph.p_memsz(endian);
        let data = ph
            .data(endian, file)
            .map_err(|()| format!("segment at {paddr:#x}: file bytes lie outside the file"))?;
        if (data.len() as u64) > memsz {
            return Err(format!("segment at {paddr:#x}: p_filesz exceeds p_memsz"));
        }
        if memsz > 0 {
            loads.push(Load { paddr, memsz, data });
        }
    }
    let (bytes, mem_span) = flatten(&mut loads)?;
    let image_size = check_boot_header(&bytes)?;
    Ok(Image {
        bytes,
        image_size,
        mem_span,
    })
}

/// Lays the segments out from the lowest address that has file bytes; returns the flat bytes and
/// the memory span including bss.
fn flatten(loads: &mut [Load<'_>]) -> Result<(Vec<u8>, u64), String> {
    loads.sort_by_key(|load| load.paddr);
    let end_of = |load: &Load<'_>| {
        load.paddr.checked_add(load.memsz).ok_or_else(|| {
            format!(
                "segment at {:#x} wraps around the address space",
                load.paddr
            )
        })
    };
    for pair in loads.windows(2) {
        if end_of(&pair[0])? > pair[1].paddr {
            return Err(format!(
                "segments at {:#x} and {:#x} overlap",
                pair[0].paddr, pair[1].paddr
            ));
        }
    }
    let base = loads
        .iter()
        .find(|load| !load.data.is_empty())
        .map(|load| load.paddr)
        .ok_or("the kernel ELF has no PT_LOAD segment with file bytes")?;
    if let Some(below) = loads.first().filter(|load| load.paddr < base) {
        return Err(format!(
            "a bss-only segment at {:#x} lies below the first segment with file bytes ({base:#x})",
            below.paddr
        ));
    }
    let file_end = loads
        .iter()
        .filter(|load| !load.data.is_empty())
        .map(|load| load.paddr + load.data.len() as u64)
        .max()
        .unwrap_or(base);
    let mem_end = match loads.last() {
        Some(last) => end_of(last)?,
        None => base,
    };
    let flat_len = file_end - base;
    if flat_len > MAX_FLAT_LEN {
        return Err(format!(
            "the segments span {flat_len:#x} bytes, more than the {MAX_FLAT_LEN:#x} allowed: check the \
             linker script's load addresses"
        ));
    }
    let mut bytes = vec![0; flat_len as usize];
    for load in loads.iter().filter(|load| !load.data.is_empty()) {
        let at = (load.paddr - base) as usize;
        bytes[at..at + load.data.len()].copy_from_slice(load.data);
    }
    Ok((bytes, mem_end - base))
}

/// Checks the boot header the kernel emitted and returns its `image_size`.
pub fn check_boot_header(image: &[u8]) -> Result<u64, String> {
    if image.len() < HEADER_LEN {
        return Err(format!(
            "the flat kernel is {} bytes, shorter than the {HEADER_LEN}-byte arm64 boot header",
            image.len()
        ));
    }
    if &image[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
        return Err(format!(
            "no arm64 boot header: expected magic \"ARM\\x64\" at offset {MAGIC_OFFSET:#x}, found {:02x?}; \
             the kernel's entry assembly must start with the 64-byte header",
            &image[MAGIC_OFFSET..MAGIC_OFFSET + 4]
        ));
    }
    let mut size = [0; 8];
    size.copy_from_slice(&image[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8]);
    let image_size = u64::from_le_bytes(size);
    if image_size < image.len() as u64 {
        return Err(format!(
            "the boot header's image_size ({image_size:#x}) is smaller than the flat image ({:#x} bytes)",
            image.len()
        ));
    }
    Ok(image_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf64::{self, Segment};

    const BASE: u64 = 0x4008_0000;

    /// A boot header claiming `image_size`, followed by `body`.
    fn header(image_size: u64, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0; HEADER_LEN];
        out[..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // b +0x40
        out[8..16].copy_from_slice(&0x80000u64.to_le_bytes());
        out[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&image_size.to_le_bytes());
        out[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(MAGIC);
        out.extend_from_slice(body);
        out
    }

    fn seg(paddr: u64, data: &[u8], memsz: u64) -> Segment<'_> {
        // Virtual addresses differ from physical ones on purpose: the Image follows p_paddr.
        let vaddr = 0xffff_0000_0000_0000 | paddr;
        Segment {
            p_type: elf64::PT_LOAD,
            flags: elf64::PF_R,
            vaddr,
            paddr,
            data,
            memsz,
        }
    }

    #[test]
    fn lays_out_segments_by_paddr_with_gaps_and_without_trailing_bss() {
        let text = header(0x3000, b"code");
        let data = b"data".to_vec();
        // Given out of order; the rodata segment has bss that the gap after it covers.
        let elf = elf64::write_exec(
            elf64::EM_AARCH64,
            BASE,
            &[
                seg(BASE + 0x1000, b"ro", 0x10),
                seg(BASE, &text, text.len() as u64),
                seg(BASE + 0x2000, &data, 0x800),
            ],
        );
        let image = from_elf(&elf).unwrap();
        assert_eq!(image.bytes.len(), 0x2004);
        assert_eq!(&image.bytes[..text.len()], &text[..]);
        assert!(image.bytes[text.len()..0x1000].iter().all(|&b| b == 0));
        assert_eq!(&image.bytes[0x1000..0x1002], b"ro");
        assert!(image.bytes[0x1002..0x2000].iter().all(|&b| b == 0));
        assert_eq!(&image.bytes[0x2000..], b"data");
        assert_eq!(image.image_size, 0x3000);
        assert_eq!(image.mem_span, 0x2800);
    }

    #[test]
    fn ignores_non_load_segments() {
        let text = header(0x1000, b"");
        let note = Segment {
            p_type: 4,
            ..seg(0, b"note", 4)
        };
        let elf = elf64::write_exec(elf64::EM_AARCH64, BASE, &[note, seg(BASE, &text, 0x100)]);
        assert_eq!(from_elf(&elf).unwrap().bytes, text);
    }

    #[test]
    fn rejects_missing_magic() {
        let mut text = header(0x1000, b"");
        text[MAGIC_OFFSET] = b'X';
        let elf = elf64::write_exec(elf64::EM_AARCH64, BASE, &[seg(BASE, &text, 0x100)]);
        let err = from_elf(&elf).unwrap_err();
        assert!(err.contains("magic"), "{err}");
    }

    #[test]
    fn rejects_image_size_below_flat_size() {
        let text = header(0x20, b"");
        let elf = elf64::write_exec(elf64::EM_AARCH64, BASE, &[seg(BASE, &text, 0x40)]);
        let err = from_elf(&elf).unwrap_err();
        assert!(err.contains("image_size"), "{err}");
        assert!(check_boot_header(&text[..32]).is_err());
    }

    #[test]
    fn rejects_bad_elves() {
        let text = header(0x1000, b"");
        let x86 = elf64::write_exec(elf64::EM_X86_64, BASE, &[seg(BASE, &text, 0x100)]);
        assert!(from_elf(&x86).unwrap_err().contains("AArch64"));
        assert!(from_elf(b"not an elf").is_err());
        let overlap = elf64::write_exec(
            elf64::EM_AARCH64,
            BASE,
            &[seg(BASE, &text, 0x100), seg(BASE + 0x80, b"x", 1)],
        );
        assert!(from_elf(&overlap).unwrap_err().contains("overlap"));
        let far = elf64::write_exec(
            elf64::EM_AARCH64,
            BASE,
            &[seg(BASE, &text, 0x100), seg(BASE + (1 << 40), b"x", 1)],
        );
        assert!(from_elf(&far).is_err());
        // Truncating the file cuts the segment's bytes off.
        let whole = elf64::write_exec(elf64::EM_AARCH64, BASE, &[seg(BASE, &text, 0x100)]);
        assert!(from_elf(&whole[..whole.len() - 1]).is_err());
    }
}
