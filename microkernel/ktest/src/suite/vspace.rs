//! Address spaces: FrameMap (ranges, rights, errors, all or nothing), VSpaceMapTable,
//! VSpaceUnmap, VSpaceProtect, VSpaceQuery, FrameUnmap, PageTableUnmap, executable mappings,
//! and frames that disappear from every VSpace when their capability is revoked or deleted.

use super::fault::{DONE, check_vm_fault, reader};
use super::{
    Check, Env, OrFail, Outcome, expect_eq, expect_err, expect_fails, expect_type, get, set,
};
use crate::alloc::{CNODE, VSPACE};
use crate::thread::{Config, Space};
use abi::Error;
use abi::message::vm_fault::{Access, Kind};
use abi::object::{CapRights, CapType, MapFlags, ObjectType};
use libmk::{Cap, Frame, PageTable, VSpace};

pub const CHECKS: &[Check] = &[
    ("map-query", map_query),
    ("map-page-range", map_page_range),
    ("map-errors", map_errors),
    ("map-all-or-nothing", map_all_or_nothing),
    ("map-rights", map_rights),
    ("map-table-errors", map_table_errors),
    ("unmap-range", unmap_range),
    ("unmap-whole-address-space", unmap_whole_address_space),
    ("protect", protect),
    ("query-unmapped", query_unmapped),
    ("frame-unmap-everywhere", frame_unmap_everywhere),
    ("frame-phys-addr", frame_phys_addr),
    ("large-frame", large_frame),
    ("page-table-unmap", page_table_unmap),
    ("exec-mapping", exec_mapping),
    ("delete-mapped-frame", delete_mapped_frame),
    ("revoke-mapped-frame", revoke_mapped_frame),
    ("revoke-frame-in-two-vspaces", revoke_frame_in_two_vspaces),
    ("shared-frame-two-vspaces", shared_frame_two_vspaces),
    ("delete-vspace", delete_vspace),
    ("not-a-vspace", not_a_vspace),
];

/// An address in init's VSpace whose level-2 table does not exist (the allocator only uses
/// the 1 GiB from `VA_BASE`).
const NO_TABLES: u64 = 0x0000_0030_0000_0000;

fn rights(flags: MapFlags) -> u64 {
    flags.0 & (MapFlags::READ.0 | MapFlags::WRITE.0 | MapFlags::EXECUTE.0)
}

fn map_query(env: &mut Env) -> Outcome {
    let (f, va) = env.mapped_frame(12, MapFlags::RW)?;
    let (pa, size) = f.phys_addr().or_fail("FramePhysAddr")?;
    expect_eq(size, 0x1000, "frame size")?;
    let (qa, flags) = VSPACE.query(va).or_fail("VSpaceQuery")?;
    expect_eq(qa, pa, "queried physical address")?;
    expect_eq(rights(flags), MapFlags::RW.0, "queried rights")?;
    // An address inside the page: the spec does not say whether it must be page aligned.
    match VSPACE.query(va + 0x123) {
        Ok((qa, _)) => ensure!(
            qa == pa || qa == pa + 0x123,
            "query of va+0x123 gave {qa:#x}"
        ),
        Err(Error::AlignmentError) => {}
        Err(e) => fail!("query of va+0x123: {e:?}"),
    }
    // SAFETY: `va` maps `f` read-write in init's VSpace.
    unsafe {
        (va as *mut u64).write_volatile(0x600d);
        ensure!(
            (va as *const u64).read_volatile() == 0x600d,
            "the page did not keep a write"
        );
    }
    Ok(())
}

fn map_page_range(env: &mut Env) -> Outcome {
    let f = env.frame(14)?;
    let (pa, _) = f.phys_addr().or_fail("FramePhysAddr")?;
    let va = env.a.va_reserve(3).or_fail("reserve addresses")?;
    f.map(VSPACE, va, MapFlags::READ, 1, 2)
        .or_fail("map pages 1 and 2 of a 4-page frame")?;
    expect_eq(
        VSPACE.query(va).or_fail("query page 0")?.0,
        pa + 0x1000,
        "address of the first mapped page",
    )?;
    expect_eq(
        VSPACE.query(va + 0x1000).or_fail("query page 1")?.0,
        pa + 0x2000,
        "address of the second",
    )?;
    expect_err(
        VSPACE.query(va + 0x2000),
        &[Error::NotMapped],
        "the page after the range",
    )?;
    f.map(VSPACE, va + 0x2000, MapFlags::READ, 3, 1)
        .or_fail("map page 3 of the same capability elsewhere")?;
    expect_eq(
        VSPACE.query(va + 0x2000).or_fail("query")?.0,
        pa + 0x3000,
        "address of page 3",
    )
}

