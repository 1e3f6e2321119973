//! The `virtio-drivers` HAL: DMA memory from the one physically contiguous frame init gave
//! the server (mapped at `FILE_DMA_WINDOW`, its physical address from `FramePhysAddr`),
//! handed out in pages. Buffers the driver shares with the device (request headers, data,
//! status bytes) live on the server's heap and stack, whose physical addresses the server
//! does not know: `share` copies them into DMA pages ("bounce buffers") and `unshare`
//! copies back what the device wrote. The page cache's block frames are the exception: the
//! cache tells the HAL each one's physical address ([`add_block_frame`]), and a buffer inside
//! one is given to the device in place, without a copy (a cache block read from or written
//! to the disk as one request moves 64 KiB once, not twice).

extern crate alloc;

use alloc::vec::Vec;
use proto::object::BLOCK_SIZE;
use proto::startup::FILE_CACHE_WINDOW;

use core::ptr::NonNull;
use spin::Mutex;
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

/// Pages of the pool (bits of `Pool::used`).
const MAX_PAGES: usize = 256;
const WORDS: usize = MAX_PAGES / 64;

/// The DMA pool: one frame, page by page.
///
/// # Invariants
/// `[va, va + pages * PAGE_SIZE)` is mapped read-write in this server and used by nothing
/// else; it is `[pa, pa + ...)` physically. Bit `i` of `used` is set while page `i` is
/// handed out.
struct Pool {
    va: u64,
    pa: u64,
    pages: usize,
    used: [u64; WORDS],
}

