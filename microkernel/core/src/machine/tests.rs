//! Tests of device-tree reading: the three QEMU 7.2 blobs in `testdata/`, blobs built here,
//! and corrupted input.

extern crate std;

use std::string::String;
use std::vec::Vec;

use super::*;

const GICV2_A53: &[u8] = include_bytes!("../../testdata/virt-gicv2-a53-512m.dtb");
const GICV3_SMP4: &[u8] = include_bytes!("../../testdata/virt-gicv3-a72-2g-smp4.dtb");
const EL2_MAX: &[u8] = include_bytes!("../../testdata/virt-el2-max-128m.dtb");

const QEMU_TIMER: TimerIntids = TimerIntids {
    secure_phys: 29,
    nonsecure_phys: 30,
    virt: 27,
    hyp: 26,
};

fn mr(base: u64, size: u64) -> MemRange {
    MemRange { base, size }
}

/// QEMU `virt`: 32 transports from 0x0a00_0000, 0x200 apart, on SPIs 16 to 47.
fn assert_qemu_virtio(info: &MachineInfo<'_>) {
    assert_eq!(info.virtio_mmio.len(), 32);
    for (i, slot) in info.virtio_mmio.iter().enumerate() {
        let i = i as u64;
        assert_eq!(slot.reg, mr(0x0a00_0000 + 0x200 * i, 0x200));
        assert_eq!(slot.intid, 32 + 16 + i as u32);
    }
}

#[test]
fn qemu_gicv2_a53_512m() {
    let info = MachineInfo::parse(GICV2_A53).unwrap();
    assert_eq!(info.ram.as_slice(), &[mr(0x4000_0000, 512 << 20)]);
    assert!(info.reserved.is_empty());
    assert_eq!(info.uart, mr(0x0900_0000, 0x1000));
    assert_eq!(
        info.gic,
        GicInfo::V2 {
            distributor: mr(0x0800_0000, 0x1_0000),
            cpu_interface: mr(0x0801_0000, 0x1_0000)
        }
    );
    assert_eq!(info.timer_intid, QEMU_TIMER);
    assert_eq!(info.initrd, Some(mr(0x4800_0000, 0x1388)));
    assert_qemu_virtio(&info);
    assert_eq!(info.bootargs, "test=boot console=verbose");
    assert_eq!(info.psci, Some(PsciConduit::Hvc));
    assert_eq!(info.cpu_count, 1);
    assert_eq!(fdt_total_size(GICV2_A53), Ok(GICV2_A53.len()));
}

#[test]
fn qemu_gicv3_a72_2g_smp4() {
    let info = MachineInfo::parse(GICV3_SMP4).unwrap();
    assert_eq!(info.ram.as_slice(), &[mr(0x4000_0000, 2 << 30)]);
    assert!(info.reserved.is_empty());
    assert_eq!(info.uart, mr(0x0900_0000, 0x1000));
    assert_eq!(
        info.gic,
        GicInfo::V3 {
            distributor: mr(0x0800_0000, 0x1_0000),
            redistributors: mr(0x080a_0000, 0xf6_0000)
        }
    );
    assert_eq!(info.timer_intid, QEMU_TIMER);
    assert_eq!(info.initrd, Some(mr(0x4800_0000, 0x1388)));
    assert_qemu_virtio(&info);
    assert_eq!(info.bootargs, "test=gic3");
    assert_eq!(info.psci, Some(PsciConduit::Hvc));
    assert_eq!(info.cpu_count, 4);
    assert_eq!(fdt_total_size(GICV3_SMP4), Ok(GICV3_SMP4.len()));
}

