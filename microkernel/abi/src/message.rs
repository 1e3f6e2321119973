//! Messages: the message-info word, the IPC buffer, and the layout of fault messages.

/// Message registers carried in CPU registers (`x2`..`x7`).
pub const REGISTER_MRS: usize = 6;
/// Message registers in all (the rest live in the IPC buffer).
pub const MAX_MRS: usize = 64;
/// A capability address meaning "none".
pub const NULL_CPTR: u64 = u64::MAX;

/// The message-info word (`x1`): label, number of message registers, whether a capability
/// travels with the message.
///
/// ```text
///   63                 16 15        8 7      0
///  |       label         | extra caps| length |
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgInfo {
    /// What the message means (an invocation, a fault kind, or anything two tasks agree on).
    pub label: u64,
    /// Message registers used, at most [`MAX_MRS`].
    pub length: usize,
    /// Capabilities sent (0 or 1); on receive, 1 if a capability was transferred.
    pub caps: usize,
}

/// Largest label a `MsgInfo` can carry.
pub const MAX_LABEL: u64 = (1 << 48) - 1;
/// The label of what `Recv` on an endpoint returns when the thread's bound notification was
/// signalled instead (the notification word is in `x8`).
pub const NOTIFICATION_LABEL: u64 = MAX_LABEL;

impl MsgInfo {
    pub const fn new(label: u64, length: usize) -> Self {
        Self {
            label,
            length,
            caps: 0,
        }
    }

    /// Packs into the `x1` word. Fields out of range are truncated; `decode` rejects them.
    pub const fn encode(self) -> u64 {
        (self.label << 16) | (((self.caps as u64) & 0xff) << 8) | ((self.length as u64) & 0xff)
    }

    /// Unpacks `x1`; `None` if the length or capability count is out of range.
    pub fn decode(word: u64) -> Option<Self> {
        let length = (word & 0xff) as usize;
        let caps = ((word >> 8) & 0xff) as usize;
        if length > MAX_MRS || caps > 1 {
            return None;
        }
        Some(Self {
            label: word >> 16,
            length,
            caps,
        })
    }
}

/// The IPC buffer: one page per thread, registered with `TcbConfigure`. The only user memory
/// the kernel reads or writes.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct IpcBuffer {
    /// Message registers. `mrs[0..REGISTER_MRS]` are not used (those travel in `x2`..`x7`).
    pub mrs: [u64; MAX_MRS],
    /// The capability to send (a CPtr in the sender's CSpace) when `MsgInfo::caps` is 1.
    pub send_cap: u64,
    /// Where a received capability goes: a slot index in the receiver's CSpace root, or
    /// [`NULL_CPTR`] to accept none.
    pub receive_slot: u64,
}

const _: () = assert!(core::mem::size_of::<IpcBuffer>() <= 4096);

crate::numbered! {
    /// Labels of the messages the kernel sends to a thread's fault endpoint on its behalf.
    pub enum FaultLabel {
        /// A data or instruction abort. MRs: see [`vm_fault`].
        VmFault = 1,
        /// An `svc` with a number the kernel does not know. MR0 = number, MR1 = instruction
        /// address, MR2..MR5 = `x0`..`x3`.
        UnknownSyscall = 2,
        /// An undefined instruction. MR0 = instruction address, MR1 = ESR_EL1.
        UndefinedInstruction = 3,
        /// A PC, SP or data alignment fault. MR0 = instruction address, MR1 = ESR_EL1,
        /// MR2 = faulting address.
        AlignmentFault = 4,
        /// Any other exception from EL0. MR0 = instruction address, MR1 = ESR_EL1, MR2 = FAR.
        UserException = 5,
    }
}

/// The message registers of a `VmFault` message.
pub mod vm_fault {
    /// MR0: the faulting virtual address (FAR_EL1).
    pub const ADDRESS: usize = 0;
    /// MR1: the instruction address (ELR_EL1).
    pub const IP: usize = 1;
    /// MR2: an [`Access`] value.
    pub const ACCESS: usize = 2;
    /// MR3: a [`Kind`] value.
    pub const KIND: usize = 3;
    /// MR4: ESR_EL1 as the CPU reported it.
    pub const ESR: usize = 4;
    /// Message length.
    pub const LENGTH: usize = 5;

    crate::numbered! {
        /// What the faulting access tried to do.
        pub enum Access {
            Read = 0,
            Write = 1,
            Execute = 2,
        }
    }

    crate::numbered! {
        /// Why the translation failed.
        pub enum Kind {
            /// Nothing mapped there.
            Translation = 0,
            /// Mapped, but without the right for this access.
            Permission = 1,
            /// Anything else (access flag, external abort, ...): see the ESR.
            Other = 2,
        }
    }
}

/// Replying to a fault: label 0 just resumes the faulting thread (it retries the
/// instruction); label [`REPLY_MAP`] first maps frames into the faulting thread's address
/// space, as the map item in MR0..MR4 says.
pub mod fault_reply {
    /// Resume only.
    pub const RESUME: u64 = 0;
    /// Map, then resume. MR0 = Frame CPtr (in the replier's CSpace), MR1 = first page
    /// within the frame, MR2 = number of pages, MR3 = virtual address in the faulter,
    /// MR4 = [`MapFlags`](crate::object::MapFlags).
    pub const REPLY_MAP: u64 = 1;
    /// Length of a map reply.
    pub const MAP_LENGTH: usize = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msginfo_round_trips_and_rejects() {
        let m = MsgInfo {
            label: MAX_LABEL,
            length: MAX_MRS,
            caps: 1,
        };
        assert_eq!(MsgInfo::decode(m.encode()), Some(m));
        let m = MsgInfo::new(42, 3);
        assert_eq!(MsgInfo::decode(m.encode()), Some(m));
        assert_eq!(MsgInfo::decode(65), None);
        assert_eq!(MsgInfo::decode(2 << 8), None);
        assert_eq!(MsgInfo::decode(0), Some(MsgInfo::default()));
    }

    #[test]
    fn fault_labels_round_trip() {
        for v in 1..=5 {
            assert_eq!(FaultLabel::try_from(v).map(|l| l as u64), Ok(v));
        }
        assert!(FaultLabel::try_from(0).is_err());
        assert!(vm_fault::Access::try_from(3).is_err());
        assert!(vm_fault::Kind::try_from(3).is_err());
    }
}
