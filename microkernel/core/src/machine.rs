//! What the kernel needs from the flattened device tree: RAM, reservations, UART, GIC, timer,
//! initrd, virtio-mmio slots, bootargs, PSCI conduit and CPU count.
//!
//! The blob is read with the `fdt` crate, but that crate trusts its input: it indexes slices
//! with lengths taken from the blob and `unwrap`s tokens and strings. So [`MachineInfo::parse`]
//! first walks the whole blob itself ([`validate`]) and hands it to `fdt` only once every
//! offset, length, token, name and nesting level is known to be sound. After that the few
//! `fdt` calls used here (`all_nodes`, `children`, `properties`, `reg`, `compatible`,
//! `memory_reservations`) cannot panic. Layout per the Devicetree Specification v0.4, ch. 5.
//!
//! Addresses are taken from `reg` as they are, without `ranges` translation: QEMU `virt` puts
//! every device we use directly under the root, where the translation is the identity.
//! Every interrupt is assumed to go to the one GIC, whose specifiers are three cells
//! (type, number, flags) per its binding.

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;
use heapless::Vec;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRange {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MemRange {
    /// The range `[base, base + size)`.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// The range `[start, end)`, or `None` if `end < start`.
    pub const fn from_bounds(start: u64, end: u64) -> Option<Self> {
        if end < start {
            None
        } else {
            Some(Self {
                base: start,
                size: end - start,
            })
        }
    }

    /// One past the last byte, saturating at `u64::MAX` for a range that would wrap (no
    /// constructor in this crate produces one).
    pub const fn end(self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// One past the last byte, or `None` if the range wraps around the address space.
    pub const fn checked_end(self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    /// Holds no bytes.
    pub const fn is_empty(self) -> bool {
        self.size == 0
    }

    /// `addr` lies inside.
    pub const fn contains(self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }

    /// All of `other` lies inside (an empty `other` lies inside if its base does, or is
    /// this range's end).
    pub const fn contains_range(self, other: MemRange) -> bool {
        other.base >= self.base && other.end() <= self.end()
    }

    /// The two ranges share at least one byte.
    pub const fn overlaps(self, other: MemRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.base < other.end() && other.base < self.end()
    }

    /// The bytes both ranges hold, if any.
    pub fn intersection(self, other: MemRange) -> Option<MemRange> {
        let start = self.base.max(other.base);
        let end = self.end().min(other.end());
        (start < end).then(|| MemRange {
            base: start,
            size: end - start,
        })
    }

    /// Base and size are multiples of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        (self.base | self.size) & (align - 1) == 0
    }
}

impl fmt::Display for MemRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}..{:#x})", self.base, self.end())
    }
}

/// The interrupt controller and where its register frames are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicInfo {
    /// GICv2 ("arm,cortex-a15-gic", "arm,gic-400"): distributor and CPU interface.
    V2 {
        /// GICD frame.
        distributor: MemRange,
        /// GICC frame.
        cpu_interface: MemRange,
    },
    /// GICv3 ("arm,gic-v3"): distributor and the first redistributor region.
    V3 {
        /// GICD frame.
        distributor: MemRange,
        /// GICR frames of all CPUs (the first `#redistributor-regions` entry).
        redistributors: MemRange,
    },
}

/// How PSCI calls reach the firmware or hypervisor (the `/psci` `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    /// `HVC #0`: firmware at EL2 (QEMU without `virtualization=on`).
    Hvc,
    /// `SMC #0`: firmware at EL3, or QEMU's emulated EL3 when EL2 is given to us.
    Smc,
}

/// The architected timer's interrupt IDs (`/timer`, "arm,armv8-timer"), in binding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerIntids {
    /// Secure EL1 physical timer.
    pub secure_phys: u32,
    /// Non-secure EL1 physical timer (CNTP).
    pub nonsecure_phys: u32,
    /// Virtual timer (CNTV).
    pub virt: u32,
    /// EL2 (hypervisor) physical timer.
    pub hyp: u32,
}

/// One virtio-mmio transport ("virtio,mmio").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmioSlot {
    /// Register window.
    pub reg: MemRange,
    /// GIC interrupt ID.
    pub intid: u32,
}