#[test]
fn qemu_el2_max_128m() {
    let info = MachineInfo::parse(EL2_MAX).unwrap();
    assert_eq!(info.ram.as_slice(), &[mr(0x4000_0000, 128 << 20)]);
    assert!(info.reserved.is_empty());
    assert_eq!(info.uart, mr(0x0900_0000, 0x1000));
    // With virtualization=on the GICv2 also has GICH and GICV frames; we take the first two.
    assert_eq!(
        info.gic,
        GicInfo::V2 {
            distributor: mr(0x0800_0000, 0x1_0000),
            cpu_interface: mr(0x0801_0000, 0x1_0000)
        }
    );
    assert_eq!(info.timer_intid, QEMU_TIMER);
    assert_eq!(info.initrd, None);
    assert_qemu_virtio(&info);
    assert_eq!(info.bootargs, "");
    assert_eq!(info.psci, Some(PsciConduit::Smc));
    assert_eq!(info.cpu_count, 1);
}

#[test]
fn mem_range_helpers() {
    let r = mr(0x1000, 0x2000);
    assert_eq!(r.end(), 0x3000);
    assert!(r.contains(0x1000) && r.contains(0x2fff) && !r.contains(0x3000) && !r.contains(0xfff));
    assert!(r.contains_range(mr(0x1800, 0x800)) && !r.contains_range(mr(0x1800, 0x1801)));
    assert!(r.overlaps(mr(0x2fff, 1)) && !r.overlaps(mr(0x3000, 1)) && !r.overlaps(mr(0, 0x1000)));
    assert!(
        !r.overlaps(mr(0x1800, 0)),
        "an empty range overlaps nothing"
    );
    assert_eq!(r.intersection(mr(0x2000, 0x5000)), Some(mr(0x2000, 0x1000)));
    assert_eq!(r.intersection(mr(0x3000, 0x5000)), None);
    assert_eq!(MemRange::from_bounds(5, 3), None);
    assert_eq!(MemRange::from_bounds(3, 5), Some(mr(3, 2)));
    assert_eq!(mr(u64::MAX, 2).checked_end(), None);
    assert_eq!(mr(u64::MAX, 2).end(), u64::MAX);
    assert!(r.is_aligned(0x1000) && !mr(0x1000, 0x10).is_aligned(0x1000));
    assert_eq!(std::format!("{r}"), "[0x1000..0x3000)");
}

// ---- A tiny FDT writer, for blobs QEMU does not produce. ----

#[derive(Default)]
struct Dtb {
    structs: Vec<u8>,
    strings: Vec<u8>,
    reservations: Vec<(u64, u64)>,
}

impl Dtb {
    fn token(&mut self, token: u32) -> &mut Self {
        self.structs.extend_from_slice(&token.to_be_bytes());
        self
    }
    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }
    fn begin(&mut self, name: &str) -> &mut Self {
        self.token(FDT_BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }
    fn end(&mut self) -> &mut Self {
        self.token(FDT_END_NODE)
    }
    fn name_offset(&mut self, name: &str) -> u32 {
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        offset
    }
    fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let offset = self.name_offset(name);
        self.token(FDT_PROP).token(value.len() as u32).token(offset);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }
    fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }
    fn string(&mut self, name: &str, value: &str) -> &mut Self {
        let mut bytes = Vec::from(value.as_bytes());
        bytes.push(0);
        self.prop(name, &bytes)
    }
    fn finish(&mut self) -> Vec<u8> {
        self.token(FDT_END);
        let rsvmap = HEADER_SIZE as u32;
        let off_struct = rsvmap + 16 * (self.reservations.len() as u32 + 1);
        let off_strings = off_struct + self.structs.len() as u32;
        let total = off_strings + self.strings.len() as u32;
        let header = [
            FDT_MAGIC,
            total,
            off_struct,
            off_strings,
            rsvmap,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ];
        let mut blob: Vec<u8> = header.iter().flat_map(|f| f.to_be_bytes()).collect();
        for &(address, size) in self.reservations.iter().chain(&[(0, 0)]) {
            blob.extend_from_slice(&address.to_be_bytes());
            blob.extend_from_slice(&size.to_be_bytes());
        }
        blob.extend_from_slice(&self.structs);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

/// The minimum the parser needs, with 2 address and 2 size cells at the root. `extra` adds
/// nodes (or root properties) after the GIC and before `/cpus`.
fn minimal(extra: impl FnOnce(&mut Dtb)) -> Vec<u8> {
    let mut d = Dtb::default();
    d.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    d.begin("memory@40000000")
        .string("device_type", "memory")
        .cells("reg", &[0, 0x4000_0000, 0, 0x1000_0000])
        .end();
    d.begin("pl011@9000000")
        .prop("compatible", b"arm,pl011\0arm,primecell\0")
        .cells("reg", &[0, 0x0900_0000, 0, 0x1000])
        .end();
    d.begin("intc@8000000")
        .string("compatible", "arm,gic-400")
        .cells("#interrupt-cells", &[3])
        .cells(
            "reg",
            &[0, 0x0800_0000, 0, 0x1000, 0, 0x0801_0000, 0, 0x2000],
        )
        .end();
    d.begin("timer")
        .string("compatible", "arm,armv8-timer")
        .cells("interrupts", &[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])
        .end();
    extra(&mut d);
    d.begin("cpus")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[0]);
    d.begin("cpu@0")
        .string("device_type", "cpu")
        .cells("reg", &[0])
        .end();
    d.end();
    d.end();
    d.finish()
}

