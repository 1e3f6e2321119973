//! Creates the root task (`init` from the initrd): its address space, image, stack,
//! boot-info page and register context.
//!
//! Every frame it uses comes from one contiguous run taken from free RAM and recorded as
//! `BootAlloc` in the physical memory map, so the boot-info page accounts for all of it.

use crate::arch::exception::UserContext;
use crate::arch::mmu::{self, TableFrames, phys_to_virt};
use abi::bootinfo::{BOOTINFO_VADDR, BootInfo, INIT_STACK_SIZE, INIT_STACK_TOP};
use core::fmt;
use kernel_core::elf::{self, ElfError, Segment, UserImage};
use kernel_core::memory::{PhysMap, Use};
use kernel_core::pte::{MapAttrs, MemoryType, PAGE_SIZE};
use kernel_core::{cpio, pte};

/// The root task's address-space identifier.
const INIT_ASID: u16 = 1;

/// Why the root task could not be created (printed after `FATAL: `).
pub enum LoadError {
    Initrd(cpio::CpioError),
    Elf(ElfError),
    OutOfMemory,
    /// The ELF check should have caught this; refuse rather than trust it.
    SegmentOutsideFile,
    Map(mmu::MapError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Initrd(cpio::CpioError::NotFound) => {
                f.write_str("initrd: no file named \"init\"")
            }
            Self::Initrd(e) => write!(f, "initrd: {e}"),
            Self::Elf(e) => write!(f, "init: {e}"),
            Self::OutOfMemory => f.write_str("init: not enough free memory to load it"),
            Self::SegmentOutsideFile => f.write_str("init: a segment lies outside the file"),
            Self::Map(e) => write!(f, "init: cannot map it: {e:?}"),
        }
    }
}

/// What the boot-info page reports besides the memory map.
pub struct BootFacts<'a> {
    pub bootargs: &'a str,
    pub initrd: (u64, u64),
    pub counter_frequency: u64,
    pub tick_hz: u64,
}

/// Frames handed out one by one from a contiguous, already reserved run.
struct BumpFrames {
    next: u64,
    end: u64,
}

impl BumpFrames {
    /// A zeroed frame.
    fn frame(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let pa = self.next;
        self.next += PAGE_SIZE;
        // SAFETY: `pa` is a frame of the run reserved for the root task, not yet handed out,
        // so nothing else refers to it; the linear map covers all RAM.
        unsafe { core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, PAGE_SIZE as usize) };
        Some(pa)
    }
}

impl TableFrames for BumpFrames {
    fn new_table(&mut self) -> Option<u64> {
        self.frame()
    }

    fn table_ptr(&self, pa: u64) -> *mut [u64; 512] {
        phys_to_virt(pa) as *mut [u64; 512]
    }
}

/// Pages a segment covers.
fn segment_pages(s: &Segment) -> u64 {
    let start = s.vaddr & !(PAGE_SIZE - 1);
    (s.vaddr + s.mem_size)
        .next_multiple_of(PAGE_SIZE)
        .saturating_sub(start)
        / PAGE_SIZE
}

/// An upper bound on the frames the root task needs: its pages, plus for each mapped area
/// one L1 and one L2 table and enough L3 tables, plus the root table.
fn frames_needed(image: &UserImage) -> u64 {
    let area = |pages: u64| pages + 2 + pages.div_ceil(512) + 1;
    let stack = INIT_STACK_SIZE / PAGE_SIZE;
    let images: u64 = image.segments.iter().map(|s| area(segment_pages(s))).sum();
    1 + images + area(stack) + area(1) + 1 // root, segments, stack, boot info, context
}