fn map_errors(env: &mut Env) -> Outcome {
    let f = env.frame(12)?;
    let va = env.a.va_reserve(2).or_fail("reserve addresses")?;
    let arg = &[Error::InvalidArgument];
    let range = &[Error::RangeError, Error::InvalidArgument];
    expect_err(
        f.map(VSPACE, va + 0x10, MapFlags::RW, 0, 1),
        &[Error::AlignmentError],
        "map at an unaligned address",
    )?;
    expect_err(
        f.map(VSPACE, va, MapFlags::RW, 0, 2),
        range,
        "map 2 pages of a 1-page frame",
    )?;
    expect_err(
        f.map(VSPACE, va, MapFlags::RW, 1, 1),
        range,
        "map page 1 of a 1-page frame",
    )?;
    expect_err(
        f.map(VSPACE, va, MapFlags(MapFlags::WRITE.0), 0, 1),
        arg,
        "flags WRITE without READ",
    )?;
    expect_err(
        f.map(VSPACE, va, MapFlags(0x10), 0, 1),
        arg,
        "undefined flag bits",
    )?;
    expect_err(
        f.map(VSPACE, NO_TABLES, MapFlags::RW, 0, 1),
        &[Error::FailedLookup],
        "map where no table is",
    )?;
    expect_fails(
        f.map(VSPACE, 0xffff_0000_0000_0000, MapFlags::RW, 0, 1),
        "map at a kernel address",
    )?;
    expect_fails(
        f.map(VSPACE, 0x0001_0000_0000_0000, MapFlags::RW, 0, 1),
        "map past the 48-bit user range",
    )?;
    expect_err(
        VSPACE.query(va),
        &[Error::NotMapped],
        "query after the failed maps",
    )?;
    f.map(VSPACE, va, MapFlags::RW, 0, 1)
        .or_fail("the good map")?;
    let g = env.frame(12)?;
    expect_err(
        g.map(VSPACE, va, MapFlags::RW, 0, 1),
        &[Error::AlreadyMapped],
        "map onto a mapped page",
    )?;
    expect_err(
        f.map(VSPACE, va, MapFlags::RW, 0, 1),
        &[Error::AlreadyMapped],
        "map the same page twice",
    )
}

fn map_all_or_nothing(env: &mut Env) -> Outcome {
    let va = env.a.va_reserve(4).or_fail("reserve addresses")?;
    let one = env.frame(12)?;
    one.map(VSPACE, va + 0x2000, MapFlags::READ, 0, 1)
        .or_fail("map one page at the third place")?;
    let four = env.frame(14)?;
    expect_err(
        four.map(VSPACE, va, MapFlags::READ, 0, 4),
        &[Error::AlreadyMapped],
        "map 4 pages over it",
    )?;
    for i in [0, 1, 3] {
        expect_err(
            VSPACE.query(va + i * 0x1000),
            &[Error::NotMapped],
            "a page of the failed map",
        )?;
    }
    four.map(VSPACE, va, MapFlags::READ, 0, 2)
        .or_fail("map the first two pages")?;
    Ok(())
}

fn map_rights(env: &mut Env) -> Outcome {
    let f = env.frame(12)?;
    let ro: Cap<Frame> = Cap::from_cptr(env.copy(f.cptr(), CapRights::READ)?);
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    expect_err(
        ro.map(VSPACE, va, MapFlags::RW, 0, 1),
        &[Error::InsufficientRights],
        "map a read-only capability read-write",
    )?;
    ro.map(VSPACE, va, MapFlags::READ, 0, 1)
        .or_fail("map it read-only")?;
    expect_eq(
        rights(VSPACE.query(va).or_fail("query")?.1),
        MapFlags::READ.0,
        "the mapping's rights",
    )?;
    expect_err(
        VSPACE.protect(va, 0x1000, MapFlags::RW),
        &[Error::InsufficientRights],
        "protect it to read-write",
    )?;
    expect_eq(
        rights(VSPACE.query(va).or_fail("query")?.1),
        MapFlags::READ.0,
        "the rights after the failed protect",
    )
}

