//! The boot-info page: what the kernel tells the root task about the machine at start.
//!
//! The kernel maps the read-only pages holding a [`BootInfo`] at [`BOOTINFO_VADDR`] in the
//! root task and passes that address in `x0`. It also lists the capabilities the root task
//! starts with (see `object::init_slots` for the fixed ones). Initial user address-space
//! layout of the root task:
//!
//! ```text
//!   0x0000_0040_0000_6000  end of the IPC buffer
//!   0x0000_0040_0000_5000  INIT_IPC_BUFFER_VADDR
//!   0x0000_0040_0000_4000  end of the boot-info pages (one 16 KiB frame)
//!   0x0000_0040_0000_0000  BOOTINFO_VADDR = INIT_STACK_TOP
//!                          stack (INIT_STACK_SIZE, grows down)
//!   0x0000_003f_ffff_0000  stack bottom; the page below stays unmapped (guard)
//!          ...
//!   ELF segments, as linked (user/rt/link.ld puts them at 0x0020_0000)
//! ```

/// `BootInfo::magic`: "MKBOOT01" read as a little-endian `u64`.
pub const BOOTINFO_MAGIC: u64 = u64::from_le_bytes(*b"MKBOOT01");
/// `BootInfo::version` of this layout.
pub const BOOTINFO_VERSION: u64 = 4;
/// Where the boot-info pages are mapped in the root task.
pub const BOOTINFO_VADDR: u64 = 0x0000_0040_0000_0000;
/// Size of the boot-info mapping (one frame).
pub const BOOTINFO_SIZE: u64 = 0x4000;
/// Where the root task's IPC buffer is mapped.
pub const INIT_IPC_BUFFER_VADDR: u64 = 0x0000_0040_0000_5000;
/// log2 of the number of slots in the root task's CNode.
pub const INIT_CNODE_RADIX: u64 = 12;
/// Top of the root task's initial stack (exclusive).
pub const INIT_STACK_TOP: u64 = BOOTINFO_VADDR;
/// Size of the root task's initial stack.
pub const INIT_STACK_SIZE: u64 = 64 * 1024;

/// Capacity of `BootInfo::untyped`.
pub const MAX_UNTYPED: usize = 128;
/// Capacity of `BootInfo::initrd_frames`.
pub const MAX_INITRD_FRAMES: usize = 32;
/// Capacity of `BootInfo::image_frames` (init's pages: 512 KiB of code and data filled 128,
/// and init's proxies took it past that).
pub const MAX_IMAGE_FRAMES: usize = 192;
/// Capacity of `BootInfo::virtio`.
pub const MAX_VIRTIO: usize = 32;
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

crate::numbered! {
    /// Who uses a reserved range of RAM.
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
}

/// An untyped capability the root task starts with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct UntypedDesc {
    /// Its slot in the root CNode.
    pub slot: u64,
    pub base: u64,
    pub size_bits: u64,
    /// 1 for device memory (frames only, never zeroed by the kernel), 0 for RAM.
    pub device: u64,
}

/// A frame capability the root task starts with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FrameDesc {
    pub slot: u64,
    pub base: u64,
    pub size_bits: u64,
}

/// One 4 KiB frame of the root task's own ELF image, as the kernel mapped it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ImageFrame {
    pub slot: u64,
    pub vaddr: u64,
    /// The `MapFlags` it is mapped with.
    pub flags: u64,
}

/// A virtio-mmio transport as the device tree describes it: its registers (inside the device
/// untyped memory) and its interrupt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct VirtioDesc {
    pub base: u64,
    pub size: u64,
    /// The GIC interrupt ID (SPI n is INTID 32 + n).
    pub intid: u64,
}

/// The PL011 UART the console server drives (the kernel keeps writing its own banner and
/// fatal messages to it): its registers, the device untyped that covers them (a page of
/// its own), and its interrupt (0: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct UartDesc {
    pub base: u64,
    pub size: u64,
    pub intid: u64,
}

/// A reserved range of RAM and what it holds (`kind` is a [`ReservedKind`] value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ReservedRange {
    pub base: u64,
    pub size: u64,
    pub kind: u64,
}

/// The boot-info pages.
///
/// # Invariants
/// Every byte of RAM is in exactly one of the RAM (non-device) untyped ranges or
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
    /// log2 of the number of slots of the root CNode.
    pub cnode_radix: u64,
    /// First empty slot of the root CNode; every slot from here on is empty.
    pub first_free_slot: u64,
    pub untyped_count: u64,
    /// Untyped memory: all free RAM, and device memory the kernel does not drive.
    pub untyped: [UntypedDesc; MAX_UNTYPED],
    pub reserved_count: u64,
    pub reserved: [ReservedRange; MAX_RESERVED],
    /// Where the initrd lies in physical memory.
    pub initrd: PhysRange,
    pub initrd_frame_count: u64,
    /// Read-only frames covering the initrd, in address order.
    pub initrd_frames: [FrameDesc; MAX_INITRD_FRAMES],
    pub virtio_count: u64,
    /// The virtio-mmio transports, in address order.
    pub virtio: [VirtioDesc; MAX_VIRTIO],
    /// The console's UART (`size` 0: none).
    pub uart: UartDesc,
    pub image_frame_count: u64,
    /// The frames of the root task's ELF image, in address order (so it can map its own
    /// code into other address spaces).
    pub image_frames: [ImageFrame; MAX_IMAGE_FRAMES],
    pub bootargs_len: u64,
    /// `/chosen/bootargs` (QEMU `-append`), not NUL-terminated.
    pub bootargs: [u8; BOOTARGS_MAX],
}

