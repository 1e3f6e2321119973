//! The scheduler: fixed priorities, round-robin within a priority, and the switch between
//! threads (address space and lazily the FP/SIMD registers).
//!
//! Ready queues hold the runnable threads except the running one (seL4's "lazy" scheduling:
//! a thread that runs and then blocks, as in every IPC round trip, never touches a queue).
//! The running thread goes back into a queue only when something else is chosen while it
//! is still runnable: at the front when a higher priority preempts it, at the back when it
//! yields or its time slice ends. Everything per core lives in [`Cpu`]; there is one, but
//! nothing assumes it.

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
    /// Bit p set when queue p is non-empty; `top` bit w set when `bitmap[w]` is nonzero, so
    /// the highest priority is two count-leading-zeros away.
    bitmap: [u64; PRIORITIES / 64],
    top: u64,
    /// A thread woken during this kernel entry and not queued (0: none): when the running
    /// thread blocks, as in most IPC, the kernel switches to it without touching a queue.
    pending: u64,
    /// The thread whose FP/SIMD registers are in the CPU (0: none).
    fp_owner: u64,
    /// The TTBR0 value in use.
    ttbr0: u64,
    /// Whether EL0 may use FP/SIMD now (CPACR_EL1.FPEN).
    fp_enabled: bool,
    /// Kernel entries and address-space switches, for benchmarks.
    pub entries: u64,
    pub space_switches: u64,
}

struct CpuCell(UnsafeCell<Cpu>);

// SAFETY: one core runs the kernel, with interrupts masked; see `cpu()`.
unsafe impl Sync for CpuCell {}

static CPU0: CpuCell = CpuCell(UnsafeCell::new(Cpu {
    current: 0,
    pending: 0,
    heads: [0; PRIORITIES],
    tails: [0; PRIORITIES],
    bitmap: [0; PRIORITIES / 64],
    top: 0,
    fp_owner: 0,
    ttbr0: 0,
    fp_enabled: true,
    entries: 0,
    space_switches: 0,
}));

/// This core's scheduling state.
pub fn cpu() -> &'static mut Cpu {
    // SAFETY: only this core's kernel, running with interrupts masked, touches CPU0, and no
    // caller keeps the reference across a call that takes it again.
    unsafe { &mut *CPU0.0.get() }
}

/// The running thread, if any.
pub fn current() -> Option<TcbRef> {
    Obj::from_link(cpu().current)
}

/// Marks a thread Ready. It becomes the pending thread (or, if there is one already, the
/// one of lower priority is queued); the running thread needs no queue.
pub fn make_ready(t: TcbRef) {
    let tcb = t.get();
    if tcb.state == State::Ready {
        return;
    }
    tcb.state = State::Ready;
    let c = cpu();
    if c.current == t.kva() {
        return;
    }
    match Obj::<Tcb>::from_link(c.pending).filter(|p| *p != t && runnable_unqueued(*p)) {
        None => c.pending = t.kva(),
        Some(p) if t.get().priority > p.get().priority => {
            enqueue(p, false);
            c.pending = t.kva();
        }
        Some(_) => enqueue(t, false),
    }
}

/// Marks a thread Ready and puts it at the front of its priority's queue (a thread an
/// interrupt wakes). It does not preempt a running thread of its priority, but runs next
/// when that one blocks, yields or ends its time slice, before the threads that were already
/// waiting: a disk completion for a task waits for one time slice of a task that computes,
/// not one of each. A thread of higher priority than the running one is still chosen at
/// the end of this kernel entry.
pub fn make_ready_queued(t: TcbRef) {
    let tcb = t.get();
    if tcb.state == State::Ready {
        return;
    }
    tcb.state = State::Ready;
    if cpu().current != t.kva() {
        enqueue(t, true);
    }
}

/// Ready and in no queue (the running or pending thread).
fn runnable_unqueued(t: TcbRef) -> bool {
    t.get().state == State::Ready && !is_queued(t)
}

fn is_queued(t: TcbRef) -> bool {
    let tcb = t.get();
    tcb.sched_prev != 0 || cpu().heads[tcb.priority as usize & (PRIORITIES - 1)] == t.kva()
}

/// Marks a thread Ready without queueing it: the caller switches to it at once.
pub fn make_running(t: TcbRef) {
    t.get().state = State::Ready;
}

