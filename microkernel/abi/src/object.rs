//! Kernel object types, their sizes, capability rights, and mapping flags.

/// Bytes of one CNode slot (a capability and its derivation-tree and mapping links).
pub const SLOT_BITS: u32 = 6;
/// Smallest and largest CNode radix (log2 of the number of slots).
pub const CNODE_MIN_RADIX: u32 = 1;
pub const CNODE_MAX_RADIX: u32 = 16;
/// Smallest and largest frame (4 KiB .. 2 MiB).
pub const FRAME_MIN_BITS: u32 = 12;
pub const FRAME_MAX_BITS: u32 = 21;
/// Smallest and largest untyped object.
pub const UNTYPED_MIN_BITS: u32 = 4;
pub const UNTYPED_MAX_BITS: u32 = 47;
/// TCB, endpoint, notification, VSpace and page-table object sizes (log2 bytes).
pub const TCB_BITS: u32 = 11;
pub const ENDPOINT_BITS: u32 = 5;
pub const NOTIFICATION_BITS: u32 = 5;
/// A VSpace: the level-0 table and the kernel's record of it.
pub const VSPACE_BITS: u32 = 13;
/// A page table: the table, one mapping-list node per entry (so frames mapped through it
/// can be unmapped when their capability is revoked), and a header.
pub const PAGE_TABLE_BITS: u32 = 14;
/// A timer (`TimerArm`): its deadline, the notification it signals and links in the
/// kernel's list of armed timers (40 bytes used).
pub const TIMER_BITS: u32 = 6;
/// Highest thread priority (priorities are 0..=MAX_PRIORITY).
pub const MAX_PRIORITY: u64 = 255;

crate::numbered! {
    /// The type of a capability, as `DebugCapType` reports it.
    pub enum CapType {
        Null = 0,
        Untyped = 1,
        Tcb = 2,
        Endpoint = 3,
        Notification = 4,
        CNode = 5,
        VSpace = 6,
        PageTable = 7,
        Frame = 8,
        IrqControl = 9,
        IrqHandler = 10,
        /// A capability whose object is being destroyed (internal; seen only mid-delete).
        Zombie = 11,
        /// The right to print on the kernel's debug console (`DebugPutStr`).
        Console = 12,
        /// The right to power the machine off (`DebugPowerOff`). The kernel gives the only
        /// one to the root task.
        PowerControl = 13,
        /// A saved reply (`SaveCaller`): the right to answer one caller, once, with
        /// `Send`. It names the waiting thread; it cannot be copied.
        Reply = 14,
        /// A timer object: signals a notification at a deadline (`TimerArm`).
        Timer = 15,
    }
}

crate::numbered! {
    /// What `UntypedRetype` can make.
    pub enum ObjectType {
        Untyped = 1,
        Tcb = 2,
        Endpoint = 3,
        Notification = 4,
        CNode = 5,
        VSpace = 6,
        PageTable = 7,
        Frame = 8,
        Timer = 9,
    }
}

impl ObjectType {
    /// log2 of the object's size in bytes, given the `size_bits` argument of `UntypedRetype`
    /// (the radix for CNodes, the size for frames and untyped, ignored otherwise); `None` if
    /// that argument is out of range for the type.
    pub fn object_bits(self, size_bits: u64) -> Option<u32> {
        let arg = u32::try_from(size_bits).ok();
        match self {
            Self::Tcb => Some(TCB_BITS),
            Self::Endpoint => Some(ENDPOINT_BITS),
            Self::Notification => Some(NOTIFICATION_BITS),
            Self::VSpace => Some(VSPACE_BITS),
            Self::PageTable => Some(PAGE_TABLE_BITS),
            Self::Timer => Some(TIMER_BITS),
            Self::CNode => arg
                .filter(|r| (CNODE_MIN_RADIX..=CNODE_MAX_RADIX).contains(r))
                .map(|r| r + SLOT_BITS),
            Self::Frame => arg.filter(|b| (FRAME_MIN_BITS..=FRAME_MAX_BITS).contains(b)),
            Self::Untyped => arg.filter(|b| (UNTYPED_MIN_BITS..=UNTYPED_MAX_BITS).contains(b)),
        }
    }
}

/// Rights of a capability. Endpoints: READ = receive, WRITE = send, GRANT = send
/// capabilities. Notifications: READ = wait, WRITE = signal. Frames: READ, WRITE = what
/// mappings through it may allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRights(pub u64);

impl CapRights {
    pub const READ: Self = Self(1);
    pub const WRITE: Self = Self(2);
    pub const GRANT: Self = Self(4);
    pub const ALL: Self = Self(7);
    pub const NONE: Self = Self(0);

