//! Typed capability handles: a `Cap<Frame>` can be mapped, a `Cap<Endpoint>` cannot, and the
//! compiler says so. Each method names the kernel operation it performs (`abi::Invocation`
//! or `abi::Syscall`) and returns the kernel's error unchanged.

use crate::{CPtr, Message, Reply, call, invoke};
use abi::object::{CapRights, MapFlags, ObjectType};
use abi::{Error, Invocation, Syscall};
use core::marker::PhantomData;

/// A capability of kind `K` at a slot of the caller's CSpace.
pub struct Cap<K> {
    cptr: CPtr,
    kind: PhantomData<K>,
}

impl<K> Clone for Cap<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Cap<K> {}
impl<K> PartialEq for Cap<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cptr == other.cptr
    }
}
impl<K> Eq for Cap<K> {}
impl<K> core::fmt::Debug for Cap<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Cap({})", self.cptr)
    }
}

impl<K> Cap<K> {
    /// Names slot `cptr`; the kernel checks the type when the capability is used.
    pub const fn from_cptr(cptr: CPtr) -> Self {
        Self {
            cptr,
            kind: PhantomData,
        }
    }

    pub const fn cptr(self) -> CPtr {
        self.cptr
    }

    /// The same slot seen as another kind (for tests of the kernel's type checks).
    pub const fn cast<L>(self) -> Cap<L> {
        Cap::from_cptr(self.cptr)
    }
}

macro_rules! kinds {
    ($($name:ident),*) => { $(
        #[doc = concat!("Capability kind: ", stringify!($name), ".")]
        #[derive(Debug)]
        pub enum $name {}
    )* };
}
kinds!(
    Untyped,
    Tcb,
    Endpoint,
    Notification,
    CNode,
    VSpace,
    PageTable,
    Frame,
    IrqControl,
    IrqHandler,
    SavedReply,
    Timer
);

fn ok(r: Result<Reply, Error>) -> Result<(), Error> {
    r.map(|_| ())
}

impl Cap<Untyped> {
    /// `UntypedRetype`: `count` objects into slots `dest_index..` of `dest`.
    pub fn retype(
        self,
        ty: ObjectType,
        size_bits: u64,
        dest: Cap<CNode>,
        dest_index: u64,
        count: u64,
    ) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::UntypedRetype,
            &[ty as u64, size_bits, dest.cptr, dest_index, count],
        ))
    }
}

impl Cap<CNode> {
    /// `CNodeCopy` from (`src`, `src_index`) into `dest_index` of this CNode.
    pub fn copy(
        self,
        dest_index: u64,
        src: Cap<CNode>,
        src_index: u64,
        rights: CapRights,
    ) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::CNodeCopy,
            &[dest_index, src.cptr, src_index, rights.0],
        ))
    }

    /// `CNodeMint`: a copy with fewer rights and a badge.
    pub fn mint(
        self,
        dest_index: u64,
        src: Cap<CNode>,
        src_index: u64,
        rights: CapRights,
        badge: u64,
    ) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::CNodeMint,
            &[dest_index, src.cptr, src_index, rights.0, badge],
        ))
    }

    /// `CNodeMove`.
    pub fn move_cap(self, dest_index: u64, src: Cap<CNode>, src_index: u64) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::CNodeMove,
            &[dest_index, src.cptr, src_index],
        ))
    }

    /// `CNodeDelete`.
    pub fn delete(self, index: u64) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::CNodeDelete, &[index]))
    }

    /// `CNodeRevoke`.
    pub fn revoke(self, index: u64) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::CNodeRevoke, &[index]))
    }
}

impl Cap<Tcb> {
    /// `TcbConfigure`. `ipc_buffer` is a frame capability and the address it is mapped at.
    pub fn configure(
        self,
        cspace: Cap<CNode>,
        vspace: Cap<VSpace>,
        ipc_buffer: Option<(Cap<Frame>, u64)>,
        fault_endpoint: Option<Cap<Endpoint>>,
        priority: u64,
    ) -> Result<(), Error> {
        let null = abi::message::NULL_CPTR;
        let (buf, buf_va) = ipc_buffer.map_or((null, 0), |(f, va)| (f.cptr, va));
        let fault = fault_endpoint.map_or(null, |e| e.cptr);
        ok(invoke(
            self.cptr,
            Invocation::TcbConfigure,
            &[cspace.cptr, vspace.cptr, buf, buf_va, fault, priority],
        ))
    }