#[test]
fn builder_minimal_blob_parses() {
    let blob = minimal(|_| {});
    let info = MachineInfo::parse(&blob).unwrap();
    assert_eq!(info.ram.as_slice(), &[mr(0x4000_0000, 0x1000_0000)]);
    assert_eq!(info.uart, mr(0x0900_0000, 0x1000));
    assert_eq!(
        info.gic,
        GicInfo::V2 {
            distributor: mr(0x0800_0000, 0x1000),
            cpu_interface: mr(0x0801_0000, 0x2000)
        }
    );
    assert_eq!(info.timer_intid, QEMU_TIMER);
    assert_eq!(
        (info.initrd, info.bootargs, info.psci, info.cpu_count),
        (None, "", None, 1)
    );
    assert!(info.virtio_mmio.is_empty() && info.reserved.is_empty());
}

#[test]
fn reservations_multiple_memory_nodes_and_64_bit_initrd() {
    let blob = {
        let mut d = Dtb {
            reservations: std::vec![
                (0x4800_0000, 0x1000),
                (0x4000_0000, 0x10_0000),
                (0x5000_0000, 0)
            ],
            ..Dtb::default()
        };
        d.begin("")
            .cells("#address-cells", &[2])
            .cells("#size-cells", &[2]);
        // Two memory nodes, out of order, one with an empty second range.
        d.begin("memory@80000000")
            .string("device_type", "memory")
            .cells(
                "reg",
                &[0, 0x8000_0000, 0, 0x1000_0000, 0, 0x9000_0000, 0, 0],
            )
            .end();
        d.begin("memory@40000000")
            .string("device_type", "memory")
            .cells("reg", &[0, 0x4000_0000, 0, 0x1000_0000])
            .end();
        d.begin("reserved-memory")
            .cells("#address-cells", &[1])
            .cells("#size-cells", &[1])
            .prop("ranges", &[]);
        d.begin("tee@4e000000")
            .cells("reg", &[0x4e00_0000, 0x20_0000])
            .prop("no-map", &[])
            .end();
        d.begin("pool")
            .string("compatible", "shared-dma-pool")
            .cells("size", &[0x10_0000])
            .end();
        d.end();
        d.begin("pl011@9000000")
            .string("compatible", "arm,pl011")
            .cells("reg", &[0, 0x0900_0000, 0, 0x1000])
            .end();
        d.begin("pl011@9040000")
            .string("compatible", "arm,pl011")
            .cells("reg", &[0, 0x0904_0000, 0, 0x1000])
            .end();
        d.begin("aliases").string("serial1", "/pl011@9040000").end();
        d.begin("intc@8000000")
            .string("compatible", "arm,gic-v3")
            .cells("#interrupt-cells", &[3])
            .cells(
                "reg",
                &[0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0xf6_0000],
            )
            .end();
        d.begin("timer")
            .prop("compatible", b"arm,armv8-timer\0arm,armv7-timer\0")
            .cells(
                "interrupts",
                &[1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08, 1, 10, 0xf08],
            )
            .end();
        d.begin("virtio_mmio@a000200")
            .string("compatible", "virtio,mmio")
            .cells("reg", &[0, 0x0a00_0200, 0, 0x200])
            .cells("interrupts", &[0, 17, 1])
            .end();
        d.begin("virtio_mmio@a000000")
            .string("compatible", "virtio,mmio")
            .cells("reg", &[0, 0x0a00_0000, 0, 0x200])
            .cells("interrupts", &[0, 16, 1])
            .end();
        d.begin("psci")
            .string("compatible", "arm,psci-0.2")
            .string("method", "smc")
            .end();
        d.begin("cpus")
            .cells("#address-cells", &[1])
            .cells("#size-cells", &[0]);
        for i in 0..3u32 {
            d.begin(&std::format!("cpu@{i}"))
                .string("device_type", "cpu")
                .cells("reg", &[i])
                .end();
        }
        d.begin("cpu-map").end();
        d.end();
        d.begin("chosen")
            .cells("linux,initrd-start", &[0x1, 0x0000_0000])
            .cells("linux,initrd-end", &[0x1, 0x0020_0000])
            .string("bootargs", "a=b")
            .string("stdout-path", "serial1:115200n8")
            .end();
        d.end();
        d.finish()
    };
    let info = MachineInfo::parse(&blob).unwrap();
    assert_eq!(
        info.ram.as_slice(),
        &[mr(0x4000_0000, 0x1000_0000), mr(0x8000_0000, 0x1000_0000)]
    );
    assert_eq!(
        info.reserved.as_slice(),
        &[
            mr(0x4000_0000, 0x10_0000),
            mr(0x4800_0000, 0x1000),
            mr(0x4e00_0000, 0x20_0000)
        ]
    );
    assert_eq!(
        info.uart,
        mr(0x0904_0000, 0x1000),
        "stdout-path through an alias, options dropped"
    );
    assert_eq!(
        info.gic,
        GicInfo::V3 {
            distributor: mr(0x0800_0000, 0x1_0000),
            redistributors: mr(0x080a_0000, 0xf6_0000)
        }
    );
    assert_eq!(info.timer_intid, QEMU_TIMER);
    assert_eq!(info.initrd, Some(mr(0x1_0000_0000, 0x20_0000)));
    assert_eq!(
        info.virtio_mmio.as_slice(),
        &[
            VirtioMmioSlot {
                reg: mr(0x0a00_0000, 0x200),
                intid: 48
            },
            VirtioMmioSlot {
                reg: mr(0x0a00_0200, 0x200),
                intid: 49
            },
        ]
    );
    assert_eq!(info.bootargs, "a=b");
    assert_eq!(info.psci, Some(PsciConduit::Smc));
    assert_eq!(info.cpu_count, 3);
}