/// The machine as described by the device tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineInfo<'a> {
    /// RAM from the memory nodes (`device_type = "memory"`), in address order, empty ranges
    /// left out.
    pub ram: Vec<MemRange, 8>,
    /// `/memreserve/` entries and `/reserved-memory` children with `reg`, in address order.
    pub reserved: Vec<MemRange, 16>,
    /// PL011 ("arm,pl011") registers: the one `/chosen/stdout-path` names, else the first.
    pub uart: MemRange,
    /// The PL011's interrupt (GIC INTID), `None` if its node has no `interrupts`.
    pub uart_intid: Option<u32>,
    /// The interrupt controller.
    pub gic: GicInfo,
    /// Architected timer interrupts.
    pub timer_intid: TimerIntids,
    /// `/chosen` `linux,initrd-start` to `linux,initrd-end`; `None` if absent or empty.
    pub initrd: Option<MemRange>,
    /// virtio-mmio transports, in address order.
    pub virtio_mmio: Vec<VirtioMmioSlot, 32>,
    /// `/chosen/bootargs`, `""` if absent.
    pub bootargs: &'a str,
    /// `/psci` `method`, `None` without a PSCI node.
    pub psci: Option<PsciConduit>,
    /// Children of `/cpus` with `device_type = "cpu"` (at least one).
    pub cpu_count: usize,
}

/// Why a device tree cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineError {
    /// The header is missing, has the wrong magic, or describes blocks we cannot read.
    BadHeader(&'static str),
    /// The slice is shorter than the header's `totalsize`.
    Truncated {
        /// `totalsize` from the header.
        total_size: usize,
        /// Bytes given.
        available: usize,
    },
    /// The structure or strings block is not well formed, or a property has the wrong shape.
    Malformed(&'static str),
    /// No memory node with a non-empty `reg`.
    NoMemory,
    /// No PL011 with a `reg`.
    NoUart,
    /// No supported GIC.
    NoGic,
    /// No architected timer node.
    NoTimer,
    /// No `device_type = "cpu"` node under `/cpus`.
    NoCpu,
    /// More entries than this crate has room for.
    TooMany {
        /// What overflowed.
        what: &'static str,
        /// The capacity.
        max: usize,
    },
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadHeader(why) => write!(f, "not a usable flattened device tree: {why}"),
            Self::Truncated {
                total_size,
                available,
            } => write!(
                f,
                "device tree truncated: header says {total_size} bytes, only {available} given"
            ),
            Self::Malformed(why) => write!(f, "malformed device tree: {why}"),
            Self::NoMemory => f.write_str("no memory node with a non-empty reg"),
            Self::NoUart => f.write_str("no PL011 UART (\"arm,pl011\")"),
            Self::NoGic => f.write_str(
                "no supported GIC (\"arm,cortex-a15-gic\", \"arm,gic-400\" or \"arm,gic-v3\")",
            ),
            Self::NoTimer => f.write_str("no architected timer (\"arm,armv8-timer\")"),
            Self::NoCpu => f.write_str("no cpu node under /cpus"),
            Self::TooMany { what, max } => write!(f, "more than {max} {what}"),
        }
    }
}

const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the version 17 header: ten big-endian u32 fields.
const HEADER_SIZE: usize = 40;
/// Deepest node nesting accepted (the root is depth 1). The `fdt` crate keeps 64 levels.
const MAX_DEPTH: usize = 32;

const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

