//! Memory the process server builds with: objects carved from an untyped into init's slots,
//! a window in init's address space to fill frames through, and the translation tables of
//! the address spaces init fills itself (the servers').

use crate::alloc::{Alloc, CNODE, PAGE, VSPACE, table_base, table_span_bits};
use abi::Error;
use abi::object::{MapFlags, ObjectType};
use liballoc::vec::Vec;
use libmk::{Cap, Frame, PageTable, Untyped, VSpace};

/// One object of `ty` carved from `ut` into a new slot of init's CNode.
pub fn retype<K>(
    alloc: &mut Alloc,
    ut: Cap<Untyped>,
    ty: ObjectType,
    size_bits: u64,
) -> Result<Cap<K>, Error> {
    let slot = alloc.slot()?;
    match ut.retype(ty, size_bits, CNODE, slot, 1) {
        Ok(()) => Ok(Cap::from_cptr(slot)),
        Err(e) => {
            alloc.free_slot(slot);
            Err(e)
        }
    }
}

/// A range of init's address space where frames are mapped for a moment to be filled.
///
/// # Invariants
/// Nothing is mapped in the window between calls of [`Window::with`].
pub struct Window {
    va: u64,
    pages: u64,
}

impl Window {
    pub fn new(alloc: &mut Alloc, pages: u64) -> Result<Self, Error> {
        Ok(Self {
            va: alloc.va_reserve(pages)?,
            pages,
        })
    }

    /// Maps pages `first..first + count` of `frame` read-write at the window, gives `f` their
    /// bytes, and unmaps them again.
    pub fn with<R>(
        &mut self,
        frame: Cap<Frame>,
        first: u64,
        count: u64,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, Error> {
        if count == 0 || count > self.pages {
            return Err(Error::RangeError);
        }
        frame.map(VSPACE, self.va, MapFlags::RW, first, count)?;
        let len = usize::try_from(count * PAGE).map_err(|_| Error::RangeError)?;
        // SAFETY: `count` pages at the window were just mapped read-write; the window is
        // init's alone, nothing else refers to it, and `&mut self` keeps this the only slice
        // until the unmap below.
        let bytes = unsafe { core::slice::from_raw_parts_mut(self.va as *mut u8, len) };
        let result = f(bytes);
        VSPACE.unmap(self.va, count * PAGE)?;
        Ok(result)
    }
}

/// An address space init fills itself, with the translation tables installed so far (made
/// from `ut`).
pub struct Space {
    pub vspace: Cap<VSpace>,
    ut: Cap<Untyped>,
    tables: Vec<(u8, u64)>,
}

impl Space {
    pub fn new(vspace: Cap<VSpace>, ut: Cap<Untyped>) -> Self {
        Self {
            vspace,
            ut,
            tables: Vec::new(),
        }
    }

    /// The untyped its tables come from.
    pub fn untyped(&self) -> Cap<Untyped> {
        self.ut
    }

    /// Installs the level-1..3 tables covering [`va`, `va + pages` pages).
    fn tables_for(&mut self, alloc: &mut Alloc, va: u64, pages: u64) -> Result<(), Error> {
        let span = 1u64 << table_span_bits(3);
        let mut at = table_base(va, 3);
        while at < va + pages.max(1) * PAGE {
            for level in 1..=3u8 {
                let base = table_base(at, level);
                if self.tables.contains(&(level, base)) {
                    continue;
                }
                let pt: Cap<PageTable> = retype(alloc, self.ut, ObjectType::PageTable, 0)?;
                self.vspace.map_table(pt, base, u64::from(level))?;
                self.tables.push((level, base));
            }
            at += span;
        }
        Ok(())
    }

    /// `FrameMap` of pages `first..first + count` of `frame` at `va`, tables first.
    pub fn map(
        &mut self,
        alloc: &mut Alloc,
        frame: Cap<Frame>,
        va: u64,
        flags: MapFlags,
        first: u64,
        count: u64,
    ) -> Result<(), Error> {
        self.tables_for(alloc, va, count)?;
        frame.map(self.vspace, va, flags, first, count)
    }
}
