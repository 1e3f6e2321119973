//! Retype: carving kernel objects out of untyped memory.

use super::cnode::{self, SlotRef};
use super::tcb::Tcb;
use super::{Obj, vspace, zero_phys};
use crate::arch::{cpu, mmu};
use crate::delete;
use abi::Error;
use abi::object::{CapRights, ObjectType};
use kernel_core::cap::Cap;
use kernel_core::{mdb, untyped};

/// `UntypedRetype` with the untyped capability in `ut_slot`, the objects' capabilities going
/// to slots `dest_index ..` of the CNode capability `dest`. Returns how many objects it
/// made: fewer than `count` when it stopped for a pending interrupt (a preemption point
/// after each object; the caller restarts the call for the rest).
pub fn retype(
    ut_slot: SlotRef,
    ty: ObjectType,
    size_bits: u64,
    obj_bits: u32,
    dest: Cap,
    dest_index: u64,
    count: u64,
) -> Result<u64, Error> {
    let Cap::Untyped {
        base,
        size_bits: ut_bits,
        free_offset,
        device,
    } = ut_slot.get().cap()
    else {
        return Err(Error::InvalidCapability);
    };
    let has_children = mdb::has_children(&cnode::Slots, ut_slot);
    let plan = untyped::plan_retype(
        base,
        ut_bits,
        free_offset,
        has_children,
        device,
        ty,
        obj_bits,
        count,
    )?;
    // Every destination slot must exist and be empty before anything changes.
    let end = dest_index.checked_add(count).ok_or(Error::RangeError)?;
    for i in dest_index..end {
        cnode::empty_slot_in(dest, i)?;
    }
    if ty == ObjectType::VSpace && (mmu::free_asids() as u64) < count {
        return Err(Error::NotEnoughMemory);
    }

    for i in 0..count {
        let pa = plan.first + (i << obj_bits);
        if !device {
            zero_phys(pa, 1 << obj_bits);
        }
        let cap = match ty {
            ObjectType::Untyped => Cap::Untyped {
                base: pa,
                size_bits: obj_bits as u8,
                free_offset: 0,
                device,
            },
            ObjectType::Tcb => {
                Tcb::init(Obj::from_pa(pa));
                Cap::Tcb { obj: pa }
            }
            ObjectType::Endpoint => Cap::Endpoint {
                obj: pa,
                badge: 0,
                rights: CapRights::ALL,
            },
            ObjectType::Notification => Cap::Notification {
                obj: pa,
                badge: 0,
                rights: CapRights::ALL,
            },
            ObjectType::CNode => Cap::CNode {
                obj: pa,
                radix: size_bits as u8,
            },
            ObjectType::VSpace => {
                let asid = mmu::alloc_asid().ok_or(Error::NotEnoughMemory)?;
                vspace::init_vspace(pa, asid);
                Cap::VSpace { obj: pa }
            }
            ObjectType::PageTable => Cap::PageTable { obj: pa },
            // Zeroed: disarmed.
            ObjectType::Timer => Cap::Timer { obj: pa },
            ObjectType::Frame => Cap::Frame {
                base: pa,
                size_bits: obj_bits as u8,
                rights: CapRights::ALL,
                device,
            },
        };
        let slot = cnode::slot_in(dest, dest_index + i)?;
        delete::insert(Some(ut_slot), slot, cap);
        let made = i + 1;
        if made < count && cpu::interrupt_pending() {
            set_watermark(ut_slot, pa + (1 << obj_bits) - base);
            return Ok(made);
        }
    }
    set_watermark(ut_slot, plan.new_free_offset);
    Ok(count)
}

/// Moves an untyped capability's watermark (after the objects below it exist).
fn set_watermark(ut_slot: SlotRef, free_offset: u64) {
    if let Cap::Untyped {
        base,
        size_bits,
        device,
        ..
    } = ut_slot.get().cap()
    {
        ut_slot.get().cap = Cap::Untyped {
            base,
            size_bits,
            free_offset,
            device,
        }
        .encode();
    }
}