const PL011: &[&str] = &["arm,pl011"];
const GIC_V2: &[&str] = &["arm,cortex-a15-gic", "arm,gic-400"];
const GIC_V3: &[&str] = &["arm,gic-v3"];
const TIMER: &[&str] = &["arm,armv8-timer", "arm,armv7-timer"];
const VIRTIO_MMIO: &[&str] = &["virtio,mmio"];
const PSCI: &[&str] = &["arm,psci-1.0", "arm,psci-0.2", "arm,psci"];

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(be32(bytes, at)?) << 32 | u64::from(be32(bytes, at.checked_add(4)?)?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Reads only the header: the FDT `totalsize`, after checking the magic (0xd00dfeed). The
/// kernel uses it to know how many bytes to map before calling [`MachineInfo::parse`]. Needs
/// the first 8 bytes.
pub fn fdt_total_size(header: &[u8]) -> Result<usize, MachineError> {
    let magic = be32(header, 0).ok_or(MachineError::BadHeader("shorter than an FDT header"))?;
    if magic != FDT_MAGIC {
        return Err(MachineError::BadHeader("bad magic"));
    }
    let total = be32(header, 4).ok_or(MachineError::BadHeader("shorter than an FDT header"))?;
    let total = total as usize;
    if total < HEADER_SIZE {
        return Err(MachineError::BadHeader(
            "totalsize is smaller than the header",
        ));
    }
    Ok(total)
}

/// The byte range `off..off + size` of a block, if it lies within `total` bytes.
fn block(
    off: u32,
    size: u32,
    total: usize,
    what: &'static str,
) -> Result<(usize, usize), MachineError> {
    let (off, size) = (off as usize, size as usize);
    match off.checked_add(size) {
        Some(end) if end <= total => Ok((off, end)),
        _ => Err(MachineError::BadHeader(what)),
    }
}

/// Checks that the blob is a well-formed version 17 FDT that the `fdt` crate can walk
/// without panicking:
///
/// - the header's blocks lie inside `totalsize`, which lies inside `dtb`;
/// - the memory reservation map ends with its (0, 0) entry inside the blob;
/// - the structure block is one root node (with an empty name) then `FDT_END`; every node
///   name is NUL-terminated UTF-8; nodes nest at most [`MAX_DEPTH`] deep; properties come
///   before child nodes; every property value lies inside the structure block and every
///   property name is a NUL-terminated UTF-8 string inside the strings block;
/// - `#address-cells`, `#size-cells` and `#interrupt-cells` are exactly one cell;
/// - there are no `FDT_NOP` tokens: QEMU never emits them, and `fdt` mishandles them between
///   properties (it asserts on the next token).
pub fn validate(dtb: &[u8]) -> Result<(), MachineError> {
    use MachineError::{BadHeader, Malformed, Truncated};

    // fdt_total_size guarantees total_size >= HEADER_SIZE.
    let total_size = fdt_total_size(dtb)?;
    if dtb.len() < total_size {
        return Err(Truncated {
            total_size,
            available: dtb.len(),
        });
    }
    let blob = &dtb[..total_size];
    // The header is in range, so these reads succeed; `unwrap_or(0)` only avoids a panic path.
    let field = |index: usize| be32(blob, 4 * index).unwrap_or(0);
    let (off_dt_struct, off_dt_strings, off_mem_rsvmap) = (field(2), field(3), field(4));
    let (version, last_comp_version) = (field(5), field(6));
    let (size_dt_strings, size_dt_struct) = (field(8), field(9));

    // size_dt_struct first appeared in version 17, and 16 is the last format change.
    if version < 17 || last_comp_version > 17 {
        return Err(BadHeader(
            "unsupported version (need 17, compatible with 16 or 17)",
        ));
    }
    let (struct_start, struct_end) = block(
        off_dt_struct,
        size_dt_struct,
        total_size,
        "structure block outside the blob",
    )?;
    let (strings_start, strings_end) = block(
        off_dt_strings,
        size_dt_strings,
        total_size,
        "strings block outside the blob",
    )?;
    if struct_start % 4 != 0 {
        return Err(BadHeader("structure block is not 4-byte aligned"));
    }
    let rsvmap = off_mem_rsvmap as usize;
    if !rsvmap.is_multiple_of(8) || rsvmap < HEADER_SIZE || rsvmap >= total_size {
        return Err(BadHeader("bad memory reservation map offset"));
    }

    // Memory reservation map: 16-byte (address, size) entries up to a (0, 0) entry.
    let mut at = rsvmap;
    loop {
        let (Some(address), Some(size)) = (be64(blob, at), be64(blob, at + 8)) else {
            return Err(Malformed("memory reservation map is not terminated"));
        };
        if address == 0 && size == 0 {
            break;
        }
        at += 16;
    }

    let structs = &blob[struct_start..struct_end];
    let strings = &blob[strings_start..strings_end];
    let mut pos = 0;
    let mut depth = 0;
    let mut root_done = false;
    // Properties must precede child nodes; cleared once a child node has been closed.
    let mut props_allowed = false;
    loop {
        let token = be32(structs, pos).ok_or(Malformed("structure block ends without FDT_END"))?;
        pos += 4;
        match token {
            FDT_BEGIN_NODE => {
                if root_done {
                    return Err(Malformed("more than one root node"));
                }
                let rest = &structs[pos..];
                let len = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(Malformed("node name is not NUL-terminated"))?;
                if core::str::from_utf8(&rest[..len]).is_err() {
                    return Err(Malformed("node name is not UTF-8"));
                }
                match (depth, len) {
                    (0, 0) => {}
                    (0, _) => return Err(Malformed("root node has a name")),
                    (_, 0) => return Err(Malformed("node without a name")),
                    _ => {}
                }
                pos = align4(pos + len + 1);
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Malformed("nodes nested too deeply"));
                }
                props_allowed = true;
            }
            FDT_PROP => {
                if depth == 0 {
                    return Err(Malformed("property outside any node"));
                }
                if !props_allowed {
                    return Err(Malformed("property after a child node"));
                }
                let (Some(len), Some(name_off)) = (be32(structs, pos), be32(structs, pos + 4))
                else {
                    return Err(Malformed("structure block ends inside a property"));
                };
                pos += 8;
                let len = len as usize;
                let value_end = pos
                    .checked_add(len)
                    .filter(|&end| end <= structs.len())
                    .ok_or(Malformed("property value runs past the structure block"))?;
                let name = strings
                    .get(name_off as usize..)
                    .ok_or(Malformed("property name offset outside the strings block"))?;
                let name_len = name
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(Malformed("property name is not NUL-terminated"))?;
                let name = core::str::from_utf8(&name[..name_len])
                    .map_err(|_| Malformed("property name is not UTF-8"))?;
                if matches!(name, "#address-cells" | "#size-cells" | "#interrupt-cells") && len != 4
                {
                    return Err(Malformed(
                        "#address-cells, #size-cells or #interrupt-cells is not one cell",
                    ));
                }
                pos = align4(value_end);
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(Malformed("FDT_END_NODE without a node"));
                }
                depth -= 1;
                props_allowed = false;
                root_done = depth == 0;
            }
            FDT_END => {
                return if root_done {
                    Ok(())
                } else if depth == 0 {
                    Err(Malformed("no root node"))
                } else {
                    Err(Malformed("FDT_END inside a node"))
                };
            }
            FDT_NOP => return Err(Malformed("FDT_NOP tokens are not supported")),
            _ => return Err(Malformed("unknown token in the structure block")),
        }
    }
}

