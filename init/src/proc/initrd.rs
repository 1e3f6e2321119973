//! The initrd as init reads it: its frames mapped read-only in init's address space, files
//! found by name (`kernel_core::cpio`).

use crate::alloc::{Alloc, PAGE, VSPACE};
use abi::Error;
use abi::bootinfo::BootInfo;
use abi::object::MapFlags;
use libmk::{Cap, Frame};

pub struct Initrd {
    /// The archive's bytes.
    pub bytes: &'static [u8],
}

impl Initrd {
    /// Maps the boot info's initrd frames, in order, at a new range of init's address space.
    pub fn map(alloc: &mut Alloc, info: &BootInfo) -> Result<Self, Error> {
        let frames = info.initrd_frames();
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
            return Err(Error::InvalidArgument);
        };
        let end = last.base + (1u64 << last.size_bits);
        let initrd = info.initrd;
        if initrd.base < first.base || initrd.base + initrd.size > end {
            return Err(Error::InvalidArgument);
        }
        let va = alloc.va_reserve((end - first.base) / PAGE)?;
        for f in frames {
            let pages = (1u64 << f.size_bits) / PAGE;
            Cap::<Frame>::from_cptr(f.slot).map(
                VSPACE,
                va + (f.base - first.base),
                MapFlags::READ,
                0,
                pages,
            )?;
        }
        let start = va + (initrd.base - first.base);
        let len = usize::try_from(initrd.size).map_err(|_| Error::RangeError)?;
        // SAFETY: the frames covering [initrd.base, initrd.base + size) were just mapped
        // read-only at [start, start + len) for good; nobody writes the initrd.
        let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, len) };
        Ok(Self { bytes })
    }

    /// The contents of file `name`.
    pub fn find(&self, name: &str) -> Option<&'static [u8]> {
        kernel_core::cpio::find(self.bytes, name).ok()
    }

    /// Where `file` (a slice of the archive) starts, from the initrd's start.
    pub fn offset_of(&self, file: &[u8]) -> u64 {
        (file.as_ptr() as u64).saturating_sub(self.bytes.as_ptr() as u64)
    }
}