impl Pool {
    fn is_used(&self, i: usize) -> bool {
        self.used[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, first: usize, count: usize, used: bool) {
        for i in first..first + count {
            if used {
                self.used[i / 64] |= 1 << (i % 64);
            } else {
                self.used[i / 64] &= !(1 << (i % 64));
            }
        }
    }

    /// The first page of `count` free consecutive pages, now used.
    fn alloc(&mut self, count: usize) -> Option<usize> {
        let mut run = 0;
        for i in 0..self.pages {
            run = if self.is_used(i) { 0 } else { run + 1 };
            if run == count {
                let first = i + 1 - count;
                self.set(first, count, true);
                return Some(first);
            }
        }
        None
    }
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// The physical address of each page-cache block frame, by slot (mapped at
/// `FILE_CACHE_WINDOW + slot * BLOCK_SIZE`); 0 for a slot the device may not use in place.
static BLOCK_FRAMES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Says that cache slot `slot`'s frame (BLOCK_SIZE bytes, physically contiguous) is at
/// physical `pa`: buffers inside it go to the device in place from now on.
pub fn add_block_frame(slot: usize, pa: u64) {
    let mut frames = BLOCK_FRAMES.lock();
    if frames.len() <= slot {
        frames.resize(slot + 1, 0);
    }
    frames[slot] = pa;
}

/// The physical address of `[va, va + len)` if it lies inside one cache block frame.
fn in_block_frame(va: u64, len: usize) -> Option<PhysAddr> {
    let offset = va.checked_sub(FILE_CACHE_WINDOW)?;
    let slot = usize::try_from(offset / BLOCK_SIZE).ok()?;
    let within = offset % BLOCK_SIZE;
    if within + len as u64 > BLOCK_SIZE {
        return None;
    }
    let pa = *BLOCK_FRAMES.lock().get(slot)?;
    (pa != 0).then_some(pa + within)
}

/// Gives the pool its frame.
///
/// # Safety
/// `[va, va + size)` must be mapped read-write for the rest of the server's life, used by
/// nothing else, and be physical memory `[pa, pa + size)`.
pub unsafe fn init(va: u64, pa: u64, size: u64) {
    let pages = usize::try_from(size / PAGE_SIZE as u64).map_or(MAX_PAGES, |p| p.min(MAX_PAGES));
    *POOL.lock() = Some(Pool {
        va,
        pa,
        pages,
        used: [0; WORDS],
    });
}

/// `count` pages of the pool: their physical and virtual addresses. The driver cannot
/// handle failure here, so running out is fatal (the pool is sized for one queue and a few
/// requests in flight).
fn alloc_pages(count: usize) -> (PhysAddr, NonNull<u8>) {
    let mut pool = POOL.lock();
    let Some(p) = pool.as_mut() else {
        panic!("file: DMA pool used before init");
    };
    let Some(first) = p.alloc(count) else {
        panic!("file: DMA pool exhausted ({count} pages asked)");
    };
    let offset = (first * PAGE_SIZE) as u64;
    let va = p.va + offset;
    match NonNull::new(va as *mut u8) {
        Some(ptr) => (p.pa + offset, ptr),
        None => panic!("file: DMA pool at address 0"),
    }
}

fn free_pages(pa: PhysAddr, count: usize) {
    if let Some(p) = POOL.lock().as_mut()
        && let Some(offset) = pa.checked_sub(p.pa)
    {
        let first = (offset / PAGE_SIZE as u64) as usize;
        if first + count <= p.pages {
            p.set(first, count, false);
        }
    }
}

/// The pool's virtual address of physical `pa`.
fn va_of(pa: PhysAddr) -> Option<*mut u8> {
    let pool = POOL.lock();
    let p = pool.as_ref()?;
    let offset = pa.checked_sub(p.pa)?;
    (offset < (p.pages * PAGE_SIZE) as u64).then(|| (p.va + offset) as *mut u8)
}

fn pages_for(len: usize) -> usize {
    len.div_ceil(PAGE_SIZE).max(1)
}

/// The HAL `virtio-drivers` calls.
pub struct DmaHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned pages of the pool that nothing else uses
// until `dma_dealloc` (the bitmap says so); `share` returns the physical address of pool pages
// holding a copy of the buffer, and `unshare` copies the device's bytes back before freeing
// them; or, for a buffer inside a cache block frame, the frame's own physical address (the
// frame is physically contiguous, mapped for the server's life; while the request is in
// flight no task has the block mapped, since a block is read only into a free slot, which
// stays reserved until the read's completion is collected, and written back only after
// its mappings were revoked, the server waiting for the write). The MMIO window is mapped by init; the driver never asks to translate PCI BARs.
unsafe impl Hal for DmaHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let (pa, va) = alloc_pages(pages);
        // SAFETY: `pages` pages at `va` are pool memory just reserved for this caller.
        unsafe { core::ptr::write_bytes(va.as_ptr(), 0, pages * PAGE_SIZE) };
        (pa, va)
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        free_pages(paddr, pages);
        0
    }

    unsafe fn mmio_phys_to_virt(_paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        panic!("file: virtio-mmio needs no physical-to-virtual translation");
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        if let Some(pa) = in_block_frame(buffer.as_ptr().cast::<u8>() as u64, len) {
            return pa;
        }
        let (pa, va) = alloc_pages(pages_for(len));
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller promises `buffer` is valid for `len` bytes; `va` is `len`
            // bytes (or more) of pool memory reserved above; they do not overlap.
            unsafe {
                core::ptr::copy_nonoverlapping(buffer.as_ptr().cast::<u8>(), va.as_ptr(), len)
            };
        }
        pa
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let len = buffer.len();
        if in_block_frame(buffer.as_ptr().cast::<u8>() as u64, len) == Some(paddr) {
            // Given in place: the device wrote (or read) the frame itself.
            return;
        }
        if direction != BufferDirection::DriverToDevice
            && let Some(va) = va_of(paddr)
        {
            // SAFETY: `paddr` came from `share` for this buffer, so `va` holds `len` bytes the
            // device wrote; the caller promises `buffer` is valid and not otherwise used.
            unsafe { core::ptr::copy_nonoverlapping(va, buffer.as_ptr().cast::<u8>(), len) };
        }
        free_pages(paddr, pages_for(len));
    }
}
