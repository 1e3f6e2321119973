//! Translation tables: the kernel's upper-half map and user address spaces (TTBR0 with ASIDs).
//!
//! Descriptor encoding is `kernel_core::pte` (host-tested); this file only walks tables in
//! memory. Kernel virtual memory:
//!
//! ```text
//!   0xffff_ffff_c000_0000  KERNEL_VBASE  kernel image window (boot.rs)
//!   0xffff_ffff_8000_0000  DTB_WINDOW    device tree, 4 MiB (boot.rs)
//!   0xffff_8000_0000_0000  DEVICE_BASE   + physical address: MMIO the kernel drives (UART, GIC)
//!   0xffff_0000_0000_0000  LINEAR_BASE   + physical address: all RAM, Normal, never executable
//! ```

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel_core::pte::{self, Descriptor, ENTRIES_PER_TABLE, MapAttrs};

pub const KERNEL_VBASE: u64 = 0xffff_ffff_c000_0000;
pub const DTB_WINDOW: u64 = 0xffff_ffff_8000_0000;
pub const DTB_WINDOW_SIZE: u64 = 4 << 20;
pub const DEVICE_BASE: u64 = 0xffff_8000_0000_0000;
pub const LINEAR_BASE: u64 = 0xffff_0000_0000_0000;

type Table = [u64; ENTRIES_PER_TABLE];

/// A page-aligned translation table in the kernel image (.bss).
#[repr(C, align(4096))]
pub struct BootTable(UnsafeCell<Table>);

// SAFETY: the tables are written only during single-threaded boot (by boot.rs before Rust
// runs, then by `build_kernel_map`), and read by the MMU.
unsafe impl Sync for BootTable {}

impl BootTable {
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; ENTRIES_PER_TABLE]))
    }

    fn ptr(&self) -> *mut Table {
        self.0.get()
    }
}

/// Where translation tables come from, and how the kernel reaches them.
pub trait TableFrames {
    /// A zeroed, 4 KiB-aligned frame for a new table: its physical address.
    fn new_table(&mut self) -> Option<u64>;
    /// The kernel virtual address of the table at physical address `pa`.
    fn table_ptr(&self, pa: u64) -> *mut Table;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No memory for another translation table.
    OutOfTables,
    /// Part of the range is mapped already.
    AlreadyMapped,
    /// Addresses or size not page aligned.
    Misaligned,
}

/// Maps `[va, va + size)` to `[pa, pa + size)` under the table at `root_pa`, using 1 GiB and
/// 2 MiB blocks where alignment allows and `blocks` is set, else 4 KiB pages.
pub fn map_range(
    frames: &mut impl TableFrames,
    root_pa: u64,
    va: u64,
    pa: u64,
    size: u64,
    attrs: MapAttrs,
    blocks: bool,
) -> Result<(), MapError> {
    let page = pte::PAGE_SIZE;
    if !(va.is_multiple_of(page) && pa.is_multiple_of(page) && size.is_multiple_of(page)) {
        return Err(MapError::Misaligned);
    }
    let mut done = 0;
    while done < size {
        let (v, p, left) = (va + done, pa + done, size - done);
        let level = (1..=3)
            .find(|&l| {
                let s = pte::level_size(l);
                (l == 3 || blocks) && v % s == 0 && p % s == 0 && left >= s
            })
            .unwrap_or(3);
        let slot = walk_to(frames, root_pa, v, level)?;
        // SAFETY: `walk_to` returned a pointer into a live table reached through `frames`.
        unsafe {
            if Descriptor::from_raw(slot.read()).is_valid() {
                return Err(MapError::AlreadyMapped);
            }
            slot.write(Descriptor::leaf(level, p, attrs).raw());
        }
        done += pte::level_size(level);
    }
    barrier_tables();
    Ok(())
}