fn map_table_errors(env: &mut Env) -> Outcome {
    let pt: Cap<PageTable> = env.obj(ObjectType::PageTable)?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    let lvl = &[Error::InvalidArgument, Error::RangeError];
    expect_err(
        VSPACE.map_table(pt, NO_TABLES, 3),
        &[Error::FailedLookup],
        "a level-3 table without its level-2 table",
    )?;
    expect_err(
        VSPACE.map_table(pt, va, 3),
        &[Error::AlreadyMapped],
        "a level-3 table where one is",
    )?;
    expect_err(
        VSPACE.map_table(pt, va, 1),
        &[Error::AlreadyMapped],
        "a level-1 table where one is",
    )?;
    expect_err(VSPACE.map_table(pt, NO_TABLES, 0), lvl, "level 0")?;
    expect_err(VSPACE.map_table(pt, NO_TABLES, 4), lvl, "level 4")?;
    expect_fails(
        VSPACE.map_table(pt, 0xffff_0000_0000_0000, 2),
        "a table at a kernel address",
    )?;
    let f = env.frame(12)?;
    expect_err(
        VSPACE.map_table(f.cast(), NO_TABLES, 2),
        &[Error::InvalidCapability],
        "a frame as the table",
    )?;
    VSPACE
        .map_table(pt, NO_TABLES, 2)
        .or_fail("a level-2 table where none is")?;
    let pt3: Cap<PageTable> = env.obj(ObjectType::PageTable)?;
    VSPACE
        .map_table(pt3, NO_TABLES, 3)
        .or_fail("then a level-3 table below it")?;
    f.map(VSPACE, NO_TABLES, MapFlags::READ, 0, 1)
        .or_fail("a page through the new tables")?;
    let mut other = Space::new(&mut env.a).or_fail("a new VSpace")?;
    other
        .tables_for(&mut env.a, NO_TABLES, 1)
        .or_fail("tables in it")?;
    let used: Cap<PageTable> = pt3;
    let pt_other: Cap<PageTable> = env.obj(ObjectType::PageTable)?;
    other
        .vspace
        .map_table(pt_other, 0x1000_0000, 2)
        .or_fail("a level-2 table at another place")?;
    expect_err(
        other.vspace.map_table(used, 0x1000_0000, 3),
        &[Error::AlreadyMapped],
        "a table installed elsewhere",
    )?;
    pt3.unmap().or_fail("PageTableUnmap")?;
    expect_err(
        VSPACE.query(NO_TABLES),
        &[Error::NotMapped, Error::FailedLookup],
        "the page after its table went",
    )?;
    Ok(())
}

fn unmap_range(env: &mut Env) -> Outcome {
    let f = env.frame(14)?;
    let va = env.a.va_reserve(4).or_fail("reserve addresses")?;
    f.map(VSPACE, va, MapFlags::RW, 0, 4)
        .or_fail("map 4 pages")?;
    VSPACE
        .unmap(va + 0x1000, 0x2000)
        .or_fail("VSpaceUnmap of the middle two")?;
    VSPACE.query(va).or_fail("query page 0")?;
    VSPACE.query(va + 0x3000).or_fail("query page 3")?;
    expect_err(VSPACE.query(va + 0x1000), &[Error::NotMapped], "page 1")?;
    expect_err(VSPACE.query(va + 0x2000), &[Error::NotMapped], "page 2")?;
    expect_err(
        VSPACE.unmap(va + 0x10, 0x1000),
        &[Error::AlignmentError, Error::InvalidArgument],
        "an unaligned unmap",
    )?;
    f.map(VSPACE, va + 0x1000, MapFlags::RW, 1, 2)
        .or_fail("map the middle again")?;
    f.unmap().or_fail("FrameUnmap")?;
    for i in 0..4 {
        expect_err(
            VSPACE.query(va + i * 0x1000),
            &[Error::NotMapped],
            "a page after FrameUnmap",
        )?;
    }
    Ok(())
}

