//! Address spaces: VSpace and PageTable objects, mapping frames over ranges, and the
//! bookkeeping that lets a frame capability mapped in many places be unmapped everywhere.
//!
//! ```text
//!  VSpace (8 KiB)                      PageTable (16 KiB)
//!  +0x0000  level-0 table (512 x 8 B)   +0x0000  table (512 x 8 B)
//!  +0x1000  VSpaceHeader (ASID)         +0x1000  MapNode per entry (512 x 16 B)
//!                                       +0x3000  PtHeader (ASID, level, parent entry)
//! ```
//!
//! Each valid level-3 entry has a `MapNode` at the same index, linked into the list headed in
//! the slot of the frame capability that made the mapping (`Slot::map_head`; `pprev` points
//! at whatever points at the node). Memory cost: 16 bytes per mapped page, inside the page
//! table object the user supplied; the kernel allocates nothing.
//!
//! # Invariants
//! - A level-3 entry is valid iff its node is on exactly one frame capability's list.
//! - A table's `parent` is the kernel address of the entry that points at it, or 0 when it
//!   is not installed; an installed table's `asid` is that of its VSpace.
//! - A page table's `entries` is the number of its valid entries.

use super::Obj;
use super::cnode::SlotRef;
use crate::arch::mmu::{self, LINEAR_BASE, phys_to_virt};
use abi::Error;
use abi::object::MapFlags;
use kernel_core::pte::{self, Descriptor, MapAttrs, MemoryType, PAGE_SIZE};

const ENTRIES: usize = pte::ENTRIES_PER_TABLE;
/// Software bits of a level-3 entry (ARM ARM D8.3: bits [58:55] are ignored by hardware):
/// what the capability that made the mapping allows, so `VSpaceProtect` can check it.
const SW_CAP_WRITE: u64 = 1 << 55;
const SW_CAP_READ: u64 = 1 << 56;
/// User virtual addresses end here.
pub const USER_END: u64 = 1 << 48;

#[repr(C)]
pub struct VSpaceHeader {
    pub asid: u64,
}

#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct MapNode {
    pub next: u64,
    pub pprev: u64,
}

#[repr(C)]
pub struct PtHeader {
    pub asid: u64,
    pub level: u64,
    /// Base of the virtual range the table covers.
    pub vaddr: u64,
    pub parent: u64,
    /// How many of its entries are valid (so "is it empty?" costs one load).
    pub entries: u64,
}

const VSPACE_HEADER: u64 = 0x1000;
const NODES: u64 = 0x1000;
const PT_HEADER: u64 = 0x3000;

fn table(pa: u64) -> Obj<[u64; ENTRIES]> {
    Obj::from_pa(pa)
}

fn vspace_header(pa: u64) -> Obj<VSpaceHeader> {
    Obj::from_pa(pa + VSPACE_HEADER)
}

fn pt_header(pa: u64) -> Obj<PtHeader> {
    Obj::from_pa(pa + PT_HEADER)
}

fn node_of(pt_pa: u64, index: usize) -> Obj<MapNode> {
    Obj::from_pa(pt_pa + NODES + index as u64 * 16)
}

/// The page table and index of a node.
fn entry_of_node(node: Obj<MapNode>) -> (u64, usize) {
    let pa = node.pa();
    let pt = pa & !((1 << abi::object::PAGE_TABLE_BITS) - 1);
    (pt, ((pa - pt - NODES) / 16) as usize)
}

/// Sets up a freshly zeroed VSpace with its ASID.
pub fn init_vspace(pa: u64, asid: u16) {
    vspace_header(pa).get().asid = u64::from(asid);
}

/// TTBR0_EL1 for a VSpace: table address and ASID.
pub fn ttbr0_of(pa: u64) -> u64 {
    pa | (vspace_header(pa).get().asid << 48)
}

pub fn asid_of(pa: u64) -> u16 {
    vspace_header(pa).get().asid as u16
}

/// The descriptor slot for `vaddr` in the table at `table_pa`.
fn entry(table_pa: u64, vaddr: u64, level: u8) -> &'static mut u64 {
    &mut table(table_pa).get()[pte::table_index(vaddr, level)]
}