#[test]
fn stdout_path_to_a_full_path_and_to_a_missing_node() {
    let two_uarts = |stdout: &'static str| {
        minimal(move |d| {
            d.begin("pl011@9040000")
                .string("compatible", "arm,pl011")
                .cells("reg", &[0, 0x0904_0000, 0, 0x1000])
                .end();
            d.begin("chosen").string("stdout-path", stdout).end();
        })
    };
    assert_eq!(
        MachineInfo::parse(&two_uarts("/pl011@9040000"))
            .unwrap()
            .uart
            .base,
        0x0904_0000
    );
    // A name without the unit address matches the first such node.
    assert_eq!(
        MachineInfo::parse(&two_uarts("/pl011")).unwrap().uart.base,
        0x0900_0000
    );
    // Unknown path or alias: fall back to the first PL011.
    assert_eq!(
        MachineInfo::parse(&two_uarts("/nope")).unwrap().uart.base,
        0x0900_0000
    );
    assert_eq!(
        MachineInfo::parse(&two_uarts("serial9")).unwrap().uart.base,
        0x0900_0000
    );
    // stdout-path naming a node that is not a PL011: fall back too.
    assert_eq!(
        MachineInfo::parse(&two_uarts("/timer")).unwrap().uart.base,
        0x0900_0000
    );
}

