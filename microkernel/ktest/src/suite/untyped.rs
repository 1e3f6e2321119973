//! Untyped memory: retype of every object type, counts, zeroing, alignment, the watermark
//! and its restart after revoke, device untyped, and the errors.

use super::{Check, Env, OrFail, Outcome, expect_eq, expect_err, expect_fails, expect_type};
use crate::alloc::{CNODE, VSPACE};
use abi::object::{CapRights, CapType, MapFlags, ObjectType};
use abi::{Error, Invocation};
use libmk::{Cap, Frame, Untyped};

pub const CHECKS: &[Check] = &[
    ("retype-each-type", retype_each_type),
    ("retype-count", retype_count),
    ("objects-zeroed", objects_zeroed),
    ("not-enough-memory", not_enough_memory),
    ("revoke-restarts-watermark", revoke_restarts_watermark),
    ("object-alignment", object_alignment),
    ("bad-type", bad_type),
    ("bad-size", bad_size),
    ("dest-occupied", dest_occupied),
    ("dest-out-of-range", dest_out_of_range),
    ("not-an-untyped", not_an_untyped),
    ("copy-with-children", copy_with_children),
    ("device-frame", device_frame),
    ("device-no-kernel-objects", device_no_kernel_objects),
];

/// A child untyped of `2^bits` bytes (scoped).
fn child(env: &mut Env, bits: u64) -> Result<Cap<Untyped>, super::Why> {
    env.a
        .obj(ObjectType::Untyped, bits)
        .or_fail("retype a child Untyped")
}

/// Retypes one `ty` from `ut` into a new slot.
fn retype_one(env: &mut Env, ut: Cap<Untyped>, ty: ObjectType, bits: u64) -> Result<u64, Error> {
    let s = env.a.slot()?;
    ut.retype(ty, bits, CNODE, s, 1).map(|()| s)
}

fn retype_each_type(env: &mut Env) -> Outcome {
    let ut = child(env, 20)?;
    for (ty, bits, want) in [
        (ObjectType::Tcb, 0, CapType::Tcb),
        (ObjectType::Endpoint, 0, CapType::Endpoint),
        (ObjectType::Notification, 0, CapType::Notification),
        (ObjectType::CNode, 4, CapType::CNode),
        (ObjectType::VSpace, 0, CapType::VSpace),
        (ObjectType::PageTable, 0, CapType::PageTable),
        (ObjectType::Frame, 12, CapType::Frame),
        (ObjectType::Frame, 16, CapType::Frame),
        (ObjectType::Untyped, 12, CapType::Untyped),
    ] {
        let s = retype_one(env, ut, ty, bits).map_err(|e| why!("retype {ty:?}: {e:?}"))?;
        expect_type(s, want, "the new capability")?;
    }
    Ok(())
}

fn retype_count(env: &mut Env) -> Outcome {
    let (ut, _) = env.a.scratch().ok_or(why!("no scratch untyped"))?;
    let first = env.a.slots(5).or_fail("allocate 5 slots")?;
    ut.retype(ObjectType::Endpoint, 0, CNODE, first, 4)
        .or_fail("retype 4 endpoints")?;
    for s in first..first + 4 {
        expect_type(s, CapType::Endpoint, "endpoint n")?;
    }
    expect_type(first + 4, CapType::Null, "the slot after the four")
}

fn objects_zeroed(env: &mut Env) -> Outcome {
    let ut = child(env, 14)?;
    let va = env.a.va_reserve(1).or_fail("reserve an address")?;
    let mut phys = [0u64; 2];
    for (round, phys) in phys.iter_mut().enumerate() {
        let f: Cap<Frame> =
            Cap::from_cptr(retype_one(env, ut, ObjectType::Frame, 12).or_fail("retype a frame")?);
        *phys = f.phys_addr().or_fail("FramePhysAddr")?.0;
        f.map(VSPACE, va, MapFlags::RW, 0, 1)
            .or_fail("map the frame")?;
        let words = va as *mut u64;
        for i in 0..512 {
            // SAFETY: `va` maps the 4 KiB frame just made, read-write, in init's VSpace.
            let w = unsafe { words.add(i).read_volatile() };
            ensure!(
                w == 0,
                "round {round}: word {i} of a new frame is {w:#x}, not 0"
            );
            // SAFETY: as above.
            unsafe {
                words
                    .add(i)
                    .write_volatile(0xaaaa_5555_0000_0000 | i as u64)
            };
        }
        CNODE.revoke(ut.cptr()).or_fail("revoke the untyped")?;
        expect_type(
            f.cptr(),
            CapType::Null,
            "the frame after revoking its untyped",
        )?;
        expect_err(
            VSPACE.query(va),
            &[Error::NotMapped],
            "query the frame's address after the revoke",
        )?;
    }
    expect_eq(
        phys[1],
        phys[0],
        "second frame's address (the watermark restarts at 0)",
    )
}