fn protect(env: &mut Env) -> Outcome {
    let f = env.frame(13)?;
    let va = env.a.va_reserve(2).or_fail("reserve addresses")?;
    f.map(VSPACE, va, MapFlags::RW, 0, 2)
        .or_fail("map 2 pages read-write")?;
    VSPACE
        .protect(va, 0x1000, MapFlags::READ)
        .or_fail("VSpaceProtect the first to read-only")?;
    expect_eq(
        rights(VSPACE.query(va).or_fail("query")?.1),
        MapFlags::READ.0,
        "the first page's rights",
    )?;
    expect_eq(
        rights(VSPACE.query(va + 0x1000).or_fail("query")?.1),
        MapFlags::RW.0,
        "the second page's rights",
    )?;
    expect_err(
        VSPACE.protect(va, 0x1000, MapFlags(MapFlags::WRITE.0)),
        &[Error::InvalidArgument],
        "protect to WRITE without READ",
    )?;
    VSPACE
        .protect(va, 0x2000, MapFlags::RW)
        .or_fail("protect both back to read-write")?;
    expect_eq(
        rights(VSPACE.query(va).or_fail("query")?.1),
        MapFlags::RW.0,
        "the first page's rights",
    )?;
    // SAFETY: `va` maps `f` read-write again.
    unsafe { (va as *mut u64).write_volatile(3) };
    Ok(())
}

fn query_unmapped(env: &mut Env) -> Outcome {
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    expect_err(
        VSPACE.query(va),
        &[Error::NotMapped],
        "a reserved, unmapped page",
    )?;
    expect_err(
        VSPACE.query(NO_TABLES),
        &[Error::NotMapped, Error::FailedLookup],
        "a page without tables",
    )?;
    expect_fails(VSPACE.query(0xffff_0000_0000_0000), "a kernel address")?;
    let text = query_unmapped as fn(&mut Env) -> Outcome as usize as u64 & !0xfff;
    let (_, flags) = VSPACE.query(text).or_fail("init's own code")?;
    ensure!(
        flags.contains(MapFlags::RX),
        "init's code is mapped with {:#x}, not read-execute",
        flags.0
    );
    Ok(())
}

fn frame_unmap_everywhere(env: &mut Env) -> Outcome {
    let f = env.frame(12)?;
    let va = env.a.va_reserve(3).or_fail("reserve addresses")?;
    f.map(VSPACE, va, MapFlags::RW, 0, 1).or_fail("map once")?;
    f.map(VSPACE, va + 0x2000, MapFlags::READ, 0, 1)
        .or_fail("map twice")?;
    let mut other = Space::new(&mut env.a).or_fail("a new VSpace")?;
    other
        .map(&mut env.a, f, 0x40_0000, MapFlags::RW, 0, 1)
        .or_fail("map in another VSpace")?;
    f.unmap().or_fail("FrameUnmap")?;
    expect_err(VSPACE.query(va), &[Error::NotMapped], "the first mapping")?;
    expect_err(
        VSPACE.query(va + 0x2000),
        &[Error::NotMapped],
        "the second mapping",
    )?;
    expect_err(
        other.vspace.query(0x40_0000),
        &[Error::NotMapped],
        "the mapping in the other VSpace",
    )?;
    f.map(VSPACE, va, MapFlags::RW, 0, 1)
        .or_fail("map again after FrameUnmap")
}

fn frame_phys_addr(env: &mut Env) -> Outcome {
    for bits in [12u64, 13, 16] {
        let f = env.frame(bits)?;
        let (pa, size) = f.phys_addr().or_fail("FramePhysAddr")?;
        expect_eq(size, 1 << bits, "frame size")?;
        ensure!(
            pa % (1 << bits) == 0,
            "a {size}-byte frame at {pa:#x} is not aligned to its size"
        );
        ensure!(pa != 0, "a frame at physical address 0");
    }
    let e = env.endpoint()?;
    expect_err(
        e.cast::<Frame>().phys_addr(),
        &[Error::IllegalOperation, Error::InvalidCapability],
        "FramePhysAddr on an endpoint",
    )
}