fn enqueue(t: TcbRef, front: bool) {
    let c = cpu();
    let p = t.get().priority as usize & (PRIORITIES - 1);
    let tcb = t.get();
    if front {
        let head = c.heads[p];
        tcb.sched_prev = 0;
        tcb.sched_next = head;
        match Obj::<Tcb>::from_link(head) {
            Some(head) => head.get().sched_prev = t.kva(),
            None => c.tails[p] = t.kva(),
        }
        c.heads[p] = t.kva();
    } else {
        let tail = c.tails[p];
        tcb.sched_prev = tail;
        tcb.sched_next = 0;
        match Obj::<Tcb>::from_link(tail) {
            Some(tail) => tail.get().sched_next = t.kva(),
            None => c.heads[p] = t.kva(),
        }
        c.tails[p] = t.kva();
    }
    c.bitmap[p / 64] |= 1 << (p % 64);
    c.top |= 1 << (p / 64);
}

/// Takes a thread out of its ready queue, if it is in one.
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
        if c.bitmap[p / 64] == 0 {
            c.top &= !(1 << (p / 64));
        }
    }
}

/// Changes a thread's state from Ready to a blocked or inactive one.
pub fn block(t: TcbRef, state: State) {
    if t.get().state == State::Ready {
        dequeue(t);
    }
    t.get().state = state;
}

/// Changes a thread's priority, keeping its place in the ready queues consistent.
pub fn set_priority(t: TcbRef, priority: u64) {
    let queued = is_queued(t);
    if queued {
        dequeue(t);
    }
    t.get().priority = priority;
    if queued {
        enqueue(t, false);
    }
}

/// The highest priority with a queued thread.
fn highest_priority() -> Option<usize> {
    let c = cpu();
    if c.top == 0 {
        return None;
    }
    let word = 63 - c.top.leading_zeros() as usize;
    Some(word * 64 + 63 - c.bitmap[word & 3].leading_zeros() as usize)
}

/// Whether `t` may run right away once the running thread blocks: no queued or pending
/// thread has a higher priority.
pub fn may_run_at_once(t: TcbRef) -> bool {
    let c = cpu();
    let prio = t.get().priority;
    c.pending == 0 && highest_priority().is_none_or(|q| q as u64 <= prio)
}

/// Chooses the next thread among the running one (if still runnable), the pending one and
/// the head of the highest non-empty queue: the highest priority wins, ties in that order.
/// A running thread that loses goes to the front of its queue (it was preempted), a
/// pending one to the back.
fn choose() -> Option<TcbRef> {
    let c = cpu();
    let running = Obj::<Tcb>::from_link(c.current).filter(|t| runnable_unqueued(*t));
    let pending = Obj::<Tcb>::from_link(core::mem::take(&mut c.pending))
        .filter(|t| runnable_unqueued(*t) && Some(*t) != running);
    let queued = highest_priority();
    let prio = |t: Option<TcbRef>| t.map(|t| t.get().priority as i64).unwrap_or(-1);
    let (r, p, q) = (
        prio(running),
        prio(pending),
        queued.map_or(-1, |q| q as i64),
    );
    if r >= 0 && r >= p && r >= q {
        if let Some(p) = pending {
            enqueue(p, false);
        }
        return running;
    }
    if let Some(r) = running {
        enqueue(r, true);
    }
    if p >= 0 && p >= q {
        return pending;
    }
    if let Some(p) = pending {
        enqueue(p, false);
    }
    let next = Obj::<Tcb>::from_link(c.heads[queued?])?;
    dequeue(next);
    Some(next)
}

/// Forgets a thread that is being destroyed.
pub fn forget(t: TcbRef) {
    let c = cpu();
    if c.current == t.kva() {
        c.current = 0;
    }
    if c.pending == t.kva() {
        c.pending = 0;
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
            yield_current();
        }
    }
}

/// The running thread goes to the back of its queue with a new time slice.
pub fn yield_current() {
    if let Some(t) = current() {
        t.get().time_slice = TIME_SLICE;
        if t.get().state == State::Ready {
            enqueue(t, false);
        }
    }
}

/// Picks the thread to run next (waiting for an interrupt while there is none) and switches
/// to it: its address space, and whether its FP/SIMD registers are live.
pub fn schedule() -> &'static mut UserContext {
    let next = loop {
        if let Some(t) = choose() {
            break t;
        }
        cpu().current = 0;
        crate::trap::idle_wait();
    };
    switch_to(next)
}

/// Makes `next` the running thread and returns its context for the exit path.
pub fn switch_to(next: TcbRef) -> &'static mut UserContext {
    let c = cpu();
    c.current = next.kva();
    let ttbr0 = next.get().ttbr0;
    if ttbr0 != 0 && ttbr0 != c.ttbr0 {
        c.ttbr0 = ttbr0;
        c.space_switches += 1;
        mmu::set_ttbr0(ttbr0);
    }
    let fp_live = c.fp_owner == next.kva();
    if fp_live != c.fp_enabled {
        c.fp_enabled = fp_live;
        fp::set_enabled(fp_live);
    }
    &mut next.get().ctx
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
    c.fp_enabled = true;
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