/// The table at `level` covering `vaddr` (0 = the VSpace's own), if installed.
fn table_at(vspace: u64, vaddr: u64, level: u8) -> Option<u64> {
    let mut t = vspace;
    for l in 0..level {
        let d = Descriptor::from_raw(*entry(t, vaddr, l));
        if !d.is_table(l) {
            return None;
        }
        t = d.output_address(l);
    }
    Some(t)
}

/// Installs the PageTable at `pt` as the level-`level` table covering `vaddr`.
pub fn map_table(vspace: u64, pt: u64, vaddr: u64, level: u8) -> Result<(), Error> {
    let parent = table_at(vspace, vaddr, level - 1).ok_or(Error::FailedLookup)?;
    let slot = entry(parent, vaddr, level - 1);
    if Descriptor::from_raw(*slot).is_valid() {
        return Err(Error::AlreadyMapped);
    }
    // Only an empty table that is installed nowhere: its entries' ASID and addresses are
    // set from where it goes now.
    if pt_header(pt).get().parent != 0 || pt_header(pt).get().entries != 0 {
        return Err(Error::AlreadyMapped);
    }
    let h = pt_header(pt).get();
    h.asid = u64::from(asid_of(vspace));
    h.level = u64::from(level);
    h.vaddr = vaddr & !(pte::level_size(level - 1) - 1);
    h.parent = slot as *mut u64 as u64;
    *slot = Descriptor::table(pt).raw();
    if level >= 2 {
        // The parent is a page table (level 1's parent is the VSpace itself).
        pt_header(parent).get().entries += 1;
    }
    mmu::publish_tables();
    Ok(())
}

/// The translation attributes for `flags` on a (device or normal) frame.
fn attrs(flags: MapFlags, device: bool) -> MapAttrs {
    let accessible = flags.contains(MapFlags::READ);
    MapAttrs {
        memory: if device {
            MemoryType::Device
        } else if flags.contains(MapFlags::UNCACHED) {
            MemoryType::NormalNonCacheable
        } else {
            MemoryType::Normal
        },
        user: accessible,
        writable: accessible && flags.contains(MapFlags::WRITE),
        user_exec: flags.contains(MapFlags::EXECUTE),
        kernel_exec: false,
        global: false,
    }
}

/// A level-3 descriptor: the output address, the attribute bits for `flags` on this kind of
/// memory (encoded once, by `kernel_core::pte`, and kept in a table of every combination),
/// and what the mapping capability allows.
fn leaf(pa: u64, flags: MapFlags, device: bool, cap_write: bool, cap_read: bool) -> u64 {
    let index = (flags.0 & MapFlags::MASK) as usize | usize::from(device) << 4;
    pa | LEAF_ATTRS.get()[index]
        | if cap_write { SW_CAP_WRITE } else { 0 }
        | if cap_read { SW_CAP_READ } else { 0 }
}

/// `LEAF_ATTRS[flags | device << 4]`: the descriptor bits of a level-3 entry at address 0.
struct LeafAttrs(core::cell::UnsafeCell<[u64; 32]>);

// SAFETY: written once at boot by `init` before any mapping, read-only afterwards.
unsafe impl Sync for LeafAttrs {}

static LEAF_ATTRS: LeafAttrs = LeafAttrs(core::cell::UnsafeCell::new([0; 32]));

impl LeafAttrs {
    fn get(&self) -> &[u64; 32] {
        // SAFETY: see the `Sync` impl: no writes after boot.
        unsafe { &*self.0.get() }
    }
}

/// Encodes the descriptor bits of every flags/device combination (at boot).
pub fn init() {
    // SAFETY: boot runs on one core before any mapping reads the table.
    let table = unsafe { &mut *LEAF_ATTRS.0.get() };
    for (i, bits) in table.iter_mut().enumerate() {
        let flags = MapFlags(i as u64 & MapFlags::MASK);
        *bits = Descriptor::leaf(3, 0, attrs(flags, i & 16 != 0)).raw();
    }
}

