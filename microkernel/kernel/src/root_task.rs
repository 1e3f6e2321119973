//! Creates the root task (`init` from the initrd) the way user space would create any task,
//! from objects the kernel carves at boot: CNode, TCB, VSpace, page tables, frames for its
//! image, stack, boot-info pages and IPC buffer. Then it hands init every capability the
//! system has: all free RAM as untyped, device memory, the initrd's frames, IRQ control.
//!
//! All of init's objects come from one contiguous run of RAM recorded as `BootAlloc`.

use crate::arch::mmu::{self, phys_to_virt};
use crate::delete;
use crate::object::cnode::{self, SlotRef};
use crate::object::tcb::{self, Tcb, TcbRef};
use crate::object::{Obj, vspace, zero_phys};
use crate::sched;
use abi::bootinfo::{
    BOOTINFO_SIZE, BOOTINFO_VADDR, BootInfo, FrameDesc, INIT_CNODE_RADIX, INIT_IPC_BUFFER_VADDR,
    INIT_STACK_SIZE, INIT_STACK_TOP, ImageFrame, UntypedDesc,
};
use abi::object::{
    CapRights, MAX_PRIORITY, MapFlags, PAGE_TABLE_BITS, SLOT_BITS, TCB_BITS, VSPACE_BITS,
    init_slots,
};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel_core::cap::{Cap, Derivation, derive};
use kernel_core::elf::{self, ElfError, Segment};
use kernel_core::machine::{MachineInfo, MemRange};
use kernel_core::memory::{PhysMap, Use};
use kernel_core::pte::{self, PAGE_SIZE};
use kernel_core::{cpio, mdb};

static ROOT: AtomicU64 = AtomicU64::new(0);

/// Whether `t` is the root task's thread.
pub fn is_root(t: TcbRef) -> bool {
    ROOT.load(Ordering::Relaxed) == t.kva()
}

/// Why the root task could not be created (printed after `FATAL: `).
pub enum LoadError {
    Initrd(cpio::CpioError),
    Elf(ElfError),
    OutOfMemory,
    /// The ELF check should have caught this; refuse rather than trust it.
    SegmentOutsideFile,
    TooBig,
    Map(abi::Error),
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
            Self::TooBig => f.write_str("init: more pages than the boot info can list"),
            Self::Map(e) => write!(f, "init: cannot map it: {e}"),
        }
    }
}

/// What the boot-info page reports besides capabilities and the memory map.
pub struct BootFacts<'a> {
    pub bootargs: &'a str,
    pub initrd: MemRange,
    pub counter_frequency: u64,
    pub tick_hz: u64,
}

/// Carves objects, largest first, from a run aligned to the largest.
struct Carver {
    next: u64,
    end: u64,
}

impl Carver {
    fn take(&mut self, bits: u32) -> Result<u64, LoadError> {
        let pa = self.next.next_multiple_of(1 << bits);
        if pa + (1 << bits) > self.end {
            return Err(LoadError::OutOfMemory);
        }
        self.next = pa + (1 << bits);
        Ok(pa)
    }
}

/// Fills CNode slots from `init_slots::FIRST_VARIABLE` on.
struct SlotFiller {
    cnode: Cap,
    next: u64,
}

impl SlotFiller {
    fn put(&mut self, cap: Cap) -> Result<u64, LoadError> {
        let index = self.next;
        let slot = cnode::slot_in(self.cnode, index).map_err(|_| LoadError::TooBig)?;
        delete::insert(None, slot, cap);
        self.next += 1;
        Ok(index)
    }
}

const STACK_BITS: u32 = INIT_STACK_SIZE.trailing_zeros();
const BOOTINFO_BITS: u32 = BOOTINFO_SIZE.trailing_zeros();
const CNODE_BITS: u32 = INIT_CNODE_RADIX as u32 + SLOT_BITS;
/// Page tables: enough for the image (up to 128 pages in at most two 2 MiB regions, in
/// different 1 GiB and 512 GiB regions from the stack) and the stack region.
const PAGE_TABLES: u64 = 8;