fn not_enough_memory(env: &mut Env) -> Outcome {
    let ut = child(env, 14)?;
    for i in 0..4 {
        retype_one(env, ut, ObjectType::Frame, 12).map_err(|e| why!("frame {i} of 4: {e:?}"))?;
    }
    expect_err(
        retype_one(env, ut, ObjectType::Frame, 12),
        &[Error::NotEnoughMemory],
        "a fifth 4 KiB frame",
    )?;
    expect_err(
        retype_one(env, ut, ObjectType::Endpoint, 0),
        &[Error::NotEnoughMemory],
        "an endpoint in a full untyped",
    )?;
    let small = child(env, 13)?;
    expect_err(
        retype_one(env, small, ObjectType::Frame, 14),
        &[Error::NotEnoughMemory],
        "a 16 KiB frame from 8 KiB",
    )?;
    expect_err(
        retype_one(env, small, ObjectType::PageTable, 0),
        &[Error::NotEnoughMemory],
        "a 16 KiB page table from 8 KiB",
    )?;
    let s = env.slot()?;
    expect_err(
        small.retype(ObjectType::Endpoint, 0, CNODE, s, 257),
        &[Error::NotEnoughMemory],
        "257 endpoints from 8 KiB",
    )?;
    expect_type(s, CapType::Null, "the first slot after a failed retype")
}

fn revoke_restarts_watermark(env: &mut Env) -> Outcome {
    let ut = child(env, 12)?;
    retype_one(env, ut, ObjectType::Frame, 12).or_fail("the first frame")?;
    expect_err(
        retype_one(env, ut, ObjectType::Endpoint, 0),
        &[Error::NotEnoughMemory],
        "an endpoint after the frame",
    )?;
    CNODE.revoke(ut.cptr()).or_fail("revoke")?;
    expect_type(
        ut.cptr(),
        CapType::Untyped,
        "the untyped itself after revoke",
    )?;
    let e = retype_one(env, ut, ObjectType::Endpoint, 0).or_fail("an endpoint after revoke")?;
    expect_type(e, CapType::Endpoint, "the endpoint")?;
    // With its last child deleted and a revoke, the whole untyped is free again.
    CNODE.delete(e).or_fail("delete the endpoint")?;
    CNODE.revoke(ut.cptr()).or_fail("revoke with no children")?;
    retype_one(env, ut, ObjectType::Frame, 12).or_fail("a whole frame after the second revoke")?;
    Ok(())
}

fn object_alignment(env: &mut Env) -> Outcome {
    let ut = child(env, 16)?;
    let f = retype_one(env, ut, ObjectType::Frame, 12).or_fail("a frame")?;
    let base = Cap::<Frame>::from_cptr(f)
        .phys_addr()
        .or_fail("FramePhysAddr")?
        .0;
    ensure!(
        base % (1 << 16) == 0,
        "a 64 KiB untyped's first object is at {base:#x}, not 64 KiB aligned"
    );
    CNODE.revoke(ut.cptr()).or_fail("revoke")?;
    retype_one(env, ut, ObjectType::Endpoint, 0).or_fail("an endpoint")?;
    let f4 = retype_one(env, ut, ObjectType::Frame, 12).or_fail("a 4 KiB frame")?;
    let f16 = retype_one(env, ut, ObjectType::Frame, 14).or_fail("a 16 KiB frame")?;
    let a4 = Cap::<Frame>::from_cptr(f4)
        .phys_addr()
        .or_fail("FramePhysAddr")?;
    let a16 = Cap::<Frame>::from_cptr(f16)
        .phys_addr()
        .or_fail("FramePhysAddr")?;
    expect_eq(
        a4,
        (base + 0x1000, 0x1000),
        "4 KiB frame after an endpoint (address, size)",
    )?;
    expect_eq(
        a16,
        (base + 0x4000, 0x4000),
        "16 KiB frame after it (address, size)",
    )
}

