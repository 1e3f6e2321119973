//! The scheduler: fixed priorities, round-robin within a priority, and the switch between
//! threads (address space and lazily the FP/SIMD registers).
//!
//! Ready queues hold every runnable thread, including the running one, which stays at the
//! head of its queue until it blocks, yields or uses up its time slice. Everything per core
//! lives in [`Cpu`]; there is one, but nothing assumes it.

use crate::arch::exception::UserContext;
use crate::arch::{fp, mmu};
use crate::object::Obj;
use crate::object::tcb::{State, TIME_SLICE, Tcb, TcbRef};
use core::cell::UnsafeCell;

const PRIORITIES: usize = 256;

/// Per-core scheduling state.
pub struct Cpu {
    current: u64,
    heads: [u64; PRIORITIES],
    tails: [u64; PRIORITIES],
    /// Bit p set when queue p is non-empty.
    bitmap: [u64; PRIORITIES / 64],
    /// The thread whose FP/SIMD registers are in the CPU (0: none).
    fp_owner: u64,
    /// The TTBR0 value in use.
    ttbr0: u64,
    /// Kernel entries and address-space switches, for benchmarks.
    pub entries: u64,
    pub space_switches: u64,
}

struct CpuCell(UnsafeCell<Cpu>);

// SAFETY: one core runs the kernel, with interrupts masked; see `cpu()`.
unsafe impl Sync for CpuCell {}

static CPU0: CpuCell = CpuCell(UnsafeCell::new(Cpu {
    current: 0,
    heads: [0; PRIORITIES],
    tails: [0; PRIORITIES],
    bitmap: [0; PRIORITIES / 64],
    fp_owner: 0,
    ttbr0: 0,
    entries: 0,
    space_switches: 0,
}));

/// This core's scheduling state.
#[expect(
    clippy::mut_from_ref,
    reason = "per-core state, used by one kernel path at a time"
)]
pub fn cpu() -> &'static mut Cpu {
    // SAFETY: only this core's kernel, running with interrupts masked, touches CPU0, and no
    // caller keeps the reference across a call that takes it again.
    unsafe { &mut *CPU0.0.get() }
}

/// The running thread, if any.
pub fn current() -> Option<TcbRef> {
    Obj::from_link(cpu().current)
}

/// Adds a thread to the back of its priority's ready queue and marks it Ready.
pub fn make_ready(t: TcbRef) {
    let tcb = t.get();
    if tcb.state == State::Ready {
        return;
    }
    tcb.state = State::Ready;
    enqueue_back(t);
}

fn enqueue_back(t: TcbRef) {
    let c = cpu();
    let p = t.get().priority as usize & (PRIORITIES - 1);
    let tail = c.tails[p];
    let tcb = t.get();
    tcb.sched_prev = tail;
    tcb.sched_next = 0;
    match Obj::<Tcb>::from_link(tail) {
        Some(tail) => tail.get().sched_next = t.kva(),
        None => c.heads[p] = t.kva(),
    }
    c.tails[p] = t.kva();
    c.bitmap[p / 64] |= 1 << (p % 64);
}

/// Takes a thread out of its ready queue (it stops being runnable).
pub fn dequeue(t: TcbRef) {
    let c = cpu();
    let tcb = t.get();
    let p = tcb.priority as usize & (PRIORITIES - 1);
    let (prev, next) = (tcb.sched_prev, tcb.sched_next);
    match Obj::<Tcb>::from_link(prev) {
        Some(prev) => prev.get().sched_next = next,
        None if c.heads[p] == t.kva() => c.heads[p] = next,
        None => return, // not queued
    }
    match Obj::<Tcb>::from_link(next) {
        Some(next) => next.get().sched_prev = prev,
        None => c.tails[p] = prev,
    }
    tcb.sched_prev = 0;
    tcb.sched_next = 0;
    if c.heads[p] == 0 {
        c.bitmap[p / 64] &= !(1 << (p % 64));
    }
}

/// Changes a thread's state from Ready to a blocked or inactive one.
pub fn block(t: TcbRef, state: State) {
    if t.get().state == State::Ready {
        dequeue(t);
    }
    t.get().state = state;
}

/// Moves the thread to the back of its queue (yield, end of time slice).
pub fn rotate(t: TcbRef) {
    if t.get().state == State::Ready {
        dequeue(t);
        enqueue_back(t);
    }
    t.get().time_slice = TIME_SLICE;
}

/// Changes a thread's priority, keeping its place in the ready queues consistent.
pub fn set_priority(t: TcbRef, priority: u64) {
    let ready = t.get().state == State::Ready;
    if ready {
        dequeue(t);
    }
    t.get().priority = priority;
    if ready {
        enqueue_back(t);
    }
}

/// The highest-priority runnable thread.
fn highest() -> Option<TcbRef> {
    let c = cpu();
    for word in (0..c.bitmap.len()).rev() {
        let bits = c.bitmap[word];
        if bits != 0 {
            let p = word * 64 + 63 - bits.leading_zeros() as usize;
            return Obj::from_link(c.heads[p]);
        }
    }
    None
}

/// Forgets a thread that is being destroyed.
pub fn forget(t: TcbRef) {
    let c = cpu();
    if c.current == t.kva() {
        c.current = 0;
    }
    if c.fp_owner == t.kva() {
        c.fp_owner = 0;
    }
}

/// Called on a timer tick: charges the running thread.
pub fn tick() {
    if let Some(t) = current() {
        let tcb = t.get();
        tcb.time_slice = tcb.time_slice.saturating_sub(1);
        if tcb.time_slice == 0 {
            rotate(t);
        }
    }
}

/// Picks the thread to run next (waiting for an interrupt while there is none) and switches
/// to it: its address space, and whether its FP/SIMD registers are live.
pub fn schedule() -> &'static mut UserContext {
    let next = loop {
        if let Some(t) = highest() {
            break t;
        }
        cpu().current = 0;
        crate::trap::idle_wait();
    };
    switch_to(next);
    &mut next.get().ctx
}

fn switch_to(next: TcbRef) {
    let c = cpu();
    c.current = next.kva();
    if let Some(ttbr0) = next.get().ttbr0()
        && ttbr0 != c.ttbr0
    {
        c.ttbr0 = ttbr0;
        c.space_switches += 1;
        mmu::set_ttbr0(ttbr0);
    }
    fp::set_enabled(c.fp_owner == next.kva());
}

/// The running thread used FP/SIMD while its registers were not loaded: save the owner's,
/// load the current thread's.
pub fn fp_trap() {
    let c = cpu();
    let Some(cur) = current() else { return };
    if let Some(owner) = Obj::<Tcb>::from_link(c.fp_owner) {
        fp::save(&mut owner.get().fp);
    }
    fp::set_enabled(true);
    fp::restore(&cur.get().fp);
    c.fp_owner = cur.kva();
}

/// Counts a kernel entry (for `DebugCounters`).
pub fn count_entry() {
    cpu().entries += 1;
}

/// Makes sure the CPU does not keep using a thread's address space after it is gone.
pub fn forget_ttbr0(ttbr0: u64) {
    let c = cpu();
    if c.ttbr0 == ttbr0 {
        c.ttbr0 = 0;
        mmu::set_ttbr0(0);
    }
}