    /// `TcbSetPriority`.
    pub fn set_priority(self, priority: u64) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::TcbSetPriority, &[priority]))
    }

    /// `TcbReadRegisters`: the first six of pc, sp, spsr, x0, x1, x2 (more via the IPC
    /// buffer with [`invoke`]).
    pub fn read_registers(self) -> Result<[u64; 6], Error> {
        invoke(self.cptr, Invocation::TcbReadRegisters, &[6]).map(|r| r.mrs)
    }

    /// `TcbWriteRegisters`: pc, sp, then x0.. (2 to 6 values).
    pub fn write_registers(self, values: &[u64]) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::TcbWriteRegisters, values))
    }

    /// `TcbResume`.
    pub fn resume(self) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::TcbResume, &[]))
    }

    /// `TcbSuspend`.
    pub fn suspend(self) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::TcbSuspend, &[]))
    }

    /// `TcbStart`: set pc, sp, x0 and resume.
    pub fn start(self, pc: u64, sp: u64, arg: u64) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::TcbStart, &[pc, sp, arg]))
    }

    /// `TcbBindNotification`.
    pub fn bind_notification(self, n: Cap<Notification>) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::TcbBindNotification,
            &[n.cptr],
        ))
    }

    /// `TcbUnbindNotification`.
    pub fn unbind_notification(self) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::TcbUnbindNotification, &[]))
    }
}

impl Cap<VSpace> {
    /// `VSpaceMapTable`: `table` becomes the level-`level` table covering `vaddr`.
    pub fn map_table(self, table: Cap<PageTable>, vaddr: u64, level: u64) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::VSpaceMapTable,
            &[table.cptr, vaddr, level],
        ))
    }

    /// `VSpaceUnmap` of [`vaddr`, `vaddr + size`).
    pub fn unmap(self, vaddr: u64, size: u64) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::VSpaceUnmap, &[vaddr, size]))
    }

    /// `VSpaceProtect`.
    pub fn protect(self, vaddr: u64, size: u64, flags: MapFlags) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::VSpaceProtect,
            &[vaddr, size, flags.0],
        ))
    }

    /// `VSpaceQuery`: physical address and flags of the page at `vaddr`.
    pub fn query(self, vaddr: u64) -> Result<(u64, MapFlags), Error> {
        invoke(self.cptr, Invocation::VSpaceQuery, &[vaddr]).map(|r| (r.mrs[0], MapFlags(r.mrs[1])))
    }
}

impl Cap<PageTable> {
    /// `PageTableUnmap`.
    pub fn unmap(self) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::PageTableUnmap, &[]))
    }
}

impl Cap<Frame> {
    /// `FrameMap`: pages `first_page .. first_page + count` of this frame at `vaddr`.
    pub fn map(
        self,
        vspace: Cap<VSpace>,
        vaddr: u64,
        flags: MapFlags,
        first_page: u64,
        count: u64,
    ) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::FrameMap,
            &[vspace.cptr, vaddr, flags.0, first_page, count],
        ))
    }

    /// `FrameUnmap`: every mapping made through this capability.
    pub fn unmap(self) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::FrameUnmap, &[]))
    }

    /// `FramePhysAddr`: physical address and size.
    pub fn phys_addr(self) -> Result<(u64, u64), Error> {
        invoke(self.cptr, Invocation::FramePhysAddr, &[]).map(|r| (r.mrs[0], r.mrs[1]))
    }
}

impl Cap<IrqControl> {
    /// `IrqControlGet`.
    pub fn get(self, intid: u64, dest: Cap<CNode>, dest_index: u64) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::IrqControlGet,
            &[intid, dest.cptr, dest_index],
        ))
    }
}

impl Cap<IrqHandler> {
    /// `IrqHandlerSetNotification`.
    pub fn set_notification(self, n: Cap<Notification>) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::IrqHandlerSetNotification,
            &[n.cptr],
        ))
    }

    /// `IrqHandlerAck`.
    pub fn ack(self) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::IrqHandlerAck, &[]))
    }

    /// `IrqHandlerClear`.
    pub fn clear(self) -> Result<(), Error> {
        ok(invoke(self.cptr, Invocation::IrqHandlerClear, &[]))
    }
}

