//! The boot-info page: what the kernel tells the root task about the machine at start.
//!
//! The kernel maps one read-only page holding a [`BootInfo`] at [`BOOTINFO_VADDR`] in the root
//! task and passes that address in `x0`. Initial user address-space layout of the root task:
//!
//! ```text
//!   0x0000_0040_0000_1000  end of boot-info page
//!   0x0000_0040_0000_0000  BOOTINFO_VADDR = INIT_STACK_TOP
//!                          stack (INIT_STACK_SIZE, grows down)
//!   0x0000_003f_ffff_0000  stack bottom; the page below stays unmapped (guard)
//!          ...
//!   ELF segments, as linked (user/rt/link.ld puts them at 0x0020_0000)
//! ```

/// `BootInfo::magic`: "MKBOOT01" read as a little-endian `u64`.
pub const BOOTINFO_MAGIC: u64 = u64::from_le_bytes(*b"MKBOOT01");
/// `BootInfo::version` of this layout.
pub const BOOTINFO_VERSION: u64 = 1;
/// Where the boot-info page is mapped in the root task.
pub const BOOTINFO_VADDR: u64 = 0x0000_0040_0000_0000;
/// Top of the root task's initial stack (exclusive).
pub const INIT_STACK_TOP: u64 = BOOTINFO_VADDR;
/// Size of the root task's initial stack.
pub const INIT_STACK_SIZE: u64 = 64 * 1024;

/// Capacity of `BootInfo::free`.
pub const MAX_FREE: usize = 64;
/// Capacity of `BootInfo::reserved`.
pub const MAX_RESERVED: usize = 32;
/// Capacity of `BootInfo::bootargs`.
pub const BOOTARGS_MAX: usize = 1024;

/// A range of physical memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PhysRange {
    pub base: u64,
    pub size: u64,
}

/// Who uses a reserved range of RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ReservedKind {
    /// The kernel image, including its boot page tables and stack.
    Kernel = 1,
    /// The flattened device tree.
    DeviceTree = 2,
    /// The initrd archive.
    Initrd = 3,
    /// Memory the firmware or device tree reserves (`/memreserve/`, `/reserved-memory`).
    Firmware = 4,
    /// Frames the kernel took at boot for the root task (its image, stack, page tables, TCB).
    BootAlloc = 5,
}

impl TryFrom<u64> for ReservedKind {
    type Error = u64;

    fn try_from(value: u64) -> Result<Self, u64> {
        match value {
            1 => Ok(Self::Kernel),
            2 => Ok(Self::DeviceTree),
            3 => Ok(Self::Initrd),
            4 => Ok(Self::Firmware),
            5 => Ok(Self::BootAlloc),
            other => Err(other),
        }
    }
}

/// A reserved range of RAM and what it holds (`kind` is a [`ReservedKind`] value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ReservedRange {
    pub base: u64,
    pub size: u64,
    pub kind: u64,
}

/// The boot-info page.
///
/// # Invariants
/// Every byte of RAM is in exactly one of `free[..free_count]` or
/// `reserved[..reserved_count]`, all ranges are 4 KiB aligned, and the sizes add up to
/// `ram_total`.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BootInfo {
    pub magic: u64,
    pub version: u64,
    /// Bytes of RAM the device tree describes.
    pub ram_total: u64,
    /// `CNTFRQ_EL0`: ticks per second of the generic counter.
    pub counter_frequency: u64,
    /// The kernel's scheduler tick rate.
    pub tick_hz: u64,
    pub free_count: u64,
    /// Free RAM (the root task's untyped memory, once the kernel hands it out).
    pub free: [PhysRange; MAX_FREE],
    pub reserved_count: u64,
    pub reserved: [ReservedRange; MAX_RESERVED],
    /// Where the initrd lies in physical memory.
    pub initrd: PhysRange,
    pub bootargs_len: u64,
    /// `/chosen/bootargs` (QEMU `-append`), not NUL-terminated.
    pub bootargs: [u8; BOOTARGS_MAX],
}

const _: () = assert!(core::mem::size_of::<BootInfo>() <= 4096);

