//! Thread control blocks.

use super::Obj;
use super::cnode::Slot;
use crate::arch::exception::UserContext;
use kernel_core::cap::Cap;

/// FP/SIMD registers of a thread, saved lazily (see `sched`).
#[derive(Debug)]
#[repr(C, align(16))]
pub struct FpState {
    pub q: [u128; 32],
    pub fpcr: u64,
    pub fpsr: u64,
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum State {
    /// Not started, or suspended.
    Inactive = 0,
    /// Runnable (in a ready queue), or running.
    Ready = 1,
    /// Waiting to send on `blocked_on` (an endpoint).
    BlockedSend = 2,
    /// Waiting to receive on `blocked_on` (an endpoint).
    BlockedRecv = 3,
    /// Waiting for the reply to a call or a fault.
    BlockedReply = 4,
    /// Waiting on `blocked_on` (a notification).
    BlockedNotification = 5,
}

/// The TCB's own capability slots.
pub mod slot {
    pub const CSPACE: usize = 0;
    pub const VSPACE: usize = 1;
    pub const IPC_BUFFER: usize = 2;
    pub const FAULT_ENDPOINT: usize = 3;
    pub const COUNT: usize = 4;
}

/// Flags of a thread blocked in `BlockedSend`.
pub mod send {
    /// It is a `Call`: it waits for the reply afterwards.
    pub const CALL: u64 = 1;
    /// Its endpoint capability has GRANT: it may send a capability.
    pub const GRANT: u64 = 2;
    /// The message is a fault message (in `fault_*`), not the thread's registers.
    pub const FAULT: u64 = 4;
}

/// A thread (`abi::object::TCB_BITS` bytes).
#[derive(Debug)]
#[repr(C)]
pub struct Tcb {
    /// The user registers; must stay first (the exception vectors save into it).
    pub ctx: UserContext,
    pub slots: [Slot; slot::COUNT],
    pub fp: FpState,
    pub state: State,
    pub priority: u64,
    /// Ticks left of the time slice.
    pub time_slice: u64,
    /// Ready-queue links.
    pub sched_prev: u64,
    pub sched_next: u64,
    /// Links in the queue of the endpoint or notification it is blocked on.
    pub wait_prev: u64,
    pub wait_next: u64,
    /// The endpoint or notification it is blocked on.
    pub blocked_on: u64,
    /// While `BlockedSend`: the badge of the capability it sends with, and `send::*` flags.
    pub send_badge: u64,
    pub send_flags: u64,
    /// The thread this one owes a reply to.
    pub reply_to: u64,
    /// The thread that owes this one a reply (while `BlockedReply`).
    pub reply_from: u64,
    /// While `BlockedReply` with its reply saved (`SaveCaller`): the slot holding the
    /// `Reply` capability to this thread (then `reply_from` is 0). Kept exact both ways: the
    /// slot's capability names this thread exactly while this names the slot.
    pub reply_slot: u64,
    pub bound_notification: u64,
    /// Kernel address of the IPC buffer frame, 0 if none.
    pub ipc_buffer: u64,
    /// A fault message waiting to be delivered: label and MR0..MR5.
    pub fault_label: u64,
    pub fault_length: u64,
    pub fault_mrs: [u64; 6],
    /// Cached from the CSPACE and VSPACE slots by [`Tcb::refresh`] (the hot paths read these
    /// instead of decoding capabilities): CNode address and radix, TTBR0 value (0: none).
    pub cspace_root: u64,
    pub cspace_radix: u64,
    pub ttbr0: u64,
}

const _: () = assert!(core::mem::size_of::<Tcb>() <= 1 << abi::object::TCB_BITS);
const _: () = assert!(core::mem::offset_of!(Tcb, ctx) == 0);

/// Ticks in one time slice.
pub const TIME_SLICE: u64 = 5;

pub type TcbRef = Obj<Tcb>;

impl Tcb {
    /// Sets up a freshly zeroed TCB: inactive, priority 0, its slots owned by it.
    pub fn init(this: TcbRef) {
        let t = this.get();
        t.state = State::Inactive;
        t.time_slice = TIME_SLICE;
        for s in &mut t.slots {
            s.owner = this.kva();
        }
    }

    pub fn cap_in(&self, which: usize) -> Cap {
        self.slots[which].cap()
    }

    pub fn slot_ref(this: TcbRef, which: usize) -> Obj<Slot> {
        Obj::from_kva(core::ptr::addr_of!(this.get().slots[which]) as u64)
    }

    /// Recomputes the cached CSpace and VSpace fields after their slots changed.
    pub fn refresh(&mut self) {
        (self.cspace_root, self.cspace_radix) = match self.cap_in(slot::CSPACE) {
            Cap::CNode { obj, radix } => (obj, u64::from(radix)),
            _ => (0, 0),
        };
        self.ttbr0 = match self.cap_in(slot::VSPACE) {
            Cap::VSpace { obj } => super::vspace::ttbr0_of(obj),
            _ => 0,
        };
    }

    /// The slot at `cptr` of its CSpace.
    pub fn cspace_slot(&self, cptr: u64) -> Result<Obj<Slot>, abi::Error> {
        if self.cspace_root == 0 || cptr >> self.cspace_radix != 0 {
            return Err(abi::Error::InvalidCapability);
        }
        Ok(Obj::from_pa(
            self.cspace_root + (cptr << abi::object::SLOT_BITS),
        ))
    }
}