impl Cap<Timer> {
    /// `TimerArm`: signal `notification` (a capability with WRITE) with `bits` (nonzero) at
    /// the first timer tick at which `debug_ticks().0 >= deadline`; at once if that is
    /// already so. Replaces the timer's earlier deadline, if any.
    pub fn arm(
        self,
        notification: Cap<Notification>,
        bits: u64,
        deadline: u64,
    ) -> Result<(), Error> {
        ok(invoke(
            self.cptr,
            Invocation::TimerArm,
            &[notification.cptr, bits, deadline],
        ))
    }

    /// `TimerDisarm`: the timer will not fire. Returns whether it was armed.
    pub fn disarm(self) -> Result<bool, Error> {
        invoke(self.cptr, Invocation::TimerDisarm, &[]).map(|r| r.mrs[0] != 0)
    }
}

impl Cap<Endpoint> {
    /// `Send`: blocks until a receiver takes the message.
    pub fn send(self, msg: &Message) -> Result<(), Error> {
        ok(call(Syscall::Send, self.cptr, msg))
    }

    /// `NBSend`: `WouldBlock` if no receiver waits.
    pub fn nb_send(self, msg: &Message) -> Result<(), Error> {
        ok(call(Syscall::NBSend, self.cptr, msg))
    }

    /// `Call`: send, then wait for the reply.
    pub fn call(self, msg: &Message) -> Result<Reply, Error> {
        call(Syscall::Call, self.cptr, msg)
    }

    /// `Recv`: wait for a message; the reply carries its badge.
    pub fn recv(self) -> Result<Reply, Error> {
        call(Syscall::Recv, self.cptr, &Message::default())
    }

    /// `NBRecv`: `WouldBlock` if no sender waits.
    pub fn nb_recv(self) -> Result<Reply, Error> {
        call(Syscall::NBRecv, self.cptr, &Message::default())
    }

    /// `ReplyRecv`: reply to the last caller, then wait on this endpoint.
    pub fn reply_recv(self, reply: &Message) -> Result<Reply, Error> {
        call(Syscall::ReplyRecv, self.cptr, reply)
    }
}

/// `Reply` to the last caller (or faulting thread) this thread received from.
pub fn reply(msg: &Message) -> Result<(), Error> {
    ok(call(Syscall::Reply, 0, msg))
}

/// `SaveCaller`: the calling thread's pending reply target (the caller or faulting thread
/// it received from last and has not answered) becomes a `Reply` capability in the empty
/// slot `dest` of its CSpace, and the thread may receive again; answer it later with
/// [`Cap::<SavedReply>::send`]. `NoReplyTarget` if there is nothing to save,
/// `SlotOccupied` if the slot is not empty, `InvalidCapability` if `dest` is out of range.
pub fn save_caller(dest: CPtr) -> Result<Cap<SavedReply>, Error> {
    ok(call(Syscall::SaveCaller, dest, &Message::default()))?;
    Ok(Cap::from_cptr(dest))
}

impl Cap<SavedReply> {
    /// `Send` on a saved reply: answers the thread it names as `Reply` would have (a fault
    /// reply with a map item included; a capability from the IPC buffer's `send_cap` if the
    /// caller's endpoint capability had GRANT). On success the slot is empty; if the reply
    /// fails (a bad map item) the capability stays and the thread keeps waiting.
    /// `InvalidCapability` once the slot is empty (used, deleted, or its thread suspended or
    /// destroyed). MR0..MR5 travel in registers, the rest in the IPC buffer, as for any
    /// `Send`.
    pub fn send(self, msg: &Message) -> Result<(), Error> {
        ok(call(Syscall::Send, self.cptr, msg))
    }
}

impl Cap<Notification> {
    /// `Signal`: OR this capability's badge into the notification word.
    pub fn signal(self) -> Result<(), Error> {
        ok(call(Syscall::Signal, self.cptr, &Message::default()))
    }

    /// `Wait`: block until a bit is set; returns and clears the word.
    pub fn wait(self) -> Result<u64, Error> {
        call(Syscall::Wait, self.cptr, &Message::default()).map(|r| r.badge)
    }

    /// `Poll`: the word if any bit is set, else `WouldBlock`.
    pub fn poll(self) -> Result<u64, Error> {
        call(Syscall::Poll, self.cptr, &Message::default()).map(|r| r.badge)
    }

    /// `Recv` on a notification: as `wait`.
    pub fn recv(self) -> Result<u64, Error> {
        call(Syscall::Recv, self.cptr, &Message::default()).map(|r| r.badge)
    }
}
