//! The global allocator: a buddy allocator (`buddy_system_allocator`) behind `alloc`.
//!
//! Servers hand it the heap init mapped for them ([`init`], from their startup page); user
//! tasks start with an empty heap that grows on demand: when an allocation does not fit, the
//! heap asks vm for more anonymous memory with `mmap` ([`GROW_BYTES`] at a time, or more for
//! a large allocation). The root task (init) adds a region it mapped itself.

use buddy_system_allocator::{Heap, LockedHeapWithRescue};
use core::alloc::Layout;
use core::sync::atomic::{AtomicBool, Ordering};

/// Largest block order: blocks up to 2^31 bytes.
const ORDER: usize = 32;
/// What a user task's heap grows by at least.
pub const GROW_BYTES: u64 = 1 << 20;

#[global_allocator]
static HEAP: LockedHeapWithRescue<ORDER> = LockedHeapWithRescue::new(grow);

/// Whether the heap may grow with `mmap` (user tasks only: servers never fault and init
/// has no vm to ask).
static GROWS: AtomicBool = AtomicBool::new(false);

/// Gives the heap `[base, base + size)`.
///
/// # Safety
///
/// The range must be mapped read-write for the rest of the program's life, used by nothing
/// else, and not overlap any range given before.
pub unsafe fn init(base: u64, size: u64) {
    let (Ok(start), Ok(size)) = (usize::try_from(base), usize::try_from(size)) else {
        return;
    };
    // SAFETY: the caller promises the range is mapped, writable, exclusive and new.
    unsafe { HEAP.lock().add_to_heap(start, start.saturating_add(size)) };
}

/// Lets the heap grow with anonymous `mmap` when it runs out (the runtime does this for user
/// tasks before `main`).
pub(crate) fn enable_growth() {
    GROWS.store(true, Ordering::Relaxed);
}

/// Bytes the heap manages in all, and bytes handed out (rounded to blocks).
pub fn stats() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_total_bytes(), heap.stats_alloc_actual())
}

/// Bytes of the heap not handed out (some of them may be too scattered for a large block).
pub fn free_bytes() -> usize {
    let (total, used) = stats();
    total.saturating_sub(used)
}

/// The low-water mark: servers answer a request that would make their heap hold more
/// (a descriptor, a region, an object, a staged transfer) with `ENOMEM` or their limit's
/// errno once less than this is free, so that the small allocations of the requests they
/// still serve (and of the ones that give memory back) always succeed: an eighth of the
/// heap, at least 64 KiB.
pub fn low_water() -> usize {
    (stats().0 / 8).max(64 << 10)
}

/// Whether the heap is below its [`low_water`] mark (only servers, whose heap does not
/// grow, need to ask).
pub fn is_low() -> bool {
    free_bytes() < low_water()
}

/// Called by the allocator, with its lock held, when `layout` does not fit: maps more
/// anonymous memory and adds it. On failure the allocation returns null, which `alloc`
/// reports as an allocation error (the panic handler prints it).
fn grow(heap: &mut Heap<ORDER>, layout: &Layout) {
    if !GROWS.load(Ordering::Relaxed) {
        return;
    }
    // A buddy block of the layout's size must fit aligned inside the new range: twice the
    // rounded-up size always does.
    let need = (layout.size().max(layout.align()) as u64)
        .next_power_of_two()
        .saturating_mul(2);
    let len = need.max(GROW_BYTES);
    let prot = proto::prot::READ | proto::prot::WRITE;
    let flags = proto::map::PRIVATE | proto::map::ANONYMOUS;
    if let Ok(addr) = crate::posix::mmap(0, len, prot, flags, u64::MAX, 0)
        && let (Ok(start), Ok(len)) = (usize::try_from(addr), usize::try_from(len))
    {
        // SAFETY: vm just made [addr, addr + len) a private anonymous read-write region of
        // this task that nothing else knows about; the heap keeps it for good.
        unsafe { heap.add_to_heap(start, start + len) };
    }
}