fn large_frame(env: &mut Env) -> Outcome {
    let f = env.frame(21)?;
    let (pa, size) = f.phys_addr().or_fail("FramePhysAddr")?;
    expect_eq(size, 2 << 20, "size")?;
    let va = env.a.va_reserve(512).or_fail("reserve 2 MiB")?;
    f.map(VSPACE, va, MapFlags::RW, 0, 512)
        .or_fail("map 512 pages in one call")?;
    expect_eq(
        VSPACE
            .query(va + 0x1f_f000)
            .or_fail("query the last page")?
            .0,
        pa + 0x1f_f000,
        "last page's address",
    )?;
    // SAFETY: `va` maps all of `f` read-write.
    unsafe {
        ((va + 0x1f_fff8) as *mut u64).write_volatile(7);
        ensure!(
            ((va + 0x1f_fff8) as *const u64).read_volatile() == 7,
            "the last word did not keep a write"
        );
    }
    Ok(())
}

fn page_table_unmap(env: &mut Env) -> Outcome {
    let v: Cap<VSpace> = env.obj(ObjectType::VSpace)?;
    let va = 0x0000_0001_0020_0000u64;
    let mut pts = [Cap::<PageTable>::from_cptr(0); 3];
    for (i, pt) in pts.iter_mut().enumerate() {
        *pt = env.obj(ObjectType::PageTable)?;
        v.map_table(*pt, va, i as u64 + 1)
            .map_err(|e| why!("VSpaceMapTable level {}: {e:?}", i + 1))?;
    }
    let f = env.frame(12)?;
    f.map(v, va, MapFlags::RW, 0, 1).or_fail("map a page")?;
    v.query(va).or_fail("query the page")?;
    pts[2]
        .unmap()
        .or_fail("PageTableUnmap of the level-3 table")?;
    expect_err(
        v.query(va),
        &[Error::NotMapped, Error::FailedLookup],
        "the page after its table went",
    )?;
    expect_err(
        f.map(v, va, MapFlags::RW, 0, 1),
        &[Error::FailedLookup],
        "map without the level-3 table",
    )?;
    v.map_table(pts[2], va, 3)
        .or_fail("install the unmapped table again")?;
    expect_err(
        v.query(va),
        &[Error::NotMapped],
        "the page in the reinstalled table",
    )?;
    f.map(v, va, MapFlags::RW, 0, 1)
        .or_fail("map the frame again")?;
    CNODE
        .delete(pts[2].cptr())
        .or_fail("delete the level-3 table's capability")?;
    expect_err(
        v.query(va),
        &[Error::NotMapped, Error::FailedLookup],
        "the page after its table was deleted",
    )?;
    f.map(
        VSPACE,
        env.a.va_reserve(1).or_fail("reserve")?,
        MapFlags::RW,
        0,
        1,
    )
    .or_fail("the frame maps elsewhere")
}

/// Calls the code at `va` (`extern "C" fn() -> u64`) and puts what it returns in `R[0]`.
fn call_code(va: u64) {
    // SAFETY: the check wrote a complete function (`movz x0, #imm; ret`) at `va` and mapped
    // it executable; if the mapping is wrong the thread faults and the check hears of it.
    let f = unsafe { core::mem::transmute::<usize, extern "C" fn() -> u64>(va as usize) };
    set(0, f());
}

fn exec_mapping(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, data) = env.mapped_frame(12, MapFlags::RW)?;
    let code = data as *mut u32;
    let movz = |imm: u32| 0xd280_0000 | (imm << 5);
    let ret = 0xd65f_03c0;
    // SAFETY: `data` maps `f` read-write in init's VSpace.
    unsafe {
        code.write_volatile(movz(0x1234));
        code.add(1).write_volatile(ret);
    }
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    f.map(VSPACE, va, MapFlags::RX, 0, 1)
        .or_fail("map the frame read-execute")?;
    super::run_in_thread(env, &sync, call_code, va)?;
    expect_eq(get(0), 0x1234, "what the code returned")?;
    VSPACE.unmap(va, 0x1000).or_fail("unmap the code")?;
    // SAFETY: as above.
    unsafe { code.write_volatile(movz(0x5678)) };
    f.map(VSPACE, va, MapFlags::RX, 0, 1)
        .or_fail("map the new code")?;
    super::run_in_thread(env, &sync, call_code, va)?;
    expect_eq(
        get(0),
        0x5678,
        "what the rewritten code returned (instruction cache made coherent)",
    )
}