/// Loads `init` from `initrd`, gives it its capabilities, and makes it runnable.
pub fn create(
    initrd: &[u8],
    phys: &mut PhysMap,
    m: &MachineInfo<'_>,
    facts: &BootFacts<'_>,
) -> Result<TcbRef, LoadError> {
    let file = cpio::find(initrd, "init").map_err(LoadError::Initrd)?;
    let image = elf::parse_user_image(file).map_err(LoadError::Elf)?;
    let image_pages: u64 = image.segments.iter().map(segment_pages).sum();
    if image_pages > abi::bootinfo::MAX_IMAGE_FRAMES as u64 {
        return Err(LoadError::TooBig);
    }

    // One run for everything, aligned to its largest object (the CNode).
    let bytes = (1u64 << CNODE_BITS)
        + (1 << STACK_BITS)
        + (1 << BOOTINFO_BITS)
        + PAGE_TABLES * (1 << PAGE_TABLE_BITS)
        + (1 << VSPACE_BITS)
        + (1 << TCB_BITS)
        + (image_pages + 1) * PAGE_SIZE;
    let pages = (bytes + (1 << CNODE_BITS)) / PAGE_SIZE;
    let run = phys
        .alloc_pages(pages, Use::BootAlloc)
        .map_err(|_| LoadError::OutOfMemory)?;
    zero_phys(run, pages * PAGE_SIZE);
    let mut carve = Carver {
        next: run,
        end: run + pages * PAGE_SIZE,
    };

    let cnode_pa = carve.take(CNODE_BITS)?;
    let stack_pa = carve.take(STACK_BITS)?;
    let bootinfo_pa = carve.take(BOOTINFO_BITS)?;
    let mut tables = [0u64; PAGE_TABLES as usize];
    for t in &mut tables {
        *t = carve.take(PAGE_TABLE_BITS)?;
    }
    let vspace_pa = carve.take(VSPACE_BITS)?;
    let tcb_pa = carve.take(TCB_BITS)?;
    let ipc_pa = carve.take(12)?;

    // The fixed capabilities.
    let cnode = Cap::CNode {
        obj: cnode_pa,
        radix: INIT_CNODE_RADIX as u8,
    };
    let fixed = |index: u64| cnode::slot_in(cnode, index).map_err(|_| LoadError::TooBig);
    delete::insert(None, fixed(init_slots::CNODE)?, cnode);
    let tcb: TcbRef = Obj::from_pa(tcb_pa);
    Tcb::init(tcb);
    delete::insert(None, fixed(init_slots::TCB)?, Cap::Tcb { obj: tcb_pa });
    let asid = mmu::alloc_asid().ok_or(LoadError::OutOfMemory)?;
    vspace::init_vspace(vspace_pa, asid);
    delete::insert(
        None,
        fixed(init_slots::VSPACE)?,
        Cap::VSpace { obj: vspace_pa },
    );
    delete::insert(None, fixed(init_slots::IRQ_CONTROL)?, Cap::IrqControl);
    delete::insert(None, fixed(init_slots::CONSOLE)?, Cap::Console);
    delete::insert(None, fixed(init_slots::POWER)?, Cap::PowerControl);
    let frame = |base: u64, bits: u32| Cap::Frame {
        base,
        size_bits: bits as u8,
        rights: CapRights::ALL,
        device: false,
    };
    delete::insert(None, fixed(init_slots::IPC_BUFFER)?, frame(ipc_pa, 12));
    delete::insert(
        None,
        fixed(init_slots::BOOTINFO)?,
        frame(bootinfo_pa, BOOTINFO_BITS),
    );
    delete::insert(None, fixed(init_slots::STACK)?, frame(stack_pa, STACK_BITS));

    // The address space.
    let mut space = Space {
        vspace: vspace_pa,
        tables,
        used: 0,
    };
    let mut slots = SlotFiller {
        cnode,
        next: init_slots::FIRST_VARIABLE,
    };
    // SAFETY: the boot-info frame is a zeroed frame of the run just reserved for init; the
    // kernel writes it only here, before init runs (init maps it read-only).
    let info = unsafe { &mut *(phys_to_virt(bootinfo_pa) as *mut BootInfo) };
    // The frame is zeroed, which is an empty boot info but for these two (building a
    // `BootInfo::new()` and copying it in would move 16 KiB through the stack).
    info.magic = abi::bootinfo::BOOTINFO_MAGIC;
    info.version = abi::bootinfo::BOOTINFO_VERSION;
    for s in &image.segments {
        load_segment(&mut space, &mut slots, &mut carve, info, file, s)?;
    }
    space.map(
        fixed(init_slots::STACK)?,
        INIT_STACK_TOP - INIT_STACK_SIZE,
        MapFlags::RW,
        INIT_STACK_SIZE / PAGE_SIZE,
    )?;
    space.map(
        fixed(init_slots::BOOTINFO)?,
        BOOTINFO_VADDR,
        MapFlags::READ,
        BOOTINFO_SIZE / PAGE_SIZE,
    )?;
    space.map(
        fixed(init_slots::IPC_BUFFER)?,
        INIT_IPC_BUFFER_VADDR,
        MapFlags::RW,
        1,
    )?;

    // Everything else the system has.
    for r in ranges_of(
        facts.initrd.base & !(PAGE_SIZE - 1),
        (facts.initrd.base + facts.initrd.size).next_multiple_of(PAGE_SIZE),
        21,
    ) {
        let cap = Cap::Frame {
            base: r.0,
            size_bits: r.1 as u8,
            rights: CapRights::READ,
            device: false,
        };
        let slot = slots.put(cap)?;
        info.push_initrd_frame(FrameDesc {
            slot,
            base: r.0,
            size_bits: u64::from(r.1),
        });
    }
    let free: heapless::Vec<MemRange, 64> = phys.free().collect();
    for range in &free {
        give_untypeds(&mut slots, info, range.base, range.base + range.size, false)?;
    }
    if let Some((base, end)) = device_ranges(m) {
        give_untypeds(&mut slots, info, base, end, true)?;
    }

    // The UART's page, for the console server (the kernel keeps its own mapping for its
    // banner and fatal messages).
    let uart_page = m.uart.base & !(PAGE_SIZE - 1);
    let uart_end = (m.uart.base + m.uart.size).next_multiple_of(PAGE_SIZE);
    if uart_end > uart_page && !overlaps_virtio(m, uart_page, uart_end) {
        give_untypeds(&mut slots, info, uart_page, uart_end, true)?;
        info.uart = abi::bootinfo::UartDesc {
            base: m.uart.base,
            size: m.uart.size,
            intid: m.uart_intid.map_or(0, u64::from),
        };
    }

    for v in &m.virtio_mmio {
        info.push_virtio(abi::bootinfo::VirtioDesc {
            base: v.reg.base,
            size: v.reg.size,
            intid: u64::from(v.intid),
        });
    }
    fill_boot_info(info, phys, facts, slots.next);
    configure_thread(tcb, cnode, &image)?;
    sched::make_ready(tcb);
    ROOT.store(tcb.kva(), Ordering::Relaxed);
    Ok(tcb)
}