/// Maps pages `first_page .. first_page + count` of the frame whose capability is in `slot`
/// into `vspace` at `vaddr`. All or nothing. `AlreadyMapped` if a page is mapped, unless
/// `replace` (a fault reply's map item), which first unmaps what is there.
pub fn map_frame(
    slot: SlotRef,
    vspace: u64,
    vaddr: u64,
    flags: MapFlags,
    first_page: u64,
    count: u64,
    replace: bool,
) -> Result<(), Error> {
    let kernel_core::cap::Cap::Frame {
        base,
        size_bits,
        rights,
        device,
    } = slot.get().cap()
    else {
        return Err(Error::InvalidCapability);
    };
    let pages = 1u64 << (size_bits - 12);
    let end_page = first_page.checked_add(count).ok_or(Error::RangeError)?;
    let size = count.checked_mul(PAGE_SIZE).ok_or(Error::RangeError)?;
    if count == 0 || end_page > pages {
        return Err(Error::RangeError);
    }
    if !vaddr.is_multiple_of(PAGE_SIZE) {
        return Err(Error::AlignmentError);
    }
    if vaddr.checked_add(size).is_none_or(|e| e > USER_END) {
        return Err(Error::RangeError);
    }
    let (cap_read, cap_write) = (
        rights.contains(abi::object::CapRights::READ),
        rights.contains(abi::object::CapRights::WRITE),
    );
    let needs_read = flags.contains(MapFlags::READ) || flags.contains(MapFlags::EXECUTE);
    if (flags.contains(MapFlags::WRITE) && !cap_write) || (needs_read && !cap_read) {
        return Err(Error::InsufficientRights);
    }
    if device && flags.contains(MapFlags::EXECUTE) {
        return Err(Error::InvalidArgument);
    }
    // Check every page first: nothing changes unless all can be mapped.
    let end = vaddr + size;
    let mut va = vaddr;
    let mut first_table = 0;
    while va < end {
        let l3 = table_at(vspace, va, 3).ok_or(Error::FailedLookup)?;
        if first_table == 0 {
            first_table = l3;
        }
        let region_end = region_end(va, end);
        let (from, to) = (pte::table_index(va, 3), pte::table_index(region_end - 1, 3));
        if !replace
            && table(l3).get()[from..=to]
                .iter()
                .any(|&e| Descriptor::from_raw(e).is_valid())
        {
            return Err(Error::AlreadyMapped);
        }
        va = region_end;
    }
    // One descriptor, then the same with the output address advanced page by page.
    let first = leaf(
        base + first_page * PAGE_SIZE,
        flags,
        device,
        cap_write,
        cap_read,
    );
    let mut next = first;
    let mut va = vaddr;
    while va < end {
        let l3 = if va == vaddr {
            first_table
        } else {
            table_at(vspace, va, 3).unwrap_or(0)
        };
        if l3 == 0 {
            break;
        }
        let region_end = region_end(va, end);
        let (from, to) = (pte::table_index(va, 3), pte::table_index(region_end - 1, 3));
        if replace {
            for i in from..=to {
                if table(l3).get()[i] & VALID != 0 {
                    unmap_node(node_of(l3, i));
                }
            }
        }
        let entries = table(l3).get();
        for (k, entry) in entries[from..=to].iter_mut().enumerate() {
            *entry = next;
            link_node(slot, node_of(l3, from + k));
            next += PAGE_SIZE;
        }
        pt_header(l3).get().entries += (to - from + 1) as u64;
        va = region_end;
    }
    mmu::publish_tables();
    if flags.contains(MapFlags::EXECUTE) {
        mmu::sync_icache(phys_to_virt(base + first_page * PAGE_SIZE), size);
    }
    Ok(())
}

fn link_node(slot: SlotRef, node: Obj<MapNode>) {
    let s = slot.get();
    let n = node.get();
    n.next = s.map_head;
    n.pprev = core::ptr::addr_of_mut!(s.map_head) as u64;
    if let Some(old) = Obj::<MapNode>::from_link(s.map_head) {
        old.get().pprev = core::ptr::addr_of_mut!(n.next) as u64;
    }
    s.map_head = node.kva();
}

fn unlink_node(node: Obj<MapNode>) {
    let n = node.get();
    // SAFETY: `pprev` is the address of the u64 (a slot's `map_head` or another node's
    // `next`) that points at this node, maintained by link/unlink/move; both live in
    // kernel objects reachable through the linear map.
    unsafe { *(n.pprev as *mut u64) = n.next };
    if let Some(next) = Obj::<MapNode>::from_link(n.next) {
        next.get().pprev = n.pprev;
    }
    *n = MapNode::default();
}

