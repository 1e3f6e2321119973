//! The pager protocol: the typed requests and replies between user tasks, the vm server,
//! the zero server and init (the process server), with their encoding into message
//! registers. `docs/pagers.md` is the prose; this crate is the contract.
//!
//! Every request is a message whose label is a [`Label`] and whose message registers are
//! the request's fields in order: [`VmRequest`] (tasks to vm), [`VmControl`] (init to vm),
//! [`ZeroRequest`] (vm to zero), [`ProcRequest`] (tasks to init). Each has `encode` (to a
//! [`Wire`]: label and registers) and `decode` (label and registers to the request, or a
//! [`ProtoError`]). Every reply's MR0 is 0 or an [`Errno`] value; its other registers are
//! the results, a [`ReplyBody`] ([`encode_reply`], [`decode_reply`]). Decoding never
//! panics: a short or malformed message is an error that the server answers with `EINVAL`
//! (`ENOSYS` for an unknown label), and a client with `EIO`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod args;
pub mod console;
pub mod errno;
pub mod file;
pub mod handles;
pub mod interface;
pub mod object;
pub mod path;
pub mod proc;
pub mod shm;
pub mod startup;
pub mod task;
pub mod vm;
pub mod wire;
pub mod zero;

pub use console::{ConsoleRequest, ConsoleStats};
pub use errno::Errno;
pub use file::{
    FileRequest, FileStats, GrowReply, OpenReply, PipeReply, ReadDirReply, SpanReply, StatReply,
};
pub use interface::{Field, Transport};
pub use proc::{GetPidReply, MemoryReply, ProcRequest, TaskEntry, TaskState, WaitReply};
pub use shm::ShmRequest;
pub use task::{DescriptorCount, ServerControl};
pub use vm::{KillRecord, RegionInfo, RegionKind, SpaceInfo, VmControl, VmRequest, VmStats};
pub use wire::{
    MAX_WORDS, MESSAGE_WORDS, Name, ReplyBody, Wire, decode_reply, encode_reply, reply_result,
};
pub use zero::ZeroRequest;

/// Well-known process identifiers.
pub mod pid {
    pub const INIT: u64 = 1;
    pub const VM: u64 = 2;
    pub const ZERO: u64 = 3;
    pub const FILE: u64 = 4;
    pub const SHM: u64 = 5;
    pub const CONSOLE: u64 = 6;
    /// The first pid given to a user task.
    pub const FIRST_USER: u64 = 10;
    /// Set in the badge of a task's *fault endpoint* (the capability its TCB holds, badged
    /// `pid | FAULT_BADGE`), clear in every badge a task can send with (its request
    /// capabilities carry the pid alone). Tasks never hold an unbadged endpoint capability and
    /// a badge cannot be changed once minted, so only the kernel's fault delivery produces a
    /// message with this bit: a fault label on any other badge is a forgery.
    pub const FAULT_BADGE: u64 = 1 << 63;

    /// The pid of a fault badge (`pid | FAULT_BADGE`), or `None` for a request badge.
    pub const fn of_fault_badge(badge: u64) -> Option<u64> {
        if badge & FAULT_BADGE != 0 {
            Some(badge & !FAULT_BADGE)
        } else {
            None
        }
    }
}

/// Where a server's startup page is mapped (also passed in `x0`).
pub const STARTUP_VADDR: u64 = 0x0000_0030_0000_0000;
/// `mmap(NULL, ...)` places mappings top-down from here.
pub const MMAP_TOP: u64 = 0x0000_0020_0000_0000;
/// The lowest address a user mapping may have (the first 2 MiB stay unmapped: null pointers
/// fault).
pub const USER_MIN: u64 = 0x0000_0000_0020_0000;
/// The end of user virtual memory (48-bit addresses).
pub const USER_END: u64 = 1 << 48;
/// Top of a user task's stack, and its size (an anonymous region, faulted in on demand).
pub const USER_STACK_TOP: u64 = 0x0000_0030_0000_0000;
pub const USER_STACK_SIZE: u64 = 8 << 20;
/// Where a user task's IPC buffer is mapped.
pub const USER_IPC_BUFFER: u64 = 0x0000_0030_0001_0000;
/// Where a user task's own arguments and environment are mapped, read-only
/// ([`args::AREA_BYTES`], written by init before the program starts: [`args`]).
pub const USER_ARGS: u64 = 0x0000_0030_0002_0000;
/// Where a user task's outgoing argument area is mapped, read-write: its runtime puts the
/// arguments of a `spawn` or `exec` there before it asks init ([`args`]).
pub const USER_ARGS_OUT: u64 = 0x0000_0030_0004_0000;
/// Pages in a chunk: the 2 MiB frames zero hands to vm.
pub const CHUNK_PAGES: u64 = 512;
pub const PAGE_SIZE: u64 = 4096;

