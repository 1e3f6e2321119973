//! The Generic Interrupt Controller, v2 (memory-mapped CPU interface) and v3 (redistributors
//! and the system-register CPU interface). References: GICv2 IHI 0048B section 4, GICv3
//! IHI 0069 sections 9 (distributor), 9.10 (redistributor) and 12 (CPU interface).
//!
//! All interrupts are Group 1, level/edge as configured by the device tree defaults, routed
//! to the boot core.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_structs! {
    /// Distributor (GICv2 4.3, GICv3 12.9); only what we use.
    #[allow(non_snake_case)]
    Distributor {
        (0x000 => CTLR: ReadWrite<u32>),
        (0x004 => TYPER: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x080 => IGROUPR: [ReadWrite<u32>; 32]),
        (0x100 => ISENABLER: [ReadWrite<u32>; 32]),
        (0x180 => ICENABLER: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x400 => IPRIORITYR: [ReadWrite<u8>; 1024]),
        (0x800 => ITARGETSR: [ReadWrite<u8>; 1024]),
        (0xc00 => _reserved2),
        (0x6000 => IROUTER: [ReadWrite<u64>; 1020]),
        (0x7fe0 => @END),
    }
}

register_structs! {
    /// GICv2 CPU interface (4.4).
    #[allow(non_snake_case)]
    CpuInterface {
        (0x00 => CTLR: ReadWrite<u32>),
        (0x04 => PMR: ReadWrite<u32>),
        (0x08 => BPR: ReadWrite<u32>),
        (0x0c => IAR: ReadOnly<u32>),
        (0x10 => EOIR: ReadWrite<u32>),
        (0x14 => @END),
    }
}

register_structs! {
    /// GICv3 redistributor, RD_base frame (9.11).
    #[allow(non_snake_case)]
    RedistControl {
        (0x00 => CTLR: ReadWrite<u32>),
        (0x04 => IIDR: ReadOnly<u32>),
        (0x08 => TYPER: ReadOnly<u64>),
        (0x10 => _reserved0),
        (0x14 => WAKER: ReadWrite<u32>),
        (0x18 => @END),
    }
}

register_structs! {
    /// GICv3 redistributor, SGI_base frame (RD_base + 64 KiB): SGIs and PPIs of one core.
    #[allow(non_snake_case)]
    RedistSgi {
        (0x000 => _reserved0),
        (0x080 => IGROUPR0: ReadWrite<u32>),
        (0x084 => _reserved1),
        (0x100 => ISENABLER0: ReadWrite<u32>),
        (0x104 => _reserved2),
        (0x180 => ICENABLER0: ReadWrite<u32>),
        (0x184 => _reserved3),
        (0x400 => IPRIORITYR: [ReadWrite<u8>; 32]),
        (0x420 => @END),
    }
}

/// A redistributor frame pair is 128 KiB in GICv3 (9.10).
const REDIST_STRIDE: u64 = 0x2_0000;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICD_CTLR with the security extension disabled (DS = 1, as on QEMU virt): EnableGrp1 and,
/// for v3, affinity routing (ARE).
const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
const GICD_CTLR_ENABLE_GRP0: u32 = 1 << 0;
const GICD_CTLR_ARE: u32 = 1 << 4;
/// INTIDs 1020..=1023 are special; 1023 means no interrupt pending.
pub const SPURIOUS: u32 = 1023;
const DEFAULT_PRIORITY: u8 = 0x80;