fn raw_retype(
    ut: Cap<Untyped>,
    ty: u64,
    bits: u64,
    cnode: u64,
    slot: u64,
    count: u64,
) -> Result<(), Error> {
    libmk::invoke(
        ut.cptr(),
        Invocation::UntypedRetype,
        &[ty, bits, cnode, slot, count],
    )
    .map(|_| ())
}

fn bad_type(env: &mut Env) -> Outcome {
    let ut = child(env, 16)?;
    let s = env.slot()?;
    for ty in [0, 10, 11, u64::MAX] {
        expect_err(
            raw_retype(ut, ty, 12, CNODE.cptr(), s, 1),
            &[Error::InvalidArgument],
            "retype an unknown type",
        )?;
    }
    expect_type(s, CapType::Null, "the destination")
}

fn bad_size(env: &mut Env) -> Outcome {
    let ut = child(env, 20)?;
    let s = env.slot()?;
    let want = &[Error::RangeError, Error::InvalidArgument];
    for (ty, bits, what) in [
        (ObjectType::CNode, 0, "CNode radix 0"),
        (ObjectType::CNode, 17, "CNode radix 17"),
        (ObjectType::Frame, 11, "2 KiB frame"),
        (ObjectType::Frame, 22, "4 MiB frame"),
        (ObjectType::Untyped, 3, "8-byte untyped"),
        (ObjectType::Untyped, 48, "2^48-byte untyped"),
        (ObjectType::Frame, u64::MAX, "frame of size_bits u64::MAX"),
    ] {
        expect_err(ut.retype(ty, bits, CNODE, s, 1), want, what)?;
    }
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, CNODE, s, 0),
        want,
        "count 0",
    )?;
    expect_type(s, CapType::Null, "the destination")
}

fn dest_occupied(env: &mut Env) -> Outcome {
    let (ut, _) = env.a.scratch().ok_or(why!("no scratch untyped"))?;
    let first = env.a.slots(2).or_fail("two slots")?;
    ut.retype(ObjectType::Notification, 0, CNODE, first + 1, 1)
        .or_fail("fill the second slot")?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, CNODE, first, 2),
        &[Error::SlotOccupied],
        "retype into a range with a full slot",
    )?;
    expect_type(
        first,
        CapType::Null,
        "the empty slot of the range (nothing changes)",
    )?;
    expect_type(first + 1, CapType::Notification, "the occupied slot")?;
    expect_err(
        ut.retype(
            ObjectType::Endpoint,
            0,
            CNODE,
            crate::alloc::CNODE.cptr(),
            1,
        ),
        &[Error::SlotOccupied],
        "retype over init's CNode slot",
    )
}

fn dest_out_of_range(env: &mut Env) -> Outcome {
    let (ut, _) = env.a.scratch().ok_or(why!("no scratch untyped"))?;
    let n = env.a.slot_count();
    let want = &[Error::InvalidCapability, Error::RangeError];
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, CNODE, n, 1),
        want,
        "dest index = CNode size",
    )?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, CNODE, u64::MAX, 1),
        want,
        "dest index u64::MAX",
    )?;
    expect_err(
        ut.retype(ObjectType::Endpoint, 0, CNODE, n - 1, 2),
        want,
        "a range past the CNode's end",
    )?;
    expect_type(n - 1, CapType::Null, "the CNode's last slot")?;
    let e = env.endpoint()?;
    let s = env.slot()?;
    expect_err(
        raw_retype(ut, ObjectType::Endpoint as u64, 0, e.cptr(), s, 1),
        &[Error::InvalidCapability],
        "dest_cnode an endpoint",
    )?;
    expect_err(
        raw_retype(ut, ObjectType::Endpoint as u64, 0, n + 5, s, 1),
        &[Error::InvalidCapability],
        "dest_cnode out of range",
    )
}