fn delete_mapped_frame(env: &mut Env) -> Outcome {
    let (f, va) = env.mapped_frame(12, MapFlags::RW)?;
    let c: Cap<Frame> = Cap::from_cptr(env.copy(f.cptr(), CapRights::ALL)?);
    let va2 = env.a.va_reserve(1).or_fail("reserve an address")?;
    c.map(VSPACE, va2, MapFlags::RW, 0, 1)
        .or_fail("map the copy")?;
    CNODE.delete(f.cptr()).or_fail("delete the original")?;
    expect_err(
        VSPACE.query(va),
        &[Error::NotMapped],
        "the deleted capability's mapping",
    )?;
    VSPACE.query(va2).or_fail("the copy's mapping")?;
    CNODE
        .delete(c.cptr())
        .or_fail("delete the copy (the last capability)")?;
    expect_err(
        VSPACE.query(va2),
        &[Error::NotMapped],
        "the copy's mapping after its deletion",
    )
}

fn revoke_mapped_frame(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let f = env.frame(12)?;
    let c: Cap<Frame> = Cap::from_cptr(env.copy(f.cptr(), CapRights::ALL)?);
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    c.map(VSPACE, va, MapFlags::RW, 0, 1)
        .or_fail("map the copy")?;
    // SAFETY: `va` maps the frame read-write.
    unsafe { (va as *mut u64).write_volatile(0xabc) };
    expect_eq(
        super::read_u32_in_thread(env, &sync, va)?,
        0xabc,
        "a thread reads the page before the revoke",
    )?;
    CNODE.revoke(f.cptr()).or_fail("revoke the frame")?;
    expect_type(c.cptr(), CapType::Null, "the copy")?;
    expect_err(
        VSPACE.query(va),
        &[Error::NotMapped],
        "VSpaceQuery after the revoke",
    )?;
    set(DONE, 0);
    let cfg = Config {
        fault_endpoint: Some(sync.fault),
        ..Config::new(254)
    };
    env.spawn_cfg(cfg, reader, va)?;
    let r = sync.fault_msg()?;
    check_vm_fault(
        &r,
        va,
        get(super::fault::IP),
        Access::Read,
        Kind::Translation,
    )?;
    f.map(VSPACE, va, MapFlags::READ, 0, 1)
        .or_fail("the revoked capability maps again")
}

/// Writes 0x7700 at `va` and notes that in `R[1]`.
fn poke(va: u64) {
    // SAFETY: the check mapped `va` read-write in this thread's VSpace.
    unsafe { (va as *mut u64).write_volatile(0x7700) };
    set(1, 1);
}

fn revoke_frame_in_two_vspaces(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let f = env.frame(12)?;
    let c1: Cap<Frame> = Cap::from_cptr(env.copy(f.cptr(), CapRights::ALL)?);
    let c2: Cap<Frame> = Cap::from_cptr(env.copy(f.cptr(), CapRights::ALL)?);
    let va1 = env.a.va_reserve(1).or_fail("reserve an address")?;
    c1.map(VSPACE, va1, MapFlags::RW, 0, 1)
        .or_fail("map in init's VSpace")?;
    let cfg = Config {
        fault_endpoint: Some(sync.fault),
        ..Config::new(254)
    };
    let (t, mut space) = env.foreign_thread(cfg)?;
    let va2 = 0x0000_0020_0000_0000u64;
    space
        .map(&mut env.a, c2, va2, MapFlags::RW, 0, 1)
        .or_fail("map in the other VSpace")?;
    t.run(poke, va2).or_fail("start the other thread")?;
    sync.settle()?;
    expect_eq(get(1), 1, "the other thread wrote")?;
    // SAFETY: `va1` maps the frame in init's VSpace.
    let v = unsafe { (va1 as *const u64).read_volatile() };
    expect_eq(v, 0x7700, "what init sees of the other VSpace's write")?;
    CNODE.revoke(f.cptr()).or_fail("revoke the frame")?;
    expect_err(
        VSPACE.query(va1),
        &[Error::NotMapped],
        "init's mapping after the revoke",
    )?;
    expect_err(
        space.vspace.query(va2),
        &[Error::NotMapped],
        "the other VSpace's mapping after the revoke",
    )?;
    let t2 = env.thread(cfg, Some(&mut space))?;
    t2.run(reader, va2)
        .or_fail("start a reader in the other VSpace")?;
    let r = sync.fault_msg()?;
    check_vm_fault(
        &r,
        va2,
        get(super::fault::IP),
        Access::Read,
        Kind::Translation,
    )
}