    /// Rights from a user word; bits beyond the three rights are ignored.
    pub const fn from_word(w: u64) -> Self {
        Self(w & 7)
    }

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The rights both have.
    pub const fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
}

/// How `FrameMap` (and a fault reply's map item) maps pages: rights and cacheability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapFlags(pub u64);

impl MapFlags {
    pub const READ: Self = Self(1);
    pub const WRITE: Self = Self(2);
    pub const EXECUTE: Self = Self(4);
    /// Normal memory, not cached (device frames are always mapped as device memory).
    pub const UNCACHED: Self = Self(8);
    pub const RW: Self = Self(3);
    pub const RX: Self = Self(5);
    /// Every defined bit.
    pub const MASK: u64 = 0xf;

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// `None` if undefined bits are set, or if the mapping would be writable or executable
    /// without being readable.
    pub fn validate(word: u64) -> Option<Self> {
        let f = Self(word);
        let needs_read = word & (Self::WRITE.0 | Self::EXECUTE.0) != 0;
        if word & !Self::MASK != 0 || (needs_read && !f.contains(Self::READ)) {
            return None;
        }
        Some(f)
    }
}

/// Fixed slots of the root task's CSpace (its CNode), filled by the kernel at boot.
pub mod init_slots {
    /// Always empty.
    pub const NULL: u64 = 0;
    /// The root task's TCB.
    pub const TCB: u64 = 1;
    /// The root task's CNode (its whole CSpace).
    pub const CNODE: u64 = 2;
    /// The root task's VSpace.
    pub const VSPACE: u64 = 3;
    /// The right to create IRQ handlers.
    pub const IRQ_CONTROL: u64 = 4;
    /// The frame of the root task's IPC buffer.
    pub const IPC_BUFFER: u64 = 5;
    /// The frame of the boot-info pages.
    pub const BOOTINFO: u64 = 6;
    /// The frame of the root task's stack (`INIT_STACK_SIZE` bytes).
    pub const STACK: u64 = 7;
    /// The right to print on the kernel's debug console.
    pub const CONSOLE: u64 = 8;
    /// The right to power the machine off.
    pub const POWER: u64 = 9;
    /// First slot the kernel fills with variable caps (untyped, initrd frames); see
    /// `BootInfo` for where each kind starts and ends.
    pub const FIRST_VARIABLE: u64 = 10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_sizes() {
        assert_eq!(ObjectType::Tcb.object_bits(0), Some(11));
        assert_eq!(ObjectType::CNode.object_bits(4), Some(10));
        assert_eq!(ObjectType::CNode.object_bits(0), None);
        assert_eq!(ObjectType::CNode.object_bits(17), None);
        assert_eq!(ObjectType::Frame.object_bits(12), Some(12));
        assert_eq!(ObjectType::Frame.object_bits(21), Some(21));
        assert_eq!(ObjectType::Frame.object_bits(22), None);
        assert_eq!(ObjectType::Frame.object_bits(u64::MAX), None);
        assert_eq!(ObjectType::Untyped.object_bits(3), None);
        assert_eq!(ObjectType::Timer.object_bits(u64::MAX), Some(TIMER_BITS));
        for v in 1..=9 {
            assert_eq!(ObjectType::try_from(v).map(|t| t as u64), Ok(v));
        }
        assert!(ObjectType::try_from(10).is_err());
        for v in 0..=15 {
            assert_eq!(CapType::try_from(v).map(|t| t as u64), Ok(v));
        }
        assert!(ObjectType::try_from(0).is_err());
        assert_eq!(CapType::try_from(13), Ok(CapType::PowerControl));
        assert_eq!(CapType::try_from(14), Ok(CapType::Reply));
        assert_eq!(CapType::try_from(15), Ok(CapType::Timer));
        assert!(CapType::try_from(16).is_err());
    }

    #[test]
    fn map_flags_validation() {
        assert_eq!(MapFlags::validate(3), Some(MapFlags::RW));
        assert_eq!(MapFlags::validate(5), Some(MapFlags::RX));
        assert_eq!(MapFlags::validate(1), Some(MapFlags::READ));
        assert_eq!(MapFlags::validate(0), Some(MapFlags(0)));
        assert_eq!(MapFlags::validate(2), None);
        assert_eq!(MapFlags::validate(4), None);
        assert_eq!(MapFlags::validate(16), None);
    }

    #[test]
    fn rights() {
        assert!(CapRights::ALL.contains(CapRights::GRANT));
        assert!(!CapRights::READ.contains(CapRights::WRITE));
        assert_eq!(CapRights::from_word(u64::MAX), CapRights::ALL);
        assert_eq!(CapRights::ALL.intersect(CapRights::WRITE), CapRights::WRITE);
    }
}