impl BootInfo {
    /// An empty boot-info page with the magic and version filled in.
    pub const fn new() -> Self {
        Self {
            magic: BOOTINFO_MAGIC,
            version: BOOTINFO_VERSION,
            ram_total: 0,
            counter_frequency: 0,
            tick_hz: 0,
            free_count: 0,
            free: [PhysRange { base: 0, size: 0 }; MAX_FREE],
            reserved_count: 0,
            reserved: [ReservedRange {
                base: 0,
                size: 0,
                kind: 0,
            }; MAX_RESERVED],
            initrd: PhysRange { base: 0, size: 0 },
            bootargs_len: 0,
            bootargs: [0; BOOTARGS_MAX],
        }
    }

    /// The free ranges (count clamped to the capacity).
    pub fn free_ranges(&self) -> &[PhysRange] {
        &self.free[..clamp(self.free_count, MAX_FREE)]
    }

    /// The reserved ranges (count clamped to the capacity).
    pub fn reserved_ranges(&self) -> &[ReservedRange] {
        &self.reserved[..clamp(self.reserved_count, MAX_RESERVED)]
    }

    /// The kernel command line (length clamped to the capacity).
    pub fn bootargs(&self) -> &[u8] {
        &self.bootargs[..clamp(self.bootargs_len, BOOTARGS_MAX)]
    }

    /// Copies `args` into `bootargs`, truncated to the capacity.
    pub fn set_bootargs(&mut self, args: &[u8]) {
        let len = args.len().min(BOOTARGS_MAX);
        self.bootargs[..len].copy_from_slice(&args[..len]);
        self.bootargs_len = len as u64;
    }

    /// Appends a free range; `false` when full.
    pub fn push_free(&mut self, base: u64, size: u64) -> bool {
        push(
            &mut self.free,
            &mut self.free_count,
            PhysRange { base, size },
        )
    }

    /// Appends a reserved range; `false` when full.
    pub fn push_reserved(&mut self, base: u64, size: u64, kind: ReservedKind) -> bool {
        let range = ReservedRange {
            base,
            size,
            kind: kind as u64,
        };
        push(&mut self.reserved, &mut self.reserved_count, range)
    }
}

impl Default for BootInfo {
    fn default() -> Self {
        Self::new()
    }
}

fn clamp(count: u64, capacity: usize) -> usize {
    usize::try_from(count).map_or(capacity, |c| c.min(capacity))
}

fn push<T>(slots: &mut [T], count: &mut u64, value: T) -> bool {
    let index = clamp(*count, slots.len());
    match slots.get_mut(index) {
        Some(slot) => {
            *slot = value;
            *count = index as u64 + 1;
            true
        }
        None => false,
    }
}

/// Finds `key=value` in a space-separated command line and returns `value`.
pub fn bootarg<'a>(cmdline: &'a [u8], key: &str) -> Option<&'a [u8]> {
    cmdline.split(|&b| b == b' ').find_map(|word| {
        let rest = word.strip_prefix(key.as_bytes())?;
        rest.strip_prefix(b"=")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_stops_at_capacity() {
        let mut info = BootInfo::new();
        for i in 0..MAX_FREE as u64 {
            assert!(info.push_free(i * 4096, 4096));
        }
        assert!(!info.push_free(0, 4096));
        assert_eq!(info.free_ranges().len(), MAX_FREE);
        info.free_count = u64::MAX;
        assert_eq!(info.free_ranges().len(), MAX_FREE);
    }

    #[test]
    fn bootargs_are_clamped_and_searchable() {
        let mut info = BootInfo::new();
        info.set_bootargs(b"test=boot kernel.selftest=data-abort");
        assert_eq!(bootarg(info.bootargs(), "test"), Some(&b"boot"[..]));
        assert_eq!(
            bootarg(info.bootargs(), "kernel.selftest"),
            Some(&b"data-abort"[..])
        );
        assert_eq!(bootarg(info.bootargs(), "tes"), None);
        assert_eq!(bootarg(info.bootargs(), "bench"), None);
        info.bootargs_len = 1 << 40;
        assert_eq!(info.bootargs().len(), BOOTARGS_MAX);
    }

    #[test]
    fn reserved_kinds_round_trip() {
        for k in [
            ReservedKind::Kernel,
            ReservedKind::DeviceTree,
            ReservedKind::Initrd,
            ReservedKind::Firmware,
            ReservedKind::BootAlloc,
        ] {
            assert_eq!(ReservedKind::try_from(k as u64), Ok(k));
        }
        assert_eq!(ReservedKind::try_from(0), Err(0));
    }
}