/// `mmap` protection bits.
pub mod prot {
    pub const NONE: u64 = 0;
    pub const READ: u64 = 1;
    pub const WRITE: u64 = 2;
    pub const EXEC: u64 = 4;
    pub const MASK: u64 = 7;
}

/// `mmap` flags.
pub mod map {
    pub const SHARED: u64 = 0x01;
    pub const PRIVATE: u64 = 0x02;
    pub const FIXED: u64 = 0x10;
    pub const ANONYMOUS: u64 = 0x20;
    pub const MASK: u64 = SHARED | PRIVATE | FIXED | ANONYMOUS;
}

/// The slots of a user task's CNode, filled by init.
pub mod task_slots {
    /// A capability to vm's endpoint, badged with the task's pid.
    pub const VM: u64 = 1;
    /// A capability to init's endpoint, badged with the task's pid.
    pub const PROC: u64 = 2;
    /// The task's IPC buffer frame.
    pub const IPC_BUFFER: u64 = 3;
    /// A notification init signals when one of the task's children ends (`wait` sleeps on
    /// it between `Wait` requests that find nothing yet).
    pub const CHILD_NOTIFY: u64 = 4;
    /// A capability to the file server's endpoint, badged with the task's pid.
    pub const FILE: u64 = 5;
    /// A capability to the shared-memory server's endpoint, badged with the task's pid.
    pub const SHM: u64 = 6;
    /// A capability to the console server's endpoint, badged with the task's pid
    /// (descriptors 0, 1 and 2: `proto::console`).
    pub const CONSOLE: u64 = 7;
    /// First slot the task may use for itself.
    pub const FIRST_FREE: u64 = 8;
    /// log2 of the number of slots.
    pub const RADIX: u64 = 8;
}