const _: () = assert!(core::mem::size_of::<BootInfo>() as u64 <= BOOTINFO_SIZE);

impl BootInfo {
    /// An empty boot-info page with the magic and version filled in.
    pub const fn new() -> Self {
        Self {
            magic: BOOTINFO_MAGIC,
            version: BOOTINFO_VERSION,
            ram_total: 0,
            counter_frequency: 0,
            tick_hz: 0,
            cnode_radix: 0,
            first_free_slot: 0,
            untyped_count: 0,
            untyped: [UntypedDesc {
                slot: 0,
                base: 0,
                size_bits: 0,
                device: 0,
            }; MAX_UNTYPED],
            reserved_count: 0,
            reserved: [ReservedRange {
                base: 0,
                size: 0,
                kind: 0,
            }; MAX_RESERVED],
            initrd: PhysRange { base: 0, size: 0 },
            initrd_frame_count: 0,
            initrd_frames: [FrameDesc {
                slot: 0,
                base: 0,
                size_bits: 0,
            }; MAX_INITRD_FRAMES],
            virtio_count: 0,
            virtio: [VirtioDesc {
                base: 0,
                size: 0,
                intid: 0,
            }; MAX_VIRTIO],
            uart: UartDesc {
                base: 0,
                size: 0,
                intid: 0,
            },
            image_frame_count: 0,
            image_frames: [ImageFrame {
                slot: 0,
                vaddr: 0,
                flags: 0,
            }; MAX_IMAGE_FRAMES],
            bootargs_len: 0,
            bootargs: [0; BOOTARGS_MAX],
        }
    }

    /// The untyped capabilities (count clamped to the capacity).
    pub fn untyped(&self) -> &[UntypedDesc] {
        &self.untyped[..clamp(self.untyped_count, MAX_UNTYPED)]
    }

    /// The initrd's frame capabilities (count clamped to the capacity).
    pub fn initrd_frames(&self) -> &[FrameDesc] {
        &self.initrd_frames[..clamp(self.initrd_frame_count, MAX_INITRD_FRAMES)]
    }

    /// The virtio-mmio transports (count clamped to the capacity).
    pub fn virtio(&self) -> &[VirtioDesc] {
        &self.virtio[..clamp(self.virtio_count, MAX_VIRTIO)]
    }

    /// Appends a virtio-mmio transport; `false` when full.
    pub fn push_virtio(&mut self, desc: VirtioDesc) -> bool {
        push(&mut self.virtio, &mut self.virtio_count, desc)
    }

    /// The root task's image frames (count clamped to the capacity).
    pub fn image_frames(&self) -> &[ImageFrame] {
        &self.image_frames[..clamp(self.image_frame_count, MAX_IMAGE_FRAMES)]
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

    /// Appends an untyped capability's description; `false` when full.
    pub fn push_untyped(&mut self, desc: UntypedDesc) -> bool {
        push(&mut self.untyped, &mut self.untyped_count, desc)
    }

    /// Appends an initrd frame's description; `false` when full.
    pub fn push_initrd_frame(&mut self, desc: FrameDesc) -> bool {
        push(&mut self.initrd_frames, &mut self.initrd_frame_count, desc)
    }

    /// Appends an image frame's description; `false` when full.
    pub fn push_image_frame(&mut self, frame: ImageFrame) -> bool {
        push(&mut self.image_frames, &mut self.image_frame_count, frame)
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

/// [`bootarg`] read as a decimal number; `None` when missing or not one.
pub fn bootarg_u64(cmdline: &[u8], key: &str) -> Option<u64> {
    core::str::from_utf8(bootarg(cmdline, key)?)
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootarg_numbers() {
        let line = b"run=x file.cache=8 shm.stop=x file.stop=";
        assert_eq!(bootarg_u64(line, "file.cache"), Some(8));
        assert_eq!(bootarg_u64(line, "shm.stop"), None);
        assert_eq!(bootarg_u64(line, "file.stop"), None);
        assert_eq!(bootarg_u64(line, "missing"), None);
    }

    #[test]
    fn push_stops_at_capacity() {
        let mut info = BootInfo::new();
        for i in 0..MAX_UNTYPED as u64 {
            assert!(info.push_untyped(UntypedDesc {
                slot: i,
                base: i * 4096,
                size_bits: 12,
                device: 0
            }));
        }
        assert!(!info.push_untyped(UntypedDesc::default()));
        assert_eq!(info.untyped().len(), MAX_UNTYPED);
        info.untyped_count = u64::MAX;
        assert_eq!(info.untyped().len(), MAX_UNTYPED);
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