/// Rebuilds `minimal` without the node whose name starts with `skip`.
fn minimal_without(skip: &str) -> Vec<u8> {
    let mut d = Dtb::default();
    d.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    if skip != "memory" {
        d.begin("memory@40000000")
            .string("device_type", "memory")
            .cells("reg", &[0, 0x4000_0000, 0, 0x1000_0000])
            .end();
    }
    if skip != "pl011" {
        d.begin("pl011@9000000")
            .string("compatible", "arm,pl011")
            .cells("reg", &[0, 0x0900_0000, 0, 0x1000])
            .end();
    }
    if skip != "intc" {
        d.begin("intc@8000000")
            .string("compatible", "arm,gic-400")
            .cells("#interrupt-cells", &[3])
            .cells(
                "reg",
                &[0, 0x0800_0000, 0, 0x1000, 0, 0x0801_0000, 0, 0x2000],
            )
            .end();
    }
    if skip != "timer" {
        d.begin("timer")
            .string("compatible", "arm,armv8-timer")
            .cells("interrupts", &[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])
            .end();
    }
    if skip != "cpus" {
        d.begin("cpus")
            .cells("#address-cells", &[1])
            .cells("#size-cells", &[0]);
        d.begin("cpu@0")
            .string("device_type", "cpu")
            .cells("reg", &[0])
            .end();
        d.end();
    }
    d.end();
    d.finish()
}

#[test]
fn missing_required_nodes() {
    assert!(MachineInfo::parse(&minimal_without("")).is_ok());
    assert_eq!(
        MachineInfo::parse(&minimal_without("memory")),
        Err(MachineError::NoMemory)
    );
    assert_eq!(
        MachineInfo::parse(&minimal_without("pl011")),
        Err(MachineError::NoUart)
    );
    assert_eq!(
        MachineInfo::parse(&minimal_without("intc")),
        Err(MachineError::NoGic)
    );
    assert_eq!(
        MachineInfo::parse(&minimal_without("timer")),
        Err(MachineError::NoTimer)
    );
    assert_eq!(
        MachineInfo::parse(&minimal_without("cpus")),
        Err(MachineError::NoCpu)
    );
}