/// Returns the descriptor slot for `va` at `level`, creating intermediate tables.
fn walk_to(
    frames: &mut impl TableFrames,
    root_pa: u64,
    va: u64,
    level: u8,
) -> Result<*mut u64, MapError> {
    let mut table_pa = root_pa;
    for l in 0..level {
        let slot = slot_ptr(frames, table_pa, va, l);
        // SAFETY: `slot` points into a live table owned by `frames`.
        let desc = Descriptor::from_raw(unsafe { slot.read() });
        table_pa = if desc.is_table(l) {
            desc.output_address(l)
        } else if desc.is_valid() {
            return Err(MapError::AlreadyMapped);
        } else {
            let new = frames.new_table().ok_or(MapError::OutOfTables)?;
            // SAFETY: as above; the new table is zeroed, so installing it maps nothing yet.
            unsafe { slot.write(Descriptor::table(new).raw()) };
            new
        };
    }
    Ok(slot_ptr(frames, table_pa, va, level))
}

fn slot_ptr(frames: &impl TableFrames, table_pa: u64, va: u64, level: u8) -> *mut u64 {
    let table = frames.table_ptr(table_pa);
    // The index is < 512, so the slot stays inside the table.
    table
        .cast::<u64>()
        .wrapping_add(pte::table_index(va, level))
}

