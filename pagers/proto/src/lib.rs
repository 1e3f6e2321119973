//! The pager protocol: the typed requests and replies between user tasks, the vm server,
//! the zero server and init (the process server), with their encoding into message
//! registers. `docs/pagers.md` is the prose; this crate is the contract.
//!
//! Every request is a message whose label is a [`Label`] and whose message registers are
//! the request's fields in order. Every reply's MR0 is 0 or an [`Errno`] value; its other
//! registers are the results. Decoding never panics: a short or malformed message is an
//! error ([`ProtoError`]) that the server answers with `EINVAL`.
#![no_std]
#![forbid(unsafe_code)]

pub mod errno;
pub mod startup;

pub use errno::Errno;

/// Well-known process identifiers.
pub mod pid {
    pub const INIT: u64 = 1;
    pub const VM: u64 = 2;
    pub const ZERO: u64 = 3;
    /// The first pid given to a user task.
    pub const FIRST_USER: u64 = 10;
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
    /// First slot the task may use for itself.
    pub const FIRST_FREE: u64 = 8;
    /// log2 of the number of slots.
    pub const RADIX: u64 = 8;
}

abi::numbered! {
    /// Request labels. 100s: tasks to vm; 200s: init to vm; 300s: vm to zero; 400s: tasks to
    /// init.
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

/// vm's counters (`VmStats` results, in this order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmStats {
    pub faults: u64,
    pub pages_in_use: u64,
    pub pages_zero_filled: u64,
    pub pages_copied: u64,
    pub zero_page_maps: u64,
    pub chunks: u64,
}

impl VmStats {
    pub const WORDS: usize = 6;

    pub fn encode(&self) -> [u64; Self::WORDS] {
        [
            self.faults,
            self.pages_in_use,
            self.pages_zero_filled,
            self.pages_copied,
            self.zero_page_maps,
            self.chunks,
        ]
    }

    pub fn decode(w: &[u64]) -> Result<Self, ProtoError> {
        let w: &[u64; Self::WORDS] = w
            .get(..Self::WORDS)
            .and_then(|s| s.try_into().ok())
            .ok_or(ProtoError::Short)?;
        Ok(Self {
            faults: w[0],
            pages_in_use: w[1],
            pages_zero_filled: w[2],
            pages_copied: w[3],
            zero_page_maps: w[4],
            chunks: w[5],
        })
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

impl From<ProtoError> for Errno {
    fn from(_: ProtoError) -> Errno {
        Errno::EINVAL
    }
}

/// A task name in two words (up to 16 bytes, zero-padded).
pub fn name_to_words(name: &str) -> Result<[u64; 2], Errno> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 16 {
        return Err(Errno::EINVAL);
    }
    let mut bytes = [0u8; 16];
    bytes[..b.len()].copy_from_slice(b);
    let (lo, hi) = bytes.split_at(8);
    Ok([
        u64::from_le_bytes(lo.try_into().unwrap_or([0; 8])),
        u64::from_le_bytes(hi.try_into().unwrap_or([0; 8])),
    ])
}

/// The name in two words; the bytes up to the first zero.
pub fn name_from_words(w: [u64; 2]) -> ([u8; 16], usize) {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&w[0].to_le_bytes());
    bytes[8..].copy_from_slice(&w[1].to_le_bytes());
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(16);
    (bytes, len)
}

/// The fields of a request with `label`, checking there are as many as it needs.
pub fn fields(label: Label, mrs: &[u64]) -> Result<&[u64], ProtoError> {
    let n = label.fields();
    mrs.get(..n).ok_or(ProtoError::Short)
}

impl Label {
    /// How many message registers the request carries.
    pub const fn fields(self) -> usize {
        match self {
            Self::Mmap => 6,
            Self::Munmap => 2,
            Self::Mprotect => 3,
            Self::Vmmap | Self::VmStats | Self::TakeKills | Self::GetChunk | Self::GetPid => 0,
            Self::NewSpace | Self::Destroy | Self::Kill | Self::Exit | Self::Wait => 1,
            Self::MapImage => 6,
            Self::MapFrame => 3,
            Self::ForkSpace | Self::Fork => 2,
            Self::Reset => 1,
            Self::SetName => 3,
            Self::MapAnon => 4,
            Self::Spawn | Self::Exec => 2,
        }
    }
}

/// The first word of a reply.
pub fn reply_code(r: Result<(), Errno>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => e as u64,
    }
}

/// Reads the first word of a reply.
pub fn check_reply(code: u64) -> Result<(), Errno> {
    match code {
        0 => Ok(()),
        other => Err(Errno::try_from(other).unwrap_or(Errno::EIO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_field_counts_fit_registers() {
        for &l in Label::ALL {
            assert_eq!(Label::try_from(l as u64), Ok(l));
            assert!(l.fields() <= abi::message::REGISTER_MRS);
        }
        assert!(Label::try_from(0).is_err());
    }

    #[test]
    fn names_round_trip() {
        for name in ["init", "vm", "a-sixteen-chars!"] {
            let w = name_to_words(name).unwrap();
            let (bytes, len) = name_from_words(w);
            assert_eq!(&bytes[..len], name.as_bytes());
        }
        assert_eq!(name_to_words(""), Err(Errno::EINVAL));
        assert_eq!(name_to_words("seventeen chars!!"), Err(Errno::EINVAL));
    }

    #[test]
    fn fields_are_checked() {
        assert_eq!(fields(Label::Mmap, &[1, 2, 3]), Err(ProtoError::Short));
        assert_eq!(fields(Label::Munmap, &[1, 2, 3]), Ok(&[1u64, 2][..]));
        assert_eq!(fields(Label::GetPid, &[]), Ok(&[][..]));
    }

    #[test]
    fn stats_round_trip() {
        let s = VmStats {
            faults: 1,
            pages_in_use: 2,
            pages_zero_filled: 3,
            pages_copied: 4,
            zero_page_maps: 5,
            chunks: 6,
        };
        assert_eq!(VmStats::decode(&s.encode()), Ok(s));
        assert_eq!(VmStats::decode(&[1, 2]), Err(ProtoError::Short));
    }

    #[test]
    fn reply_codes() {
        assert_eq!(check_reply(reply_code(Ok(()))), Ok(()));
        assert_eq!(
            check_reply(reply_code(Err(Errno::ENOMEM))),
            Err(Errno::ENOMEM)
        );
        assert_eq!(check_reply(9999), Err(Errno::EIO));
    }
}