enum Version {
    V2 { cpu: &'static CpuInterface },
    V3 { sgi: &'static RedistSgi },
}

/// The interrupt controller, for the boot core.
pub struct Gic {
    dist: &'static Distributor,
    version: Version,
}

impl Gic {
    /// Initialises a GICv2 and this core's CPU interface.
    ///
    /// # Safety
    /// `dist` and `cpu` must be kernel virtual addresses of a GICv2 distributor and CPU
    /// interface, mapped as device memory for the rest of the kernel's life, driven by no one
    /// else.
    pub unsafe fn new_v2(dist: u64, cpu: u64) -> Self {
        // SAFETY: the caller guarantees these map the GIC's registers for 'static.
        let (dist, cpu) = unsafe {
            (
                &*(dist as *const Distributor),
                &*(cpu as *const CpuInterface),
            )
        };
        dist.CTLR.set(0);
        dist.IGROUPR[0].set(0); // SGIs and PPIs: group 0 is the only group without security
        dist.CTLR.set(GICD_CTLR_ENABLE_GRP0 | GICD_CTLR_ENABLE_GRP1);
        cpu.PMR.set(0xff);
        cpu.BPR.set(0);
        cpu.CTLR.set(1);
        Self {
            dist,
            version: Version::V2 { cpu },
        }
    }

    /// Initialises a GICv3, wakes this core's redistributor and enables the system-register
    /// CPU interface.
    ///
    /// # Safety
    /// `dist` and `redists` must be kernel virtual addresses of a GICv3 distributor and of
    /// `redist_size` bytes of redistributor frames, mapped as device memory for the rest of
    /// the kernel's life, driven by no one else.
    pub unsafe fn new_v3(dist: u64, redists: u64, redist_size: u64, affinity: u32) -> Option<Self> {
        // SAFETY: the caller guarantees `dist` maps the distributor for 'static.
        let dist = unsafe { &*(dist as *const Distributor) };
        dist.CTLR.set(0);
        dist.CTLR.set(GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);

        let mut offset = 0;
        let rd = loop {
            if offset + REDIST_STRIDE > redist_size {
                return None;
            }
            // SAFETY: `offset + 128 KiB` is inside the mapped redistributor region.
            let rd = unsafe { &*((redists + offset) as *const RedistControl) };
            let typer = rd.TYPER.get();
            if (typer >> 32) as u32 == affinity {
                break rd;
            }
            if typer & GICR_TYPER_LAST != 0 {
                return None;
            }
            offset += REDIST_STRIDE;
        };
        rd.WAKER.set(rd.WAKER.get() & !GICR_WAKER_PROCESSOR_SLEEP);
        while rd.WAKER.get() & GICR_WAKER_CHILDREN_ASLEEP != 0 {}
        // SAFETY: the SGI frame follows RD_base at +64 KiB inside the same 128 KiB frame pair.
        let sgi = unsafe { &*((redists + offset + 0x1_0000) as *const RedistSgi) };
        sgi.IGROUPR0.set(u32::MAX);

        // SAFETY: ICC_SRE_EL1.SRE selects the system-register interface (EL2, if present,
        // allowed it in boot.rs); then unmask all priorities and enable Group 1.
        unsafe {
            core::arch::asm!(
                "mrs {t}, S3_0_C12_C12_5",   // ICC_SRE_EL1
                "orr {t}, {t}, #1",
                "msr S3_0_C12_C12_5, {t}",
                "isb",
                "mov {t}, #0xff",
                "msr S3_0_C4_C6_0, {t}",     // ICC_PMR_EL1
                "msr S3_0_C12_C12_3, xzr",   // ICC_BPR1_EL1
                "mov {t}, #1",
                "msr S3_0_C12_C12_7, {t}",   // ICC_IGRPEN1_EL1
                "isb",
                t = out(reg) _,
                options(nostack),
            )
        };
        Some(Self {
            dist,
            version: Version::V3 { sgi },
        })
    }

    /// Enables interrupt `intid`, routed to the boot core.
    pub fn enable(&self, intid: u32) {
        let (word, bit) = ((intid / 32) as usize, 1u32 << (intid % 32));
        let i = intid as usize;
        match &self.version {
            Version::V3 { sgi } if intid < 32 => {
                sgi.IPRIORITYR[i].set(DEFAULT_PRIORITY);
                sgi.ISENABLER0.set(bit);
            }
            Version::V3 { .. } => {
                if let Some(r) = self.dist.IROUTER.get(i) {
                    r.set(0);
                }
                self.enable_spi(i, word, bit, 1);
            }
            Version::V2 { .. } => {
                self.dist.IPRIORITYR[i].set(DEFAULT_PRIORITY);
                if intid >= 32 {
                    self.dist.ITARGETSR[i].set(1);
                }
                self.enable_spi(i, word, bit, 0);
            }
        }
    }

    fn enable_spi(&self, i: usize, word: usize, bit: u32, group: u32) {
        let (Some(prio), Some(group_reg), Some(enable)) = (
            self.dist.IPRIORITYR.get(i),
            self.dist.IGROUPR.get(word),
            self.dist.ISENABLER.get(word),
        ) else {
            return;
        };
        prio.set(DEFAULT_PRIORITY);
        group_reg.set((group_reg.get() & !bit) | if group == 1 { bit } else { 0 });
        enable.set(bit);
    }

    /// Masks interrupt `intid`.
    pub fn disable(&self, intid: u32) {
        let (word, bit) = ((intid / 32) as usize, 1u32 << (intid % 32));
        match &self.version {
            Version::V3 { sgi } if intid < 32 => sgi.ICENABLER0.set(bit),
            _ => {
                if let Some(r) = self.dist.ICENABLER.get(word) {
                    r.set(bit);
                }
            }
        }
    }

    /// Acknowledges the highest-priority pending interrupt: its INTID, or [`SPURIOUS`].
    pub fn acknowledge(&self) -> u32 {
        match &self.version {
            Version::V2 { cpu } => cpu.IAR.get() & 0x3ff,
            Version::V3 { .. } => {
                let v: u64;
                // SAFETY: reading ICC_IAR1_EL1 acknowledges the interrupt we now handle.
                unsafe { core::arch::asm!("mrs {}, S3_0_C12_C12_0", out(reg) v, options(nostack)) };
                (v & 0xff_ffff) as u32
            }
        }
    }

    /// Signals the end of handling `intid`.
    pub fn end_of_interrupt(&self, intid: u32) {
        match &self.version {
            Version::V2 { cpu } => cpu.EOIR.set(intid),
            // SAFETY: writing ICC_EOIR1_EL1 with an acknowledged INTID completes it.
            Version::V3 { .. } => unsafe {
                core::arch::asm!("msr S3_0_C12_C12_1, {}", in(reg) u64::from(intid), options(nostack))
            },
        }
    }
}