/// Clears the level-3 entry of `node`, unlinks the node and flushes the TLB entry.
fn unmap_node(node: Obj<MapNode>) {
    let (pt, i) = entry_of_node(node);
    table(pt).get()[i] = 0;
    unlink_node(node);
    let h = pt_header(pt).get();
    h.entries -= 1;
    if h.parent != 0 {
        mmu::flush_page(h.asid as u16, h.vaddr + i as u64 * PAGE_SIZE);
    }
}

/// Removes every mapping made through the capability in `slot`.
pub fn unmap_all(slot: SlotRef) {
    while let Some(node) = Obj::<MapNode>::from_link(slot.get().map_head) {
        unmap_node(node);
    }
}

/// A capability moved from `from` to `to`: re-point its mapping list.
pub fn move_mappings(from: SlotRef, to: SlotRef) {
    let head = core::mem::take(&mut from.get().map_head);
    to.get().map_head = head;
    if let Some(first) = Obj::<MapNode>::from_link(head) {
        first.get().pprev = core::ptr::addr_of_mut!(to.get().map_head) as u64;
    }
}

/// The end of the 2 MiB region (one level-3 table) holding `va`, or `end` if sooner.
fn region_end(va: u64, end: u64) -> u64 {
    (va | (pte::level_size(2) - 1)).saturating_add(1).min(end)
}

/// The level-3 table covering `va`, or the end of the span covered by the first missing
/// table on the way (512 GiB, 1 GiB or 2 MiB aligned).
fn level3_or_gap(vspace: u64, va: u64) -> Result<u64, u64> {
    let mut t = vspace;
    for l in 0..3 {
        let d = Descriptor::from_raw(*entry(t, va, l));
        if !d.is_table(l) {
            let span = pte::level_size(l);
            return Err((va & !(span - 1)).saturating_add(span));
        }
        t = d.output_address(l);
    }
    Ok(t)
}

fn check_range(vaddr: u64, size: u64) -> Result<(), Error> {
    if !vaddr.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(Error::AlignmentError);
    }
    if size == 0 || vaddr.checked_add(size).is_none_or(|e| e > USER_END) {
        return Err(Error::RangeError);
    }
    Ok(())
}

/// Unmaps every page in [`vaddr`, `vaddr + size`).
pub fn unmap_range(vspace: u64, vaddr: u64, size: u64) -> Result<(), Error> {
    check_range(vaddr, size)?;
    for_each_table_span(vspace, vaddr, size, |l3, span| {
        for i in span {
            if table(l3).get()[i] & VALID != 0 {
                unmap_node(node_of(l3, i));
            }
        }
    });
    Ok(())
}

/// Changes the rights of every page mapped in the range; all or nothing.
pub fn protect_range(vspace: u64, vaddr: u64, size: u64, flags: MapFlags) -> Result<(), Error> {
    check_range(vaddr, size)?;
    // What each mapping's capability must allow for the new rights (software bits).
    let mut needed = 0;
    if flags.contains(MapFlags::WRITE) {
        needed |= SW_CAP_WRITE;
    }
    if flags.contains(MapFlags::READ) || flags.contains(MapFlags::EXECUTE) {
        needed |= SW_CAP_READ;
    }
    let mut allowed = true;
    for_each_table_span(vspace, vaddr, size, |l3, span| {
        allowed &= table(l3).get()[span]
            .iter()
            .all(|&e| e & VALID == 0 || e & needed == needed);
    });
    if !allowed {
        return Err(Error::InsufficientRights);
    }
    // Each entry keeps its output address and software bits and takes the attribute bits
    // of the new flags for its kind of memory (from the boot-time table).
    let attrs = LEAF_ATTRS.get();
    let (normal, device) = (
        attrs[flags.0 as usize & 15],
        attrs[flags.0 as usize & 15 | 16],
    );
    let execute = flags.contains(MapFlags::EXECUTE);
    for_each_table_span(vspace, vaddr, size, |l3, span| {
        for e in table(l3).get()[span]
            .iter_mut()
            .filter(|e| **e & VALID != 0)
        {
            let is_device = (*e >> 2) & 7 == MemoryType::Device as u64;
            *e = (*e & (OUTPUT_ADDRESS | SW_CAP_WRITE | SW_CAP_READ))
                | if is_device { device } else { normal };
            if execute {
                mmu::sync_icache(phys_to_virt(*e & OUTPUT_ADDRESS), PAGE_SIZE);
            }
        }
    });
    mmu::publish_tables();
    mmu::flush_asid(asid_of(vspace));
    Ok(())
}