fn shared_frame_two_vspaces(env: &mut Env) -> Outcome {
    let sync = env.sync()?;
    let (f, va1) = env.mapped_frame(12, MapFlags::RW)?;
    // SAFETY: `va1` maps `f` read-write in init's VSpace.
    unsafe { ((va1 + 8) as *mut u64).write_volatile(0x5eed) };
    let (t, mut space) = env.foreign_thread(Config::new(254))?;
    let va2 = 0x0000_0020_0040_0000u64;
    space
        .map(&mut env.a, f, va2, MapFlags::RW, 0, 1)
        .or_fail("map the same capability in the other VSpace")?;
    t.run(shared_worker, va2)
        .or_fail("start the other thread")?;
    sync.settle()?;
    expect_eq(get(2), 0x5eed, "what the other VSpace reads")?;
    // SAFETY: as above.
    let v = unsafe { (va1 as *const u64).read_volatile() };
    expect_eq(v, 0x7700, "what init reads after the other VSpace wrote")
}

fn shared_worker(va: u64) {
    // SAFETY: the check mapped `va` read-write in this thread's VSpace.
    let v = unsafe { ((va + 8) as *const u64).read_volatile() };
    set(2, v);
    poke(va);
}

fn delete_vspace(env: &mut Env) -> Outcome {
    let f = env.frame(12)?;
    let mut other = Space::new(&mut env.a).or_fail("a new VSpace")?;
    other
        .map(&mut env.a, f, 0x40_0000, MapFlags::RW, 0, 1)
        .or_fail("map a frame in it")?;
    CNODE
        .delete(other.vspace.cptr())
        .or_fail("delete the VSpace")?;
    expect_type(other.vspace.cptr(), CapType::Null, "the VSpace's slot")?;
    f.unmap()
        .or_fail("FrameUnmap of a frame whose VSpace is gone")?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    f.map(VSPACE, va, MapFlags::RW, 0, 1)
        .or_fail("map the frame in init's VSpace")?;
    VSPACE.query(va).or_fail("query it")?;
    Ok(())
}

fn not_a_vspace(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let f = env.frame(12)?;
    let want = &[Error::IllegalOperation, Error::InvalidCapability];
    expect_err(
        e.cast::<VSpace>().query(0x20_0000),
        want,
        "VSpaceQuery on an endpoint",
    )?;
    expect_err(
        f.map(e.cast(), 0x10_0000_0000, MapFlags::RW, 0, 1),
        &[Error::InvalidCapability],
        "FrameMap into an endpoint",
    )?;
    expect_err(
        e.cast::<Frame>()
            .map(VSPACE, 0x10_0000_0000, MapFlags::RW, 0, 1),
        want,
        "FrameMap on an endpoint",
    )?;
    expect_err(
        e.cast::<PageTable>().unmap(),
        want,
        "PageTableUnmap on an endpoint",
    )
}

/// `VSpaceUnmap` and `VSpaceProtect` over the whole 256 TiB user range of a VSpace with two
/// pages mapped far apart: both pages go, and the kernel walks only the tables that exist
/// (a range this size page by page would be 2^36 steps).
fn unmap_whole_address_space(env: &mut Env) -> Outcome {
    let mut space = Space::new(&mut env.a).or_fail("a VSpace")?;
    let f = env.frame(12)?;
    let copy: Cap<Frame> = Cap::from_cptr(env.copy(f.cptr(), CapRights::ALL)?);
    let (low, high) = (0x0000_0000_0040_0000, 0x0000_7fff_0000_0000);
    space
        .map(&mut env.a, f, low, MapFlags::RW, 0, 1)
        .or_fail("map the low page")?;
    space
        .map(&mut env.a, copy, high, MapFlags::RW, 0, 1)
        .or_fail("map the high page")?;
    space
        .vspace
        .protect(0, 1 << 48, MapFlags::READ)
        .or_fail("VSpaceProtect of the whole range")?;
    expect_eq(
        space.vspace.query(high).or_fail("query the high page")?.1,
        MapFlags::READ,
        "the high page's flags",
    )?;
    space
        .vspace
        .unmap(0, 1 << 48)
        .or_fail("VSpaceUnmap of the whole range")?;
    expect_err(space.vspace.query(low), &[Error::NotMapped], "the low page")?;
    expect_err(
        space.vspace.query(high),
        &[Error::NotMapped],
        "the high page",
    )
}