/// Makes table writes visible to the table walker (ARM ARM D8.2.6 / B2.3.12).
fn barrier_tables() {
    // SAFETY: barriers only order memory accesses.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}

/// Tables for the kernel's own map, from a pool in the kernel image (no RAM is known to be
/// free before the device tree is read).
pub struct KernelTables {
    /// Physical address of the 2 MiB-aligned base of the kernel window.
    window_pa: u64,
}

const POOL_TABLES: usize = 32;
static POOL: [BootTable; POOL_TABLES] = [const { BootTable::new() }; POOL_TABLES];
static POOL_USED: AtomicUsize = AtomicUsize::new(0);

impl KernelTables {
    pub fn new(image_pa: u64) -> Self {
        Self {
            window_pa: image_pa & !(pte::level_size(2) - 1),
        }
    }

    /// Physical address of a table inside the kernel image.
    pub fn image_pa(&self, table: &BootTable) -> u64 {
        table.ptr() as u64 - KERNEL_VBASE + self.window_pa
    }

    /// Maps RAM at `LINEAR_BASE + pa`, readable and writable, never executable.
    pub fn map_linear(&mut self, pa: u64, size: u64) -> Result<(), MapError> {
        let root = self.image_pa(&super::boot::BOOT_L0_HI);
        map_range(
            self,
            root,
            LINEAR_BASE + pa,
            pa,
            size,
            MapAttrs::KERNEL_RW,
            true,
        )
    }

    /// Maps device registers at `DEVICE_BASE + pa` (4 KiB pages, Device-nGnRE).
    pub fn map_device(&mut self, pa: u64, size: u64) -> Result<u64, MapError> {
        let root = self.image_pa(&super::boot::BOOT_L0_HI);
        let page = pte::PAGE_SIZE;
        let start = pa & !(page - 1);
        let end = (pa + size).next_multiple_of(page);
        match map_range(
            self,
            root,
            DEVICE_BASE + start,
            start,
            end - start,
            MapAttrs::KERNEL_DEVICE,
            false,
        ) {
            Ok(()) | Err(MapError::AlreadyMapped) => Ok(DEVICE_BASE + pa),
            Err(e) => Err(e),
        }
    }
}

impl TableFrames for KernelTables {
    fn new_table(&mut self) -> Option<u64> {
        let i = POOL_USED.fetch_add(1, Ordering::Relaxed);
        POOL.get(i).map(|t| self.image_pa(t))
    }

    fn table_ptr(&self, pa: u64) -> *mut Table {
        (pa - self.window_pa + KERNEL_VBASE) as *mut Table
    }
}

/// The kernel virtual address of RAM at `pa` (through the linear map).
pub const fn phys_to_virt(pa: u64) -> u64 {
    LINEAR_BASE + pa
}

/// Makes freshly written instructions at `va..va + len` visible to instruction fetch
/// (ARM ARM B2.4.4: clean D-cache to PoU, invalidate I-cache, synchronise).
pub fn sync_icache(va: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 (cache type) has no side effects.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4 << ((ctr >> 16) & 0xf); // CTR_EL0.DminLine: log2 of words per line
    let mut a = va & !(line - 1);
    while a < va + len {
        // SAFETY: cleaning a cache line by VA has no effect on memory contents; `a` lies in
        // the linear map, which is always mapped.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // SAFETY: cache and barrier instructions only.
    unsafe {
        core::arch::asm!(
            "dsb ish",
            "ic ialluis",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Installs a user address space: TTBR0_EL1 = root table | ASID << 48 (0: none).
pub fn set_ttbr0(value: u64) {
    // SAFETY: TTBR0 only governs EL0 addresses below 2^48; the kernel runs from TTBR1. With
    // ASID-tagged TLB entries no flush is needed on a switch.
    unsafe {
        core::arch::asm!("msr ttbr0_el1, {}", "isb", in(reg) value, options(nostack, preserves_flags))
    };
}

/// Makes new or changed table entries visible to the table walker.
pub fn publish_tables() {
    barrier_tables();
}

/// Drops the TLB entry of one user page (ARM ARM D8.13, TLBI VAE1IS).
pub fn flush_page(asid: u16, va: u64) {
    let arg = ((va >> 12) & ((1 << 44) - 1)) | (u64::from(asid) << 48);
    // SAFETY: TLB maintenance only; the barriers order it after the table write.
    unsafe {
        core::arch::asm!("dsb ishst", "tlbi vae1is, {}", "dsb ish", "isb", in(reg) arg, options(nostack, preserves_flags))
    };
}

/// Drops every TLB entry of an address space (TLBI ASIDE1IS).
pub fn flush_asid(asid: u16) {
    let arg = u64::from(asid) << 48;
    // SAFETY: TLB maintenance only.
    unsafe {
        core::arch::asm!("dsb ishst", "tlbi aside1is, {}", "dsb ish", "isb", in(reg) arg, options(nostack, preserves_flags))
    };
}

/// Address-space identifiers: a bitmap over 16-bit ASIDs (ASID 0 is never handed out).
struct Asids(core::cell::UnsafeCell<[u64; 1024]>);

// SAFETY: used only by the kernel on one core with interrupts masked.
unsafe impl Sync for Asids {}

static ASIDS: Asids = Asids(core::cell::UnsafeCell::new([0; 1024]));
static ASID_LIMIT: AtomicUsize = AtomicUsize::new(256);

/// Records how many ASIDs the CPU has (boot.rs set TCR_EL1.AS when it has 16 bits of them).
pub fn init_asids() {
    let tcr: u64;
    // SAFETY: reading TCR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, tcr_el1", out(reg) tcr, options(nomem, nostack)) };
    ASID_LIMIT.store(
        if tcr & (1 << 36) != 0 {
            1 << 16
        } else {
            1 << 8
        },
        Ordering::Relaxed,
    );
}
fn asid_bits() -> &'static mut [u64; 1024] {
    // SAFETY: see `Asids`; callers do not keep the reference.
    unsafe { &mut *ASIDS.0.get() }
}

/// How many ASIDs are free (ASID 0 is never handed out).
pub fn free_asids() -> usize {
    let limit = ASID_LIMIT.load(Ordering::Relaxed);
    let used: usize = asid_bits()[..limit / 64]
        .iter()
        .map(|w| w.count_ones() as usize)
        .sum();
    limit - 1 - used
}

/// A free ASID.
pub fn alloc_asid() -> Option<u16> {
    let limit = ASID_LIMIT.load(Ordering::Relaxed);
    for (w, word) in asid_bits()[..limit / 64].iter_mut().enumerate() {
        let free = !*word & if w == 0 { !1 } else { !0 };
        if free != 0 {
            let b = free.trailing_zeros() as usize;
            *word |= 1 << b;
            return Some((w * 64 + b) as u16);
        }
    }
    None
}

pub fn free_asid(asid: u16) {
    let a = usize::from(asid);
    asid_bits()[a / 64] &= !(1 << (a % 64));
}