/// Bit 0 of a descriptor: valid.
const VALID: u64 = 1;
/// The output address of a level-3 entry, bits [47:12].
const OUTPUT_ADDRESS: u64 = 0x0000_ffff_ffff_f000;

/// Calls `f(l3_table, indices)` with the indices of the level-3 entries of each table that
/// covers part of the range, skipping spans without tables (a range of terabytes with few
/// tables costs as many steps as it has tables).
fn for_each_table_span(
    vspace: u64,
    vaddr: u64,
    size: u64,
    mut f: impl FnMut(u64, core::ops::RangeInclusive<usize>),
) {
    let end = vaddr + size;
    let mut va = vaddr;
    while va < end {
        match level3_or_gap(vspace, va) {
            Ok(l3) => {
                let region_end = region_end(va, end);
                f(
                    l3,
                    pte::table_index(va, 3)..=pte::table_index(region_end - 1, 3),
                );
                va = region_end;
            }
            Err(gap_end) => va = gap_end.min(end),
        }
    }
}

/// The physical address and flags of the page mapped at `vaddr`.
pub fn query(vspace: u64, vaddr: u64) -> Result<(u64, MapFlags), Error> {
    if vaddr >= USER_END {
        return Err(Error::RangeError);
    }
    let l3 = table_at(vspace, vaddr, 3).ok_or(Error::NotMapped)?;
    let d = Descriptor::from_raw(table(l3).get()[pte::table_index(vaddr, 3)]);
    let a = d.attrs().filter(|_| d.is_valid()).ok_or(Error::NotMapped)?;
    let mut flags = 0;
    if a.user {
        flags |= MapFlags::READ.0;
    }
    if a.user && a.writable {
        flags |= MapFlags::WRITE.0;
    }
    if a.user_exec {
        flags |= MapFlags::EXECUTE.0;
    }
    if a.memory == MemoryType::NormalNonCacheable {
        flags |= MapFlags::UNCACHED.0;
    }
    Ok((
        d.output_address(3) + (vaddr & (PAGE_SIZE - 1)),
        MapFlags(flags),
    ))
}

/// Empties a page table and takes it out of its VSpace (`PageTableUnmap`, destruction).
pub fn detach_table(pt: u64) {
    let h = pt_header(pt).get();
    if h.parent != 0 {
        // SAFETY: `parent` is the address of the live entry that points at this table
        // (module invariant); clearing it unhooks the table.
        unsafe { *(h.parent as *mut u64) = 0 };
        if h.level >= 2 {
            // The parent entry lies in a page table (16 KiB aligned), whose count drops.
            let parent_table =
                (h.parent - LINEAR_BASE) & !((1 << abi::object::PAGE_TABLE_BITS) - 1);
            pt_header(parent_table).get().entries -= 1;
        }
        h.parent = 0;
        mmu::publish_tables();
        mmu::flush_asid(h.asid as u16);
    }
    let level = h.level as u8;
    for i in 0..ENTRIES {
        let e = table(pt).get()[i];
        if !Descriptor::from_raw(e).is_valid() {
            continue;
        }
        if level == 3 {
            unlink_node(node_of(pt, i));
        } else {
            pt_header(Descriptor::from_raw(e).output_address(level))
                .get()
                .parent = 0;
        }
        table(pt).get()[i] = 0;
    }
    pt_header(pt).get().entries = 0;
}

/// Destroys a VSpace: its level-1 tables are left uninstalled, its ASID freed.
pub fn destroy_vspace(pa: u64) {
    for i in 0..ENTRIES {
        let d = Descriptor::from_raw(table(pa).get()[i]);
        if d.is_table(0) {
            pt_header(d.output_address(0)).get().parent = 0;
        }
        table(pa).get()[i] = 0;
    }
    let asid = asid_of(pa);
    crate::sched::forget_ttbr0(ttbr0_of(pa));
    mmu::flush_asid(asid);
    mmu::free_asid(asid);
}