/// A property's value as a string: UTF-8 up to the first NUL.
fn prop_str<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let value = node.property(name)?.value;
    let value = value.split(|&b| b == 0).next().unwrap_or(value);
    core::str::from_utf8(value).ok()
}

/// A one- or two-cell integer property.
fn prop_u64(
    node: FdtNode<'_, '_>,
    name: &str,
    what: &'static str,
) -> Result<Option<u64>, MachineError> {
    let Some(prop) = node.property(name) else {
        return Ok(None);
    };
    match prop.value.len() {
        4 => Ok(be32(prop.value, 0).map(u64::from)),
        8 => Ok(be64(prop.value, 0)),
        _ => Err(MachineError::Malformed(what)),
    }
}

fn is_compatible(node: FdtNode<'_, '_>, with: &[&str]) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| with.contains(&s)))
}

/// The name before any `@unit-address`.
fn base_name(name: &str) -> &str {
    name.split_once('@').map_or(name, |(base, _)| base)
}

/// Entry `index` of a node's `reg`, as translated by its parent's cell sizes.
fn reg_entry(node: FdtNode<'_, '_>, index: usize) -> Result<Option<MemRange>, MachineError> {
    use MachineError::Malformed;
    let Some(mut regs) = node.reg() else {
        return match node.property("reg") {
            Some(_) => Err(Malformed("reg uses more than two address or size cells")),
            None => Ok(None),
        };
    };
    let Some(region) = regs.nth(index) else {
        return Ok(None);
    };
    let size = region.size.ok_or(Malformed("reg has no size cells"))?;
    let range = MemRange {
        base: region.starting_address as usize as u64,
        size: size as u64,
    };
    range
        .checked_end()
        .ok_or(Malformed("reg range wraps around the address space"))?;
    Ok(Some(range))
}

/// Every non-empty `reg` entry of a node, pushed onto `out`.
fn push_regs<const N: usize>(
    node: FdtNode<'_, '_>,
    out: &mut Vec<MemRange, N>,
    what: &'static str,
) -> Result<(), MachineError> {
    let mut index = 0;
    while let Some(range) = reg_entry(node, index)? {
        if !range.is_empty() {
            out.push(range)
                .map_err(|_| MachineError::TooMany { what, max: N })?;
        }
        index += 1;
    }
    Ok(())
}