fn malformed(blob: &[u8]) -> &'static str {
    match MachineInfo::parse(blob) {
        Err(MachineError::Malformed(why)) => why,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn bad_property_shapes() {
    let why = malformed(&minimal(|d| {
        d.begin("chosen")
            .cells("linux,initrd-start", &[0x4800_0000])
            .end();
    }));
    assert!(why.contains("only one"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("chosen")
            .cells("linux,initrd-start", &[0x4800_0000])
            .cells("linux,initrd-end", &[0x4700_0000])
            .end();
    }));
    assert!(why.contains("below"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("chosen")
            .prop("linux,initrd-start", &[0; 3])
            .cells("linux,initrd-end", &[0x4700_0000])
            .end();
    }));
    assert!(why.contains("cells"), "{why}");
    // An empty initrd is no initrd.
    let blob = minimal(|d| {
        d.begin("chosen")
            .cells("linux,initrd-start", &[0x4800_0000])
            .cells("linux,initrd-end", &[0x4800_0000])
            .end();
    });
    assert_eq!(MachineInfo::parse(&blob).unwrap().initrd, None);
    let why = malformed(&minimal(|d| {
        d.begin("chosen").prop("bootargs", b"\xff\xfe\0").end();
    }));
    assert!(why.contains("UTF-8"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("psci")
            .string("compatible", "arm,psci")
            .string("method", "magic")
            .end();
    }));
    assert!(why.contains("psci"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("virtio_mmio@a000000")
            .string("compatible", "virtio,mmio")
            .cells("reg", &[0, 0x0a00_0000, 0, 0x200])
            .cells("interrupts", &[0, 16])
            .end();
    }));
    assert!(why.contains("3-cell"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("virtio_mmio@a000000")
            .string("compatible", "virtio,mmio")
            .cells("reg", &[0, 0x0a00_0000, 0, 0x200])
            .cells("interrupts", &[7, 16, 1])
            .end();
    }));
    assert!(why.contains("unknown type"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("virtio_mmio@a000000")
            .string("compatible", "virtio,mmio")
            .cells("reg", &[0, 0x0a00_0000, 0, 0x200])
            .end();
    }));
    assert!(why.contains("without interrupts"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("memory@ffff")
            .string("device_type", "memory")
            .cells("reg", &[0xffff_ffff, 0xffff_f000, 0, 0x2000])
            .end();
    }));
    assert!(why.contains("wraps"), "{why}");
    let why = malformed(&minimal(|d| {
        d.begin("bus")
            .cells("#address-cells", &[3])
            .cells("#size-cells", &[2]);
        d.begin("memory@0")
            .string("device_type", "memory")
            .cells("reg", &[0, 0, 0, 0, 0x1000])
            .end();
        d.end();
    }));
    assert!(why.contains("cells"), "{why}");
    // A GIC whose specifiers are not 3 cells.
    let mut d = Dtb::default();
    d.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    d.begin("memory@40000000")
        .string("device_type", "memory")
        .cells("reg", &[0, 0x4000_0000, 0, 0x1000_0000])
        .end();
    d.begin("pl011@9000000")
        .string("compatible", "arm,pl011")
        .cells("reg", &[0, 0x0900_0000, 0, 0x1000])
        .end();
    d.begin("intc@8000000")
        .string("compatible", "arm,gic-v3")
        .cells("#interrupt-cells", &[4])
        .cells(
            "reg",
            &[0, 0x0800_0000, 0, 0x1000, 0, 0x080a_0000, 0, 0x2000],
        )
        .end();
    d.end();
    assert!(malformed(&d.finish()).contains("#interrupt-cells"));
}

#[test]
fn too_many_entries_is_an_error() {
    let blob = minimal(|d| {
        for i in 0..9u32 {
            d.begin(&std::format!("memory@{i:x}"))
                .string("device_type", "memory")
                .cells("reg", &[1, i << 28, 0, 0x1000])
                .end();
        }
    });
    assert_eq!(
        MachineInfo::parse(&blob),
        Err(MachineError::TooMany {
            what: "RAM ranges",
            max: 8
        })
    );
    let blob = minimal(|d| {
        for i in 0..33u32 {
            d.begin(&std::format!("virtio_mmio@{i:x}"))
                .string("compatible", "virtio,mmio")
                .cells("reg", &[0, 0x0a00_0000 + 0x200 * i, 0, 0x200])
                .cells("interrupts", &[0, 16 + i, 1])
                .end();
        }
    });
    assert_eq!(
        MachineInfo::parse(&blob),
        Err(MachineError::TooMany {
            what: "virtio,mmio nodes",
            max: 32
        })
    );
}