fn not_an_untyped(env: &mut Env) -> Outcome {
    let e = env.endpoint()?;
    let s = env.slot()?;
    let want = &[Error::IllegalOperation, Error::InvalidCapability];
    expect_err(
        e.cast::<Untyped>()
            .retype(ObjectType::Endpoint, 0, CNODE, s, 1),
        want,
        "retype on an endpoint",
    )?;
    let empty = env.slot()?;
    expect_err(
        Cap::<Untyped>::from_cptr(empty).retype(ObjectType::Endpoint, 0, CNODE, s, 1),
        &[Error::InvalidCapability],
        "retype on an empty slot",
    )?;
    expect_err(
        Cap::<Untyped>::from_cptr(u64::MAX - 1).retype(ObjectType::Endpoint, 0, CNODE, s, 1),
        &[Error::InvalidCapability],
        "retype on an out-of-range CPtr",
    )?;
    expect_type(s, CapType::Null, "the destination")
}

fn copy_with_children(env: &mut Env) -> Outcome {
    let ut = child(env, 14)?;
    let c = env.copy(ut.cptr(), CapRights::ALL)?;
    expect_type(c, CapType::Untyped, "a copy of an untyped without children")?;
    CNODE.delete(c).or_fail("delete the copy")?;
    retype_one(env, ut, ObjectType::Endpoint, 0).or_fail("an endpoint")?;
    let s = env.slot()?;
    expect_err(
        CNODE.copy(s, CNODE, ut.cptr(), CapRights::ALL),
        &[Error::RevokeFirst],
        "copy an untyped with children",
    )?;
    expect_type(s, CapType::Null, "the destination")
}

fn device_untyped(env: &Env) -> Result<abi::bootinfo::UntypedDesc, super::Why> {
    env.info()
        .untyped()
        .iter()
        .find(|u| u.device != 0 && env.info().uart.base.wrapping_sub(u.base) >= 1u64 << u.size_bits)
        .copied()
        .ok_or(why!("the boot info lists no device untyped"))
}

/// A device frame maps (never executable) and shows the device: the virtio-mmio magic
/// "virt" at offset 0 of each transport.
fn device_frame(env: &mut Env) -> Outcome {
    let dev = device_untyped(env)?;
    let ut = Cap::<Untyped>::from_cptr(dev.slot);
    let r = (|| {
        let f: Cap<Frame> = Cap::from_cptr(
            retype_one(env, ut, ObjectType::Frame, 12).or_fail("retype a device frame")?,
        );
        expect_type(f.cptr(), CapType::Frame, "the device frame")?;
        expect_eq(
            f.phys_addr().or_fail("FramePhysAddr")?.0,
            dev.base,
            "the device frame's address",
        )?;
        let va = env.a.va_reserve(1).or_fail("reserve an address")?;
        expect_fails(
            f.map(VSPACE, va, MapFlags::RX, 0, 1),
            "map a device frame executable",
        )?;
        f.map(VSPACE, va, MapFlags::RW, 0, 1)
            .or_fail("map a device frame read-write")?;
        let sync = env.sync()?;
        let magic = super::read_u32_in_thread(env, &sync, va)?;
        expect_eq(
            magic,
            0x7472_6976,
            "virtio-mmio magic at the device untyped's base",
        )
    })();
    let _ = CNODE.revoke(dev.slot);
    r
}

fn device_no_kernel_objects(env: &mut Env) -> Outcome {
    let dev = device_untyped(env)?;
    let ut = Cap::<Untyped>::from_cptr(dev.slot);
    let r = (|| {
        for ty in [
            ObjectType::Endpoint,
            ObjectType::Tcb,
            ObjectType::CNode,
            ObjectType::PageTable,
        ] {
            expect_fails(
                retype_one(env, ut, ty, 4),
                "a kernel object from device untyped",
            )?;
        }
        let u = retype_one(env, ut, ObjectType::Untyped, 12)
            .or_fail("an untyped from device untyped")?;
        expect_type(u, CapType::Untyped, "the device child untyped")?;
        expect_fails(
            retype_one(env, Cap::from_cptr(u), ObjectType::Notification, 0),
            "a notification from the device child untyped",
        )
    })();
    let _ = CNODE.revoke(dev.slot);
    r
}