/// Interrupt `index` of a node's `interrupts`, as a GIC INTID. Specifiers are (type, number,
/// flags); type 0 is an SPI (INTID 32 + number), type 1 a PPI (INTID 16 + number).
fn interrupt(node: FdtNode<'_, '_>, index: usize) -> Result<Option<u32>, MachineError> {
    use MachineError::Malformed;
    let Some(prop) = node.property("interrupts") else {
        return Ok(None);
    };
    if prop.value.len() % 12 != 0 {
        return Err(Malformed("interrupts is not a list of 3-cell specifiers"));
    }
    let (Some(kind), Some(number)) = (
        be32(prop.value, 12 * index),
        be32(prop.value, 12 * index + 4),
    ) else {
        return Ok(None);
    };
    match kind {
        0 if number < 988 => Ok(Some(32 + number)),
        1 if number < 16 => Ok(Some(16 + number)),
        0 | 1 => Err(Malformed("interrupt number out of range for its type")),
        _ => Err(Malformed("interrupt specifier of unknown type")),
    }
}

/// Follows a node path (`/a/b@1`) from the root. A component without `@` matches any unit
/// address.
fn find_path<'b, 'a>(root: FdtNode<'b, 'a>, path: &str) -> Option<FdtNode<'b, 'a>> {
    let mut node = root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        node = node.children().find(|child| {
            child.name == part || (!part.contains('@') && base_name(child.name) == part)
        })?;
    }
    Some(node)
}

/// The node `/chosen/stdout-path` names: a path or an alias, with any `:options` dropped.
fn stdout_node<'b, 'a>(root: FdtNode<'b, 'a>, chosen: FdtNode<'b, 'a>) -> Option<FdtNode<'b, 'a>> {
    let path = prop_str(chosen, "stdout-path").or_else(|| prop_str(chosen, "linux,stdout-path"))?;
    let path = path.split(':').next().unwrap_or(path);
    let path = if path.starts_with('/') {
        path
    } else {
        let aliases = root.children().find(|n| n.name == "aliases")?;
        prop_str(aliases, path)?
    };
    if !path.starts_with('/') {
        return None;
    }
    find_path(root, path)
}