#[test]
fn structural_errors() {
    // FDT_NOP between properties, which the fdt crate would trip over.
    let mut d = Dtb::default();
    d.begin("")
        .cells("#address-cells", &[2])
        .token(FDT_NOP)
        .cells("#size-cells", &[2])
        .end();
    assert!(malformed(&d.finish()).contains("FDT_NOP"));
    // A property after a child node.
    let mut d = Dtb::default();
    d.begin("")
        .begin("a")
        .end()
        .cells("#size-cells", &[2])
        .end();
    assert!(malformed(&d.finish()).contains("after a child"));
    // Unbalanced nodes.
    let mut d = Dtb::default();
    d.begin("").begin("a").end();
    assert!(malformed(&d.finish()).contains("inside a node"));
    let mut d = Dtb::default();
    d.begin("").end().end();
    assert!(malformed(&d.finish()).contains("without a node"));
    // Two roots; a named root; no root.
    let mut d = Dtb::default();
    d.begin("").end().begin("").end();
    assert!(malformed(&d.finish()).contains("more than one root"));
    let mut d = Dtb::default();
    d.begin("root").end();
    assert!(malformed(&d.finish()).contains("root node has a name"));
    assert!(malformed(&Dtb::default().finish()).contains("no root"));
    // Too deep.
    let mut d = Dtb::default();
    d.begin("");
    for _ in 0..MAX_DEPTH {
        d.begin("n");
    }
    for _ in 0..=MAX_DEPTH {
        d.end();
    }
    assert!(malformed(&d.finish()).contains("too deeply"));
    // #address-cells that is not one cell (the fdt crate would `expect` four bytes).
    let mut d = Dtb::default();
    d.begin("").prop("#address-cells", &[0, 2]).end();
    assert!(malformed(&d.finish()).contains("one cell"));
    // A property whose length runs off the end of the structure block.
    let mut blob = minimal(|_| {});
    let off_struct = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
    // The root's first property: BEGIN_NODE, "\0" padded to 4, then FDT_PROP, len.
    assert_eq!(be32(&blob, off_struct + 8), Some(FDT_PROP));
    blob[off_struct + 12..off_struct + 16].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    assert!(malformed(&blob).contains("runs past"));
    // A name offset outside the strings block.
    let mut blob = minimal(|_| {});
    blob[off_struct + 16..off_struct + 20].copy_from_slice(&0x00ff_ffffu32.to_be_bytes());
    assert!(malformed(&blob).contains("strings block"));
}

#[test]
fn header_errors() {
    assert!(matches!(
        MachineInfo::parse(&[]),
        Err(MachineError::BadHeader(_))
    ));
    assert!(matches!(
        fdt_total_size(&[]),
        Err(MachineError::BadHeader(_))
    ));
    assert!(matches!(
        fdt_total_size(&[0xd0, 0x0d, 0xfe]),
        Err(MachineError::BadHeader(_))
    ));
    assert_eq!(fdt_total_size(&GICV2_A53[..8]), Ok(GICV2_A53.len()));
    assert_eq!(
        fdt_total_size(b"\xd0\x0d\xfe\xed\0\0\0\x10"),
        Err(MachineError::BadHeader(
            "totalsize is smaller than the header"
        ))
    );
    assert_eq!(
        fdt_total_size(b"garbage, not a device tree"),
        Err(MachineError::BadHeader("bad magic"))
    );
    assert_eq!(
        MachineInfo::parse(&[0u8; 4096]),
        Err(MachineError::BadHeader("bad magic"))
    );

    // Truncated blob.
    let half = &GICV2_A53[..GICV2_A53.len() / 2];
    assert_eq!(
        MachineInfo::parse(half),
        Err(MachineError::Truncated {
            total_size: GICV2_A53.len(),
            available: half.len()
        })
    );
    // Every prefix fails cleanly.
    for len in 0..GICV2_A53.len() {
        assert!(
            MachineInfo::parse(&GICV2_A53[..len]).is_err(),
            "prefix {len}"
        );
    }
    // A longer slice than totalsize is fine (the kernel may map whole pages).
    let mut padded = Vec::from(GICV2_A53);
    padded.resize(GICV2_A53.len() + 1000, 0xa5);
    assert!(MachineInfo::parse(&padded).is_ok());

    let with_header_field = |index: usize, value: u32| {
        let mut blob = Vec::from(GICV2_A53);
        blob[4 * index..4 * index + 4].copy_from_slice(&value.to_be_bytes());
        MachineInfo::parse(&blob).map(|_| ())
    };
    assert!(
        matches!(
            with_header_field(2, 0xffff_0000),
            Err(MachineError::BadHeader(_))
        ),
        "struct offset"
    );
    assert!(
        matches!(
            with_header_field(3, 0xffff_0000),
            Err(MachineError::BadHeader(_))
        ),
        "strings offset"
    );
    assert!(
        matches!(
            with_header_field(4, 0xffff_0000),
            Err(MachineError::BadHeader(_))
        ),
        "rsvmap offset"
    );
    assert!(
        matches!(with_header_field(5, 16), Err(MachineError::BadHeader(_))),
        "version 16"
    );
    assert!(
        matches!(
            with_header_field(8, 0xffff_ffff),
            Err(MachineError::BadHeader(_))
        ),
        "strings size"
    );
    assert!(
        matches!(
            with_header_field(9, 0xffff_ffff),
            Err(MachineError::BadHeader(_))
        ),
        "struct size"
    );
}