/// Loads `init` from `initrd` and returns its register context, ready to enter.
pub fn create(
    initrd: &[u8],
    phys: &mut PhysMap,
    facts: &BootFacts<'_>,
) -> Result<&'static mut UserContext, LoadError> {
    let file = cpio::find(initrd, "init").map_err(LoadError::Initrd)?;
    let image = elf::parse_user_image(file).map_err(LoadError::Elf)?;

    let count = frames_needed(&image);
    let base = phys
        .alloc_pages(count, Use::BootAlloc)
        .map_err(|_| LoadError::OutOfMemory)?;
    let mut frames = BumpFrames {
        next: base,
        end: base + count * PAGE_SIZE,
    };
    let root = frames.frame().ok_or(LoadError::OutOfMemory)?;

    for segment in &image.segments {
        load_segment(&mut frames, root, file, segment)?;
    }
    let stack_base = INIT_STACK_TOP - INIT_STACK_SIZE;
    for page in 0..INIT_STACK_SIZE / PAGE_SIZE {
        let pa = frames.frame().ok_or(LoadError::OutOfMemory)?;
        map_page(
            &mut frames,
            root,
            stack_base + page * PAGE_SIZE,
            pa,
            MapAttrs::USER_RW,
        )?;
    }
    let info_pa = frames.frame().ok_or(LoadError::OutOfMemory)?;
    map_page(
        &mut frames,
        root,
        BOOTINFO_VADDR,
        info_pa,
        MapAttrs::USER_RO,
    )?;
    let context_pa = frames.frame().ok_or(LoadError::OutOfMemory)?;

    // SAFETY: `info_pa` is a zeroed frame of the root task's run that only this code refers
    // to in the kernel; the user mapping of it is read-only and not live until we enter EL0.
    let info = unsafe { &mut *(phys_to_virt(info_pa) as *mut BootInfo) };
    fill_boot_info(info, phys, facts);

    // SAFETY: `context_pa` is a zeroed frame reserved for the root task, never freed, that
    // nothing else refers to; a zeroed `UserContext` is valid.
    let context = unsafe { &mut *(phys_to_virt(context_pa) as *mut UserContext) };
    context.elr = image.entry;
    context.sp = INIT_STACK_TOP;
    context.spsr = 0; // EL0t, interrupts unmasked
    context.x[0] = BOOTINFO_VADDR;

    mmu::switch_user_space(root, INIT_ASID);
    Ok(context)
}

fn map_page(
    frames: &mut BumpFrames,
    root: u64,
    va: u64,
    pa: u64,
    attrs: MapAttrs,
) -> Result<(), LoadError> {
    mmu::map_range(frames, root, va, pa, PAGE_SIZE, attrs, false).map_err(LoadError::Map)
}

/// Copies one ELF segment into fresh frames (the rest of each page stays zero) and maps it.
fn load_segment(
    frames: &mut BumpFrames,
    root: u64,
    file: &[u8],
    s: &Segment,
) -> Result<(), LoadError> {
    let attrs = MapAttrs {
        memory: MemoryType::Normal,
        user: true,
        writable: s.writable,
        user_exec: s.executable,
        kernel_exec: false,
        global: false,
    };
    let first_page = s.vaddr & !(PAGE_SIZE - 1);
    let range = usize::try_from(s.file_offset)
        .ok()
        .zip(usize::try_from(s.file_offset + s.file_size).ok());
    let file_bytes = range
        .and_then(|(a, b)| file.get(a..b))
        .ok_or(LoadError::SegmentOutsideFile)?;
    for page in 0..segment_pages(s) {
        let va = first_page + page * PAGE_SIZE;
        let pa = frames.frame().ok_or(LoadError::OutOfMemory)?;
        // Which bytes of the segment's file image land in this page.
        let from = va.max(s.vaddr) - s.vaddr;
        let to = (va + PAGE_SIZE - s.vaddr).min(s.file_size);
        if from < to {
            let dst = phys_to_virt(pa) + (s.vaddr + from - va);
            let src = file_bytes
                .get(from as usize..to as usize)
                .ok_or(LoadError::SegmentOutsideFile)?;
            // SAFETY: `dst..dst + src.len()` lies inside the fresh frame `pa` (the bytes go
            // to page offsets below PAGE_SIZE), which nothing else refers to.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        }
        if s.executable {
            mmu::sync_icache(phys_to_virt(pa), PAGE_SIZE);
        }
        map_page(frames, root, va, pa, attrs)?;
    }
    Ok(())
}

fn fill_boot_info(info: &mut BootInfo, phys: &PhysMap, facts: &BootFacts<'_>) {
    *info = BootInfo::new();
    info.ram_total = phys.total_ram();
    info.counter_frequency = facts.counter_frequency;
    info.tick_hz = facts.tick_hz;
    for r in phys.free() {
        info.push_free(r.base, r.size);
    }
    for (r, kind) in phys.reserved() {
        info.push_reserved(r.base, r.size, kind);
    }
    info.initrd.base = facts.initrd.0;
    info.initrd.size = facts.initrd.1;
    info.set_bootargs(facts.bootargs.as_bytes());
}

const _: () = assert!(pte::PAGE_SIZE == 4096);