/// Init's address space under construction: page tables come from a fixed set.
struct Space {
    vspace: u64,
    tables: [u64; PAGE_TABLES as usize],
    used: usize,
}

impl Space {
    /// Maps `pages` pages of the frame in `slot` at `vaddr`, adding tables as needed.
    fn map(
        &mut self,
        slot: SlotRef,
        vaddr: u64,
        flags: MapFlags,
        pages: u64,
    ) -> Result<(), LoadError> {
        for p in 0..pages {
            let va = vaddr + p * PAGE_SIZE;
            for level in 1..=3u8 {
                let Some(&candidate) = self.tables.get(self.used) else {
                    break;
                };
                match vspace::map_table(self.vspace, candidate, va, level) {
                    Ok(()) => self.used += 1,
                    Err(abi::Error::AlreadyMapped) => {}
                    Err(e) => return Err(LoadError::Map(e)),
                }
            }
        }
        vspace::map_frame(slot, self.vspace, vaddr, flags, 0, pages, false).map_err(LoadError::Map)
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

/// Copies one ELF segment into fresh frames (the rest of each page stays zero), each with
/// its own capability, and maps them with the segment's rights.
fn load_segment(
    space: &mut Space,
    slots: &mut SlotFiller,
    carve: &mut Carver,
    info: &mut BootInfo,
    file: &[u8],
    s: &Segment,
) -> Result<(), LoadError> {
    let mut flags = 0;
    if s.readable || s.executable || s.writable {
        flags |= MapFlags::READ.0;
    }
    if s.writable {
        flags |= MapFlags::WRITE.0;
    }
    if s.executable {
        flags |= MapFlags::EXECUTE.0;
    }
    let flags = MapFlags(flags);
    let first_page = s.vaddr & !(PAGE_SIZE - 1);
    let range = usize::try_from(s.file_offset)
        .ok()
        .zip(usize::try_from(s.file_offset + s.file_size).ok());
    let file_bytes = range
        .and_then(|(a, b)| file.get(a..b))
        .ok_or(LoadError::SegmentOutsideFile)?;
    for page in 0..segment_pages(s) {
        let va = first_page + page * PAGE_SIZE;
        let pa = carve.take(12)?;
        let from = va.max(s.vaddr) - s.vaddr;
        let to = (va + PAGE_SIZE - s.vaddr).min(s.file_size);
        if from < to {
            let dst = phys_to_virt(pa) + (s.vaddr + from - va);
            let src = file_bytes
                .get(from as usize..to as usize)
                .ok_or(LoadError::SegmentOutsideFile)?;
            // SAFETY: `dst..dst + src.len()` lies inside the fresh frame `pa` (page offsets
            // below PAGE_SIZE), which nothing else refers to yet.
            let dst = unsafe { core::slice::from_raw_parts_mut(dst as *mut u8, src.len()) };
            crate::arch::cpu::copy_bytes(dst, src);
        }
        let index = slots.put(Cap::Frame {
            base: pa,
            size_bits: 12,
            rights: CapRights::ALL,
            device: false,
        })?;
        space.map(
            cnode::slot_in(slots.cnode, index).map_err(|_| LoadError::TooBig)?,
            va,
            flags,
            1,
        )?;
        info.push_image_frame(ImageFrame {
            slot: index,
            vaddr: va,
            flags: flags.0,
        });
    }
    Ok(())
}

/// Splits [`base`, `end`) into naturally aligned power-of-two blocks of at most 2^`max_bits`.
/// Gives init untyped capabilities covering [`base`, `end`) (RAM, or device memory), each
/// in the next free slot and listed in the boot info.
fn give_untypeds(
    slots: &mut SlotFiller,
    info: &mut BootInfo,
    base: u64,
    end: u64,
    device: bool,
) -> Result<(), LoadError> {
    for (base, bits) in ranges_of(base, end, 47) {
        let slot = slots.put(Cap::Untyped {
            base,
            size_bits: bits as u8,
            free_offset: 0,
            device,
        })?;
        info.push_untyped(UntypedDesc {
            slot,
            base,
            size_bits: u64::from(bits),
            device: u64::from(device),
        });
    }
    Ok(())
}

fn ranges_of(mut base: u64, end: u64, max_bits: u32) -> impl Iterator<Item = (u64, u32)> {
    core::iter::from_fn(move || {
        if base >= end {
            return None;
        }
        let align = if base == 0 { 63 } else { base.trailing_zeros() };
        let fit = 63 - (end - base).leading_zeros();
        let bits = align.min(fit).min(max_bits);
        let block = (base, bits);
        base += 1 << bits;
        Some(block)
    })
}

/// Whether [`device_ranges`] covers any of `[base, end)`.
fn overlaps_virtio(m: &MachineInfo<'_>, base: u64, end: u64) -> bool {
    device_ranges(m).is_some_and(|(s, e)| base < e && s < end)
}

/// Device memory for user drivers: the virtio-mmio slots, as whole pages.
fn device_ranges(m: &MachineInfo<'_>) -> Option<(u64, u64)> {
    let start = m.virtio_mmio.iter().map(|s| s.reg.base).min()?;
    let end = m
        .virtio_mmio
        .iter()
        .map(|s| s.reg.base + s.reg.size)
        .max()?;
    Some((start & !(PAGE_SIZE - 1), end.next_multiple_of(PAGE_SIZE)))
}

/// Copies the root task's CSpace, VSpace and IPC buffer capabilities into its TCB and sets
/// its first registers.
fn configure_thread(t: TcbRef, cnode: Cap, image: &elf::UserImage) -> Result<(), LoadError> {
    for (which, index) in [
        (tcb::slot::CSPACE, init_slots::CNODE),
        (tcb::slot::VSPACE, init_slots::VSPACE),
        (tcb::slot::IPC_BUFFER, init_slots::IPC_BUFFER),
    ] {
        let src = cnode::slot_in(cnode, index).map_err(|_| LoadError::TooBig)?;
        let (copy, flags) = derive(
            &src.get().cap(),
            Derivation::Copy {
                rights: CapRights::ALL,
            },
        )
        .map_err(LoadError::Map)?;
        mdb::insert_child(&mut cnode::Slots, src, Tcb::slot_ref(t, which), copy, flags);
    }
    let tcb = t.get();
    tcb.refresh();
    if let Cap::Frame { base, .. } = tcb.cap_in(tcb::slot::IPC_BUFFER) {
        tcb.ipc_buffer = phys_to_virt(base);
    }
    tcb.priority = MAX_PRIORITY;
    tcb.ctx.elr = image.entry;
    tcb.ctx.sp = INIT_STACK_TOP;
    tcb.ctx.spsr = 0; // EL0t, interrupts unmasked
    tcb.ctx.x[0] = BOOTINFO_VADDR;
    tcb.ctx.tpidr = INIT_IPC_BUFFER_VADDR;
    Ok(())
}

fn fill_boot_info(
    info: &mut BootInfo,
    phys: &PhysMap,
    facts: &BootFacts<'_>,
    first_free_slot: u64,
) {
    info.ram_total = phys.total_ram();
    info.counter_frequency = facts.counter_frequency;
    info.tick_hz = facts.tick_hz;
    info.cnode_radix = INIT_CNODE_RADIX;
    info.first_free_slot = first_free_slot;
    for (r, kind) in phys.reserved() {
        info.push_reserved(r.base, r.size, kind);
    }
    info.initrd.base = facts.initrd.base;
    info.initrd.size = facts.initrd.size;
    info.set_bootargs(facts.bootargs.as_bytes());
}

const _: () = assert!(pte::PAGE_SIZE == 4096);