impl<'a> MachineInfo<'a> {
    /// Reads the machine description from a device tree blob. `dtb` must hold at least
    /// [`fdt_total_size`] bytes.
    pub fn parse(dtb: &'a [u8]) -> Result<Self, MachineError> {
        use MachineError::Malformed;

        validate(dtb)?;
        let fdt =
            Fdt::new(dtb).map_err(|_| MachineError::BadHeader("rejected by the fdt crate"))?;
        let root = fdt.all_nodes().next().ok_or(Malformed("no root node"))?;
        let top = |name: &str| root.children().find(|n| n.name == name);

        // RAM.
        let mut ram = Vec::new();
        for node in fdt.all_nodes() {
            if prop_str(node, "device_type") == Some("memory") {
                push_regs(node, &mut ram, "RAM ranges")?;
            }
        }
        if ram.is_empty() {
            return Err(MachineError::NoMemory);
        }
        ram.sort_unstable_by_key(|r: &MemRange| r.base);

        // Reservations: /memreserve/ entries, then /reserved-memory children.
        let mut reserved = Vec::new();
        for entry in fdt.memory_reservations() {
            let range = MemRange {
                base: entry.address() as usize as u64,
                size: entry.size() as u64,
            };
            range
                .checked_end()
                .ok_or(Malformed("/memreserve/ entry wraps around"))?;
            if !range.is_empty() {
                reserved.push(range).map_err(|_| MachineError::TooMany {
                    what: "reserved ranges",
                    max: 16,
                })?;
            }
        }
        if let Some(node) = top("reserved-memory") {
            for child in node.children() {
                push_regs(child, &mut reserved, "reserved ranges")?;
            }
        }
        reserved.sort_unstable_by_key(|r: &MemRange| r.base);

        // /chosen: bootargs, initrd, stdout-path.
        let chosen = top("chosen");
        let mut bootargs = "";
        let mut initrd = None;
        let mut stdout = None;
        if let Some(chosen) = chosen {
            if let Some(prop) = chosen.property("bootargs") {
                let value = prop.value.split(|&b| b == 0).next().unwrap_or(prop.value);
                bootargs =
                    core::str::from_utf8(value).map_err(|_| Malformed("bootargs is not UTF-8"))?;
            }
            const BAD_INITRD: &str = "linux,initrd-start or -end is not one or two cells";
            let start = prop_u64(chosen, "linux,initrd-start", BAD_INITRD)?;
            let end = prop_u64(chosen, "linux,initrd-end", BAD_INITRD)?;
            initrd = match (start, end) {
                (None, None) => None,
                (Some(start), Some(end)) => {
                    let range = MemRange::from_bounds(start, end)
                        .ok_or(Malformed("linux,initrd-end is below linux,initrd-start"))?;
                    (!range.is_empty()).then_some(range)
                }
                _ => return Err(Malformed("only one of linux,initrd-start and -end")),
            };
            stdout = stdout_node(root, chosen);
        }

        // UART: the stdout one if it is a PL011, else the first PL011.
        let uart_node = stdout
            .filter(|n| is_compatible(*n, PL011))
            .or_else(|| fdt.all_nodes().find(|n| is_compatible(*n, PL011)))
            .ok_or(MachineError::NoUart)?;
        let uart = reg_entry(uart_node, 0)?.ok_or(MachineError::NoUart)?;
        let uart_intid = interrupt(uart_node, 0)?;

        // GIC.
        let gic_node = fdt
            .all_nodes()
            .find(|n| is_compatible(*n, GIC_V2) || is_compatible(*n, GIC_V3))
            .ok_or(MachineError::NoGic)?;
        match gic_node
            .property("#interrupt-cells")
            .and_then(|p| be32(p.value, 0))
        {
            Some(3) => {}
            _ => return Err(Malformed("GIC #interrupt-cells is not 3")),
        }
        const GIC_REG: &str = "GIC reg has fewer than two frames";
        let first = reg_entry(gic_node, 0)?.ok_or(Malformed(GIC_REG))?;
        let second = reg_entry(gic_node, 1)?.ok_or(Malformed(GIC_REG))?;
        let gic = if is_compatible(gic_node, GIC_V3) {
            GicInfo::V3 {
                distributor: first,
                redistributors: second,
            }
        } else {
            GicInfo::V2 {
                distributor: first,
                cpu_interface: second,
            }
        };

        // Timer: four PPIs in binding order.
        let timer = fdt
            .all_nodes()
            .find(|n| is_compatible(*n, TIMER))
            .ok_or(MachineError::NoTimer)?;
        const TIMER_IRQS: &str = "timer has fewer than four interrupts";
        let timer_irq = |index| -> Result<u32, MachineError> {
            interrupt(timer, index)?.ok_or(Malformed(TIMER_IRQS))
        };
        let timer_intid = TimerIntids {
            secure_phys: timer_irq(0)?,
            nonsecure_phys: timer_irq(1)?,
            virt: timer_irq(2)?,
            hyp: timer_irq(3)?,
        };

        // virtio-mmio transports.
        let mut virtio_mmio: Vec<VirtioMmioSlot, 32> = Vec::new();
        for node in fdt.all_nodes().filter(|n| is_compatible(*n, VIRTIO_MMIO)) {
            let reg = reg_entry(node, 0)?.ok_or(Malformed("virtio,mmio node without reg"))?;
            let intid =
                interrupt(node, 0)?.ok_or(Malformed("virtio,mmio node without interrupts"))?;
            virtio_mmio
                .push(VirtioMmioSlot { reg, intid })
                .map_err(|_| MachineError::TooMany {
                    what: "virtio,mmio nodes",
                    max: 32,
                })?;
        }
        virtio_mmio.sort_unstable_by_key(|slot| slot.reg.base);

        // PSCI.
        let psci = match root.children().find(|n| is_compatible(*n, PSCI)) {
            None => None,
            Some(node) => match prop_str(node, "method") {
                Some("hvc") => Some(PsciConduit::Hvc),
                Some("smc") => Some(PsciConduit::Smc),
                _ => return Err(Malformed("psci method is neither \"hvc\" nor \"smc\"")),
            },
        };

        // CPUs.
        let cpu_count = top("cpus").map_or(0, |cpus| {
            cpus.children()
                .filter(|n| prop_str(*n, "device_type") == Some("cpu"))
                .count()
        });
        if cpu_count == 0 {
            return Err(MachineError::NoCpu);
        }

        Ok(Self {
            ram,
            reserved,
            uart,
            uart_intid,
            gic,
            timer_intid,
            initrd,
            virtio_mmio,
            bootargs,
            psci,
            cpu_count,
        })
    }
}

#[cfg(test)]
mod tests;