#[test]
fn errors_display_for_the_console() {
    let cases = [
        (
            MachineError::BadHeader("bad magic"),
            "not a usable flattened device tree: bad magic",
        ),
        (
            MachineError::Truncated {
                total_size: 10,
                available: 5,
            },
            "device tree truncated: header says 10 bytes, only 5 given",
        ),
        (MachineError::Malformed("x"), "malformed device tree: x"),
        (
            MachineError::NoMemory,
            "no memory node with a non-empty reg",
        ),
        (MachineError::NoUart, "no PL011 UART (\"arm,pl011\")"),
        (
            MachineError::NoTimer,
            "no architected timer (\"arm,armv8-timer\")",
        ),
        (MachineError::NoCpu, "no cpu node under /cpus"),
        (
            MachineError::TooMany {
                what: "RAM ranges",
                max: 8,
            },
            "more than 8 RAM ranges",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(std::format!("{error}"), text);
    }
    assert!(std::format!("{}", MachineError::NoGic).starts_with("no supported GIC"));
}

/// xorshift64: a fixed-seed source of "random" bytes, the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutates a real blob: flips bytes, sometimes overwrites a word with a token or a large
/// number, sometimes truncates. Parsing must return, never panic.
fn fuzz(seed: u64, iterations: usize) -> (usize, usize) {
    let mut rng = XorShift(seed);
    let blobs = [GICV2_A53, GICV3_SMP4, EL2_MAX];
    let (mut ok, mut err) = (0, 0);
    for _ in 0..iterations {
        let mut blob = Vec::from(blobs[rng.below(blobs.len())]);
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(blob.len());
            match rng.below(4) {
                0 => blob[at] ^= 1 << rng.below(8),
                1 => blob[at] = rng.next() as u8,
                2 => {
                    // A plausible token or length at a word boundary.
                    let at = at & !3;
                    let word = [1u32, 2, 3, 4, 9, 0, 0xffff_ffff, 0x8000_0000][rng.below(8)];
                    if at + 4 <= blob.len() {
                        blob[at..at + 4].copy_from_slice(&word.to_be_bytes());
                    }
                }
                _ => blob.truncate(at.max(1)),
            }
        }
        match MachineInfo::parse(&blob) {
            Ok(_) => ok += 1,
            Err(e) => {
                // Formatting the error must not panic either.
                let _ = std::format!("{e}");
                err += 1;
            }
        }
        let _ = fdt_total_size(&blob);
    }
    (ok, err)
}

#[test]
fn fuzz_mutated_blobs_never_panic() {
    let (ok, err) = fuzz(0x9e37_79b9_7f4a_7c15, 2_000);
    // Most flips land in property values and still parse; enough must be rejected to show
    // the mutations reach the structure.
    assert!(ok > 0 && err > 0, "ok {ok} err {err}");
}

/// A longer run: `cargo test -p kernel-core --release -- --ignored`.
#[test]
#[ignore = "slow; run by hand after touching the parser"]
fn fuzz_long() {
    for seed in 1..=50 {
        fuzz(seed, 20_000);
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = XorShift(12345);
    for len in [0usize, 1, 7, 8, 39, 40, 41, 100, 4096] {
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(MachineInfo::parse(&bytes).is_err());
        // With a valid magic and totalsize, the rest still garbage.
        if len >= 8 {
            bytes[..4].copy_from_slice(&FDT_MAGIC.to_be_bytes());
            bytes[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            assert!(MachineInfo::parse(&bytes).is_err());
        }
    }
    let text: String = "hello, not a dtb".into();
    assert!(MachineInfo::parse(text.as_bytes()).is_err());
}