abi::numbered! {
    /// Request labels. 100s: tasks to vm; 200s: init to vm; 300s: vm to zero; 400s: tasks to
    /// init; 500s: tasks to the file server (but 550..559: tasks to init, with arguments);
    /// 600s: vm and memory-object pagers; 700s: tasks to the shm server.
    pub enum Label {
        /// addr, len, prot, flags, fd (`u64::MAX` for none), offset → MR1 = address.
        Mmap = 100,
        /// addr, len.
        Munmap = 101,
        /// addr, len, prot.
        Mprotect = 102,
        /// Print the caller's regions and resident pages on the console.
        Vmmap = 103,
        /// → MR1.. = the counters of [`VmStats`].
        VmStats = 104,
        /// A memory object: see [`object::MmapObject`].
        MmapObject = 105,
        /// addr, len, flags: write back shared file pages (`object::Msync`).
        Msync = 106,
        /// pid → MR1 = regions, MR2 = resident pages of task pid's address space
        /// ([`vm::SpaceInfo`]).
        SpaceInfo = 107,
        /// pid, from → the first region of task pid ending above from ([`vm::RegionInfo`]).
        RegionAt = 108,

        /// pid; the task's VSpace capability travels with the message.
        NewSpace = 200,
        /// pid, vaddr, mem_size, initrd_offset (of the segment's file bytes), file_size,
        /// prot: a private region holding a segment of an ELF file in the initrd.
        MapImage = 201,
        /// pid, vaddr, prot; the frame capability travels with the message (its pages are
        /// mapped at once, and stay the task's own).
        MapFrame = 202,
        /// parent pid, child pid; the child's VSpace capability travels with the message.
        ForkSpace = 203,
        /// pid, and a new stack: remove every region but fixed frames (exec).
        Reset = 204,
        /// pid: remove everything, free the pages, forget the address space (exit, kill).
        Destroy = 205,
        /// → MR1 = pid, MR2 = [`Kill`] reason, MR3 = address; MR1 = 0 when none is left.
        TakeKills = 206,
        /// pid, name (up to 16 bytes in two words): for console messages.
        SetName = 207,
        /// pid, vaddr, len, prot: an anonymous private region (stacks, heaps).
        MapAnon = 208,
        /// pid, vaddr, file size, object, file offset, prot | pager << 8 (`VmControl::MapObject`).
        MapObject = 209,
        /// pager: a new instance of that pager (init restarted it); its endpoint (badged
        /// `pid::VM`) travels with the message. vm forgets the old one's handles.
        SetPager = 210,

        /// → a 2 MiB frame capability (zeroed) travels with the reply.
        GetChunk = 300,

        /// name (up to 16 bytes in two words) → MR1 = pid of the new task.
        Spawn = 400,
        /// sp, pc of the child's start (the runtime's fork trampoline) → MR1 = child pid
        /// (the child starts at pc with x0 = 0).
        Fork = 401,
        /// name (two words): replace the caller's image; no reply on success.
        Exec = 402,
        /// status: no reply.
        Exit = 403,
        /// pid (0: any child) → MR1 = pid, MR2 = [`WaitStatus`] kind, MR3 = status or address.
        /// Never blocks in init: `EAGAIN` when children exist but none has ended (the runtime
        /// then waits on `task_slots::CHILD_NOTIFY` and asks again), `ECHILD` when there are
        /// none.
        Wait = 404,
        /// pid.
        Kill = 405,
        /// → MR1 = pid, MR2 = parent pid.
        GetPid = 406,
        /// Power the machine off (the session's first program only): no reply.
        PowerOff = 407,
        /// `sync()`: answered once the servers have done what init told them before (the
        /// descriptors of tasks that ended are gone) and written back every dirty block.
        Sync = 408,
        /// from → the task with the lowest pid from `from` on ([`proc::TaskEntry`]).
        TaskAt = 409,
        /// → RAM and what init gave each server ([`proc::MemoryReply`]).
        Memory = 410,

        /// flags, path (five words) → MR1 = fd, MR2 = size.
        Open = 500,
        /// fd, offset, len → MR1 = count; the bytes in MR6...
        Read = 501,
        /// fd.
        Close = 502,
        /// path (five words) → MR1 = size, MR2 = 1 for a directory.
        Stat = 503,
        /// fd, offset, len, total; the bytes in MR6.. → MR1 = count.
        Write = 504,
        /// fd, offset (two's complement), whence → MR1 = the new position.
        Lseek = 505,
        /// fd → MR1 = size, MR2 = 0.
        Fstat = 506,
        /// fd, length.
        Ftruncate = 507,
        /// path (five words).
        Unlink = 508,
        /// → MR1.. = the counters of [`file::FileStats`].
        FileStats = 509,
        /// path (five words).
        Mkdir = 510,
        /// path (five words).
        Rmdir = 511,
        /// from, to (five words each).
        Rename = 512,
        /// path (five words), cookie → MR1 = bytes of entries, MR2 = next cookie; the
        /// entries in MR6.. ([`file::ReadDirReply`]).
        ReadDir = 513,
        /// fd, offset, len, write → MR1 = offset, MR2 = count, MR3 = size (`file::SpanReply`):
        /// the range a task's runtime then copies through its mapping of the file.
        Span = 520,
        /// fd → MR1 = handle, MR2 = size (`GetObject`'s layout): a handle for a task's
        /// runtime's window on the file, whose mappings map whole blocks.
        Window = 521,
        /// fd → MR1 = handle, MR2 = the buffer's length (`GetObject`'s layout): a handle on
        /// the descriptor's `O_DIRECT` buffer, shared with the server.
        DirectBuffer = 530,
        /// fd, offset, want → MR1 = count: the disk's bytes, in the `O_DIRECT` buffer.
        DirectRead = 531,
        /// fd, offset, total → MR1 = count: the `O_DIRECT` buffer's bytes, to the disk.
        DirectWrite = 532,
        /// fd, offset, len → MR1 = offset, MR2 = count, MR3 = size, MR4 = the growth
        /// reservation's limit (0: none), MR5 = its cell (`file::GrowReply`).
        Grow = 533,
        /// → MR1 = handle, MR2 = length: the task's size page (cells of its reservations).
        SizePage = 534,
        /// flags → MR1 = the read end, MR2 = the write end (`file::PipeReply`).
        Pipe = 540,
        /// fd → MR1 = the new descriptor (the lowest free number from 3).
        Dup = 541,
        /// old, new → MR1 = which of descriptors 0..2 the file server now holds (bit *n*).
        Dup2 = 542,
        /// → MR1 = which of descriptors 0..2 the file server holds for the caller (bit *n*).
        Redirected = 543,

        /// Tasks to init (the 550s): name (two words); argv and the environment in the
        /// caller's outgoing argument area (`proto::args`) → MR1 = pid of the new task.
        SpawnArgs = 550,
        /// name (two words); argv and the environment in the caller's outgoing argument
        /// area: replace the caller's image; no reply on success.
        ExecArgs = 551,

        /// pid: the task Ctrl-C ends (`console::ConsoleRequest`).
        ConsoleForeground = 560,
        /// → MR1.. = the counters of [`console::ConsoleStats`].
        ConsoleStats = 561,

        /// vm to a pager: handle, block, write → MR1 = valid bytes; block frame cap in the
        /// reply (`object::ObjectRequest`).
        ObjectPage = 600,
        /// vm to a pager: handle, block.
        ObjectDirty = 601,
        /// vm to a pager: handle, first block, count.
        ObjectSync = 602,
        /// vm to a pager: handle (a claimed one); or a task to a pager: a handle it was given
        /// and never had mapped.
        ObjectRelease = 603,
        /// A task to the owner of a descriptor: fd, writable → MR1 = handle, MR2 = size.
        GetObject = 604,
        /// vm to a pager: handle, pid → MR1 = object, MR2 = writable (`object::Claimed`).
        ObjectClaim = 605,

        /// flags, mode, name (two words) → MR1 = fd, MR2 = size (`shm::ShmRequest`).
        ShmOpen = 700,
        /// fd, size.
        ShmTruncate = 701,
        /// fd → MR1 = size.
        ShmStat = 702,
        /// name (two words).
        ShmUnlink = 703,
        /// fd.
        ShmClose = 704,
        /// vm to shm: size → MR1 = handle, MR2 = object of a new anonymous object
        /// (`shm::ShmRequest`).
        ShmCreateAnon = 705,

        /// init to the file and shm servers: pid (`task::ServerControl`).
        TaskExit = 800,
        /// init to the file and shm servers: parent, child.
        TaskFork = 801,
        /// init to the file server: write back every dirty block.
        SyncAll = 802,
        /// Anyone to the file or shm server → MR1 = descriptors, MR2 = open objects.
        Descriptors = 803,
        /// init to the file and shm servers: pid (its close-on-exec descriptors go).
        TaskExec = 804,
    }
}

abi::numbered! {
    /// Why vm stopped a task.
    pub enum Kill {
        /// A fault outside every region, or against the region's protection.
        Segv = 1,
        /// A page the region's pager could not supply.
        Bus = 2,
    }
}

abi::numbered! {
    /// How a child ended, as `wait` reports it.
    pub enum WaitStatus {
        /// `exit(status)`: MR3 = status.
        Exited = 1,
        /// Killed by vm with `SEGV`: MR3 = the address.
        Segv = 2,
        /// Killed by vm with `BUS`: MR3 = the address.
        Bus = 3,
        /// Killed by `kill`.
        Killed = 4,
    }
}

/// Why a message could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// The label is not a [`Label`].
    UnknownLabel(u64),
    /// Fewer message registers than the request has fields.
    Short,
    /// A field is out of range.
    BadField,
}

/// How a server answers a request it cannot decode.
impl From<ProtoError> for Errno {
    fn from(e: ProtoError) -> Errno {
        match e {
            ProtoError::UnknownLabel(_) => Errno::ENOSYS,
            ProtoError::Short | ProtoError::BadField => Errno::EINVAL,
        }
    }
}

#[cfg(test)]
mod tests;
