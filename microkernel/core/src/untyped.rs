//! Retype arithmetic: where in an untyped region `UntypedRetype` places its objects, and the
//! watermark it leaves (seL4's `decodeUntypedInvocation` memory checks).

use abi::Error;
use abi::object::ObjectType;

/// Most objects one `UntypedRetype` may create (bounds the work of one call).
pub const MAX_RETYPE_COUNT: u64 = 4096;

/// Where a retype puts its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetypePlan {
    /// Physical address of the first object; object `i` is at `first + i * 2^obj_bits`.
    pub first: u64,
    /// The untyped's watermark afterwards: bytes used from its base.
    pub new_free_offset: u64,
}

/// Places `count` objects of type `ty`, each `2^obj_bits` bytes and aligned to its size, in
/// the untyped [`base`, `base + 2^size_bits`) above its watermark `free_offset`.
///
/// `has_children`: whether the untyped has MDB children. If not, nothing lives in its
/// memory any more and allocation restarts at its base, as in seL4.
///
/// Errors: `RangeError` for a count outside 1..=[`MAX_RETYPE_COUNT`]; `InvalidArgument` for
/// anything but frames and untyped from device memory (the kernel must not keep its
/// objects there); `NotEnoughMemory` when the objects do not fit (including any arithmetic
/// overflow, and a malformed untyped whose size or end does not fit in 64 bits).
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the fields of an untyped capability"
)]
pub fn plan_retype(
    base: u64,
    size_bits: u8,
    free_offset: u64,
    has_children: bool,
    device: bool,
    ty: ObjectType,
    obj_bits: u32,
    count: u64,
) -> Result<RetypePlan, Error> {
    if !(1..=MAX_RETYPE_COUNT).contains(&count) {
        return Err(Error::RangeError);
    }
    if device && !matches!(ty, ObjectType::Frame | ObjectType::Untyped) {
        return Err(Error::InvalidArgument);
    }
    let size_bits = u32::from(size_bits);
    if obj_bits > size_bits {
        return Err(Error::NotEnoughMemory);
    }
    let fit = |v: Option<u64>| v.ok_or(Error::NotEnoughMemory);
    let untyped_size = fit(1u64.checked_shl(size_bits))?;
    let end = fit(base.checked_add(untyped_size))?;
    let obj_size = fit(1u64.checked_shl(obj_bits))?;
    let used = if has_children { free_offset } else { 0 };
    if used > untyped_size {
        return Err(Error::NotEnoughMemory);
    }
    let first = fit(fit(base.checked_add(used))?.checked_next_multiple_of(obj_size))?;
    let last_end = fit(first.checked_add(fit(count.checked_mul(obj_size))?))?;
    if last_end > end {
        return Err(Error::NotEnoughMemory);
    }
    Ok(RetypePlan {
        first,
        new_free_offset: last_end - base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::object::{ObjectType as T, TCB_BITS};

    const BASE: u64 = 0x4000_0000;

    fn plan(
        free_offset: u64,
        has_children: bool,
        ty: T,
        obj_bits: u32,
        count: u64,
    ) -> Result<RetypePlan, Error> {
        plan_retype(
            BASE,
            16,
            free_offset,
            has_children,
            false,
            ty,
            obj_bits,
            count,
        )
    }

    fn ok(first: u64, new_free_offset: u64) -> Result<RetypePlan, Error> {
        Ok(RetypePlan {
            first,
            new_free_offset,
        })
    }

    #[test]
    fn places_objects_aligned_to_their_size() {
        assert_eq!(plan(0, true, T::Endpoint, 5, 1), ok(BASE, 32));
        // 32 bytes used: a 2 KiB TCB starts at the next 2 KiB boundary.
        assert_eq!(plan(32, true, T::Tcb, TCB_BITS, 2), ok(BASE + 2048, 6144));
        // Already aligned: no padding.
        assert_eq!(plan(4096, true, T::Frame, 12, 3), ok(BASE + 4096, 4 * 4096));
        assert_eq!(plan(4097, true, T::Frame, 12, 1), ok(BASE + 8192, 3 * 4096));
        // The untyped base itself need only be aligned to the object.
        assert_eq!(
            plan_retype(0x1010, 4, 0, false, false, T::Untyped, 4, 1),
            ok(0x1010, 16)
        );
    }

    #[test]
    fn exact_fit_and_one_too_many() {
        assert_eq!(plan(0, true, T::Frame, 12, 16), ok(BASE, 65536));
        assert_eq!(plan(0, true, T::Frame, 12, 17), Err(Error::NotEnoughMemory));
        assert_eq!(
            plan(65536 - 32, true, T::Endpoint, 5, 1),
            ok(BASE + 65504, 65536)
        );
        assert_eq!(
            plan(65536 - 31, true, T::Endpoint, 5, 1),
            Err(Error::NotEnoughMemory)
        );
        assert_eq!(
            plan(65536, true, T::Endpoint, 5, 1),
            Err(Error::NotEnoughMemory)
        );
        // The whole untyped as one object of its own size.
        assert_eq!(plan(0, true, T::Untyped, 16, 1), ok(BASE, 65536));
        assert_eq!(
            plan(0, true, T::Untyped, 17, 1),
            Err(Error::NotEnoughMemory)
        );
        // Padding is what stops it.
        assert_eq!(plan(32, true, T::Untyped, 15, 1), ok(BASE + 32768, 65536));
        assert_eq!(
            plan(32, true, T::Untyped, 15, 2),
            Err(Error::NotEnoughMemory)
        );
    }

    #[test]
    fn watermark_restarts_without_children() {
        assert_eq!(plan(65536, false, T::Frame, 12, 16), ok(BASE, 65536));
        assert_eq!(plan(40000, false, T::Tcb, TCB_BITS, 1), ok(BASE, 2048));
        // A corrupt watermark beyond the end is harmless once the untyped is empty...
        assert_eq!(plan(u64::MAX, false, T::Endpoint, 5, 1), ok(BASE, 32));
        // ...and means "full" while it is not.
        assert_eq!(
            plan(u64::MAX, true, T::Endpoint, 5, 1),
            Err(Error::NotEnoughMemory)
        );
        assert_eq!(
            plan(65537, true, T::Endpoint, 5, 1),
            Err(Error::NotEnoughMemory)
        );
    }

    #[test]
    fn count_bounds() {
        assert_eq!(plan(0, true, T::Endpoint, 5, 0), Err(Error::RangeError));
        assert_eq!(
            plan(0, true, T::Endpoint, 5, MAX_RETYPE_COUNT + 1),
            Err(Error::RangeError)
        );
        assert_eq!(
            plan(0, true, T::Endpoint, 5, u64::MAX),
            Err(Error::RangeError)
        );
        assert_eq!(
            plan_retype(0, 20, 0, false, false, T::Notification, 5, MAX_RETYPE_COUNT),
            ok(0, MAX_RETYPE_COUNT * 32)
        );
    }

    #[test]
    fn device_memory_holds_only_frames_and_untyped() {
        let dev = |ty, bits| plan_retype(BASE, 16, 0, false, true, ty, bits, 1);
        assert_eq!(dev(T::Frame, 12), ok(BASE, 4096));
        assert_eq!(dev(T::Untyped, 8), ok(BASE, 256));
        for (ty, bits) in [
            (T::Tcb, 11),
            (T::Endpoint, 5),
            (T::Notification, 5),
            (T::CNode, 10),
            (T::VSpace, 13),
            (T::PageTable, 14),
        ] {
            assert_eq!(dev(ty, bits), Err(Error::InvalidArgument), "{ty:?}");
            assert!(plan_retype(BASE, 16, 0, false, false, ty, bits, 1).is_ok());
        }
    }

    #[test]
    fn no_overflow() {
        let top = |size_bits, free, bits, count| {
            plan_retype(1 << 47, size_bits, free, true, false, T::Frame, bits, count)
        };
        assert_eq!(top(47, 0, 12, 4096), ok(1 << 47, 4096 * 4096));
        assert_eq!(
            top(47, (1 << 47) - 4096, 12, 2),
            Err(Error::NotEnoughMemory)
        );
        assert_eq!(
            top(47, (1 << 47) - 4096, 21, 1),
            Err(Error::NotEnoughMemory)
        );
        // Objects bigger than the untyped, or than the address space.
        assert_eq!(top(12, 0, 13, 1), Err(Error::NotEnoughMemory));
        assert_eq!(top(47, 0, 64, 1), Err(Error::NotEnoughMemory));
        assert_eq!(top(47, 0, u32::MAX, 1), Err(Error::NotEnoughMemory));
        // Malformed untyped capabilities: size or end beyond 64 bits.
        let any = |base, size_bits, free| {
            plan_retype(base, size_bits, free, true, false, T::Untyped, 4, 1)
        };
        assert_eq!(any(0, 64, 0), Err(Error::NotEnoughMemory));
        assert_eq!(any(0, 255, 0), Err(Error::NotEnoughMemory));
        assert_eq!(any(u64::MAX - 15, 4, 0), Err(Error::NotEnoughMemory));
        assert_eq!(any(1 << 63, 63, 0), Err(Error::NotEnoughMemory));
        assert_eq!(any(0, 63, u64::MAX - 7), Err(Error::NotEnoughMemory));
        assert_eq!(any(0, 63, (1 << 63) - 16), ok((1 << 63) - 16, 1 << 63));
        // count * size overflows 64 bits.
        assert_eq!(
            plan_retype(0, 63, 0, true, false, T::Untyped, 62, 4096),
            Err(Error::NotEnoughMemory)
        );
        assert_eq!(
            plan_retype(0, 63, 0, true, false, T::Untyped, 62, 2),
            ok(0, 1 << 63)
        );
    }

    /// The same rules in 128-bit arithmetic, where nothing overflows.
    fn reference(
        base: u64,
        size_bits: u8,
        free: u64,
        children: bool,
        obj_bits: u32,
        count: u64,
    ) -> Result<RetypePlan, Error> {
        if !(1..=MAX_RETYPE_COUNT).contains(&count) {
            return Err(Error::RangeError);
        }
        if obj_bits > u32::from(size_bits) || size_bits >= 64 {
            return Err(Error::NotEnoughMemory);
        }
        let base = u128::from(base);
        let end = base + (1u128 << size_bits);
        let used = if children { u128::from(free) } else { 0 };
        let obj = 1u128 << obj_bits;
        let first = (base + used).div_ceil(obj) * obj;
        let last = first + u128::from(count) * obj;
        if end > u128::from(u64::MAX) || used > 1u128 << size_bits || last > end {
            return Err(Error::NotEnoughMemory);
        }
        Ok(RetypePlan {
            first: first as u64,
            new_free_offset: (last - base) as u64,
        })
    }

    #[test]
    fn seeded_random_plans_match_a_reference() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut fits, mut full) = (0, 0);
        for i in 0..100_000 {
            // Mostly sensible values near the edges, sometimes anything.
            let wild = i % 16 == 0;
            let size_bits = (next() % if wild { 256 } else { 48 }) as u8;
            let align = 1u64.checked_shl(u32::from(size_bits)).unwrap_or(0);
            let base = if wild {
                next()
            } else {
                (next() % (1 << 48)) & !align.wrapping_sub(1)
            };
            let obj_bits = (next() % if wild { 100 } else { u64::from(size_bits) + 3 }) as u32;
            let free = if wild {
                next()
            } else {
                next() % (align.max(1) + 64)
            };
            let count = if wild { next() } else { next() % 70 };
            let children = next() & 1 == 0;
            let got = plan_retype(
                base,
                size_bits,
                free,
                children,
                false,
                T::Frame,
                obj_bits,
                count,
            );
            assert_eq!(
                got,
                reference(base, size_bits, free, children, obj_bits, count),
                "base {base:#x} size_bits {size_bits} free {free:#x} children {children} \
                 obj_bits {obj_bits} count {count}"
            );
            match got {
                Ok(_) => fits += 1,
                Err(Error::NotEnoughMemory) => full += 1,
                Err(_) => {}
            }
        }
        assert!(fits > 10_000 && full > 10_000, "{fits} fit, {full} did not");
    }
}
