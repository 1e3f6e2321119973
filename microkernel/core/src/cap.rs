//! Capabilities as values: their two-word encoding in a slot, the objects they name, and how
//! one is derived from another (seL4's `sameRegionAs`, `sameObjectAs`, `isMDBParentOf`,
//! `deriveCap`, `updateCapData`).
//!
//! Slot encoding (two words; every word pair decodes to some `Cap`, unknown types to `Null`):
//!
//! ```text
//!  word 0:
//!   63    60 59 58 57      52  51  50    48 47                                 0
//!  |  type  | 0  0 | size    | dev | rights |  address (physical, below 2^48)  |
//!
//!  type      CapType value (0 Null .. 15 Timer); the field is full: a further type
//!            needs the two zero bits below it
//!  size      Untyped, Frame: size_bits; CNode: radix; Zombie of a CNode: radix
//!  dev       Untyped, Frame: device memory
//!  rights    Endpoint, Notification, Frame: CapRights (READ 1, WRITE 2, GRANT 4)
//!  address   Untyped, Frame: base; Endpoint .. PageTable, Timer, Zombie: the object;
//!            Reply: the TCB of the thread waiting for the reply
//!
//!  word 1:   Endpoint, Notification: badge (all 64 bits)
//!            Untyped: free_offset (bytes used from base)
//!            IrqHandler: intid (bits 31..0)
//!            Zombie: bit 0 = kind (0 TCB, 1 CNode)
//!            otherwise 0
//! ```
//!
//! Fields that do not fit are truncated by `encode` (a size above 63, an address at or above
//! 2^48); the kernel never builds such capabilities.

use abi::Error;
use abi::object::{
    CapRights, CapType, ENDPOINT_BITS, NOTIFICATION_BITS, PAGE_TABLE_BITS, SLOT_BITS, TCB_BITS,
    TIMER_BITS, VSPACE_BITS,
};

/// A capability: what a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    Null,
    /// `free_offset`: bytes used from `base` (the watermark retype allocates from).
    Untyped {
        base: u64,
        size_bits: u8,
        free_offset: u64,
        device: bool,
    },
    /// `obj` is the physical address of the kernel object (so for all object caps).
    Endpoint {
        obj: u64,
        badge: u64,
        rights: CapRights,
    },
    Notification {
        obj: u64,
        badge: u64,
        rights: CapRights,
    },
    Tcb {
        obj: u64,
    },
    CNode {
        obj: u64,
        radix: u8,
    },
    VSpace {
        obj: u64,
    },
    PageTable {
        obj: u64,
    },
    Frame {
        base: u64,
        size_bits: u8,
        rights: CapRights,
        device: bool,
    },
    IrqControl,
    IrqHandler {
        intid: u32,
    },
    /// An object in the middle of being destroyed.
    Zombie {
        obj: u64,
        kind: ZombieKind,
    },
    /// The right to print on the debug console.
    Console,
    /// The right to power the machine off.
    PowerControl,
    /// A saved reply (`SaveCaller`): answers the thread at `tcb` (a TCB's physical
    /// address), which waits for it, once. The kernel keeps the thread and the slot linked
    /// both ways, so it is never used after either goes; it cannot be copied ([`derive`]).
    Reply {
        tcb: u64,
    },
    /// A timer object (`TimerArm`, `TimerDisarm`).
    Timer {
        obj: u64,
    },
}

/// What a [`Cap::Zombie`] was before its destruction began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZombieKind {
    CNode { radix: u8 },
    Tcb,
}

const TYPE_SHIFT: u32 = 60;
const SIZE_SHIFT: u32 = 52;
const SIZE_MASK: u64 = 0x3f;
const DEVICE_BIT: u64 = 1 << 51;
const RIGHTS_SHIFT: u32 = 48;
const ADDR_MASK: u64 = (1 << 48) - 1;
const ZOMBIE_CNODE: u64 = 1;

/// `2^bits` bytes, or `None` if that does not fit in a `u64`.
fn bytes(bits: u32) -> Option<u64> {
    1u64.checked_shl(bits)
}

fn pack(ty: CapType, addr: u64, size: u8, device: bool, rights: CapRights) -> u64 {
    ((ty as u64) << TYPE_SHIFT)
        | ((u64::from(size) & SIZE_MASK) << SIZE_SHIFT)
        | if device { DEVICE_BIT } else { 0 }
        | ((rights.0 & CapRights::ALL.0) << RIGHTS_SHIFT)
        | (addr & ADDR_MASK)
}

impl Cap {
    /// The two words stored in a slot (layout in the module documentation).
    pub fn encode(&self) -> [u64; 2] {
        let ty = self.cap_type();
        let none = CapRights::NONE;
        match *self {
            Cap::Null | Cap::IrqControl | Cap::Console | Cap::PowerControl => {
                [pack(ty, 0, 0, false, none), 0]
            }
            Cap::Untyped {
                base,
                size_bits,
                free_offset,
                device,
            } => [pack(ty, base, size_bits, device, none), free_offset],
            Cap::Endpoint { obj, badge, rights } | Cap::Notification { obj, badge, rights } => {
                [pack(ty, obj, 0, false, rights), badge]
            }
            Cap::Tcb { obj }
            | Cap::VSpace { obj }
            | Cap::PageTable { obj }
            | Cap::Timer { obj } => [pack(ty, obj, 0, false, none), 0],
            Cap::CNode { obj, radix } => [pack(ty, obj, radix, false, none), 0],
            Cap::Frame {
                base,
                size_bits,
                rights,
                device,
            } => [pack(ty, base, size_bits, device, rights), 0],
            Cap::IrqHandler { intid } => [pack(ty, 0, 0, false, none), u64::from(intid)],
            Cap::Reply { tcb } => [pack(ty, tcb, 0, false, none), 0],
            Cap::Zombie { obj, kind } => match kind {
                ZombieKind::CNode { radix } => [pack(ty, obj, radix, false, none), ZOMBIE_CNODE],
                ZombieKind::Tcb => [pack(ty, obj, 0, false, none), 0],
            },
        }
    }

    /// What [`Cap::decode`] gives for an endpoint capability, (object, badge, rights), or
    /// `None` for any other: one type check instead of the whole decode (the IPC fast path
    /// looks up an endpoint on every `Call` and `ReplyRecv`).
    #[inline]
    pub fn decode_endpoint(words: [u64; 2]) -> Option<(u64, u64, CapRights)> {
        let [w0, w1] = words;
        (w0 >> TYPE_SHIFT == CapType::Endpoint as u64)
            .then(|| (w0 & ADDR_MASK, w1, CapRights::from_word(w0 >> RIGHTS_SHIFT)))
    }

    /// The capability two slot words hold. Total: any words give some capability, and
    /// `decode(encode(decode(w))) == decode(w)`.
    pub fn decode(words: [u64; 2]) -> Cap {
        let [w0, w1] = words;
        let addr = w0 & ADDR_MASK;
        // Six bits, so the cast cannot truncate.
        let size = ((w0 >> SIZE_SHIFT) & SIZE_MASK) as u8;
        let device = w0 & DEVICE_BIT != 0;
        let rights = CapRights::from_word(w0 >> RIGHTS_SHIFT);
        let Ok(ty) = CapType::try_from(w0 >> TYPE_SHIFT) else {
            return Cap::Null;
        };
        match ty {
            CapType::Null => Cap::Null,
            CapType::Untyped => Cap::Untyped {
                base: addr,
                size_bits: size,
                free_offset: w1,
                device,
            },
            CapType::Endpoint => Cap::Endpoint {
                obj: addr,
                badge: w1,
                rights,
            },
            CapType::Notification => Cap::Notification {
                obj: addr,
                badge: w1,
                rights,
            },
            CapType::Tcb => Cap::Tcb { obj: addr },
            CapType::CNode => Cap::CNode {
                obj: addr,
                radix: size,
            },
            CapType::VSpace => Cap::VSpace { obj: addr },
            CapType::PageTable => Cap::PageTable { obj: addr },
            CapType::Frame => Cap::Frame {
                base: addr,
                size_bits: size,
                rights,
                device,
            },
            CapType::IrqControl => Cap::IrqControl,
            CapType::Console => Cap::Console,
            CapType::PowerControl => Cap::PowerControl,
            CapType::Reply => Cap::Reply { tcb: addr },
            CapType::Timer => Cap::Timer { obj: addr },
            CapType::IrqHandler => Cap::IrqHandler {
                // The encoding keeps the intid in the low half; the rest is ignored.
                intid: w1 as u32,
            },
            CapType::Zombie => Cap::Zombie {
                obj: addr,
                kind: if w1 & ZOMBIE_CNODE != 0 {
                    ZombieKind::CNode { radix: size }
                } else {
                    ZombieKind::Tcb
                },
            },
        }
    }

    pub fn cap_type(&self) -> CapType {
        match self {
            Cap::Null => CapType::Null,
            Cap::Untyped { .. } => CapType::Untyped,
            Cap::Endpoint { .. } => CapType::Endpoint,
            Cap::Notification { .. } => CapType::Notification,
            Cap::Tcb { .. } => CapType::Tcb,
            Cap::CNode { .. } => CapType::CNode,
            Cap::VSpace { .. } => CapType::VSpace,
            Cap::PageTable { .. } => CapType::PageTable,
            Cap::Frame { .. } => CapType::Frame,
            Cap::IrqControl => CapType::IrqControl,
            Cap::IrqHandler { .. } => CapType::IrqHandler,
            Cap::Zombie { .. } => CapType::Zombie,
            Cap::Console => CapType::Console,
            Cap::PowerControl => CapType::PowerControl,
            Cap::Reply { .. } => CapType::Reply,
            Cap::Timer { .. } => CapType::Timer,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Cap::Null)
    }

    /// The physical memory the capability names, as (base, size in bytes); `None` for
    /// capabilities that name no memory (Null, IrqControl, IrqHandler, Console,
    /// PowerControl; Reply, which refers to a thread it does not own and is no part of the
    /// derivation tree) and for a size that does not fit in 64 bits (never built by the
    /// kernel).
    pub fn object(&self) -> Option<(u64, u64)> {
        let (base, bits) = match *self {
            Cap::Null
            | Cap::IrqControl
            | Cap::IrqHandler { .. }
            | Cap::Console
            | Cap::PowerControl
            | Cap::Reply { .. } => return None,
            Cap::Untyped {
                base, size_bits, ..
            }
            | Cap::Frame {
                base, size_bits, ..
            } => (base, u32::from(size_bits)),
            Cap::Endpoint { obj, .. } => (obj, ENDPOINT_BITS),
            Cap::Notification { obj, .. } => (obj, NOTIFICATION_BITS),
            Cap::Tcb { obj }
            | Cap::Zombie {
                obj,
                kind: ZombieKind::Tcb,
            } => (obj, TCB_BITS),
            Cap::CNode { obj, radix }
            | Cap::Zombie {
                obj,
                kind: ZombieKind::CNode { radix },
            } => (obj, u32::from(radix) + SLOT_BITS),
            Cap::VSpace { obj } => (obj, VSPACE_BITS),
            Cap::PageTable { obj } => (obj, PAGE_TABLE_BITS),
            Cap::Timer { obj } => (obj, TIMER_BITS),
        };
        Some((base, bytes(bits)?))
    }

    /// The capability's rights; [`CapRights::ALL`] for types that have none.
    pub fn rights(&self) -> CapRights {
        match *self {
            Cap::Endpoint { rights, .. }
            | Cap::Notification { rights, .. }
            | Cap::Frame { rights, .. } => rights,
            _ => CapRights::ALL,
        }
    }

    /// The badge; 0 when unbadged or not badgeable.
    pub fn badge(&self) -> u64 {
        match *self {
            Cap::Endpoint { badge, .. } | Cap::Notification { badge, .. } => badge,
            _ => 0,
        }
    }

    /// Whether `other` names memory or an object within what `self` names: the derivation
    /// tree's notion of "could be derived from".
    pub fn same_region_as(&self, other: &Cap) -> bool {
        match (*self, *other) {
            (Cap::Untyped { .. }, _) => {
                let (Some((a, a_size)), Some((b, b_size))) = (self.object(), other.object()) else {
                    return false;
                };
                // u128: neither end can overflow.
                let a_end = u128::from(a) + u128::from(a_size);
                let b_end = u128::from(b) + u128::from(b_size);
                a <= b && b_end <= a_end
            }
            (Cap::Endpoint { obj: a, .. }, Cap::Endpoint { obj: b, .. })
            | (Cap::Notification { obj: a, .. }, Cap::Notification { obj: b, .. })
            | (Cap::Tcb { obj: a }, Cap::Tcb { obj: b })
            | (Cap::VSpace { obj: a }, Cap::VSpace { obj: b })
            | (Cap::PageTable { obj: a }, Cap::PageTable { obj: b })
            | (Cap::Timer { obj: a }, Cap::Timer { obj: b }) => a == b,
            (Cap::CNode { obj: a, radix: ra }, Cap::CNode { obj: b, radix: rb }) => {
                a == b && ra == rb
            }
            (
                Cap::Frame {
                    base: a,
                    size_bits: sa,
                    ..
                },
                Cap::Frame {
                    base: b,
                    size_bits: sb,
                    ..
                },
            ) => a == b && sa == sb,
            (Cap::IrqControl, Cap::IrqControl | Cap::IrqHandler { .. }) => true,
            (Cap::IrqHandler { intid: a }, Cap::IrqHandler { intid: b }) => a == b,
            (Cap::Console, Cap::Console) | (Cap::PowerControl, Cap::PowerControl) => true,
            _ => false,
        }
    }

    /// Whether both capabilities name the same object, so deleting the last of them must
    /// destroy it. An untyped capability names memory, not an object; IrqControl does not
    /// own the handlers it made.
    pub fn same_object_as(&self, other: &Cap) -> bool {
        match (*self, *other) {
            (Cap::Untyped { .. }, _) | (Cap::IrqControl, Cap::IrqHandler { .. }) => false,
            (Cap::Zombie { obj: a, kind: ka }, Cap::Zombie { obj: b, kind: kb }) => {
                a == b && ka == kb
            }
            _ => self.same_region_as(other),
        }
    }
}

/// The derivation-tree flags kept in a slot beside its capability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotFlags {
    /// The capability can have children: an original, a badged mint, an untyped copy.
    pub revocable: bool,
    /// The first capability with its badge: not a child of an earlier capability that has
    /// the same badge.
    pub first_badged: bool,
}

impl SlotFlags {
    /// Flags of a capability the kernel made itself (retype, IrqControlGet, boot).
    pub const ORIGINAL: Self = Self {
        revocable: true,
        first_badged: true,
    };
    /// Flags of a plain copy.
    pub const COPY: Self = Self {
        revocable: false,
        first_badged: false,
    };
}

/// Whether the capability `b`, placed right after `a` in the derivation list, is a child
/// (or deeper descendant) of `a`.
pub fn is_mdb_parent_of(a: &Cap, a_flags: SlotFlags, b: &Cap, b_flags: SlotFlags) -> bool {
    if !a_flags.revocable || !a.same_region_as(b) {
        return false;
    }
    match a {
        Cap::Endpoint { badge, .. } | Cap::Notification { badge, .. } => {
            *badge == 0 || (b.badge() == *badge && !b_flags.first_badged)
        }
        _ => true,
    }
}

/// How a new capability is made from an existing one (`CNodeCopy`, `CNodeMint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derivation {
    /// Same capability, rights reduced to `rights`.
    Copy { rights: CapRights },
    /// As `Copy`, and badge an unbadged endpoint or notification capability. A zero badge
    /// on another type is a plain copy.
    Mint { rights: CapRights, badge: u64 },
}

/// The capability (and slot flags) a copy or mint of `src` produces, or why it cannot be
/// made.
///
/// Errors: `InvalidCapability` for Null and Zombie; `IllegalOperation` for a Reply (a saved
/// reply answers one thread once: there is never a second capability to it); `InvalidArgument` for a mint that would
/// rebadge a badged capability, give a zero badge to an endpoint or notification, or badge
/// any other type.
///
/// Flags: a copy gets [`SlotFlags::COPY`], except an untyped copy, which is revocable (see
/// below; [`crate::mdb::insert_child`] then marks its source full). The kernel must
/// separately refuse to copy an untyped that has children, as seL4's `deriveCap` does.
pub fn derive(src: &Cap, how: Derivation) -> Result<(Cap, SlotFlags), Error> {
    let (rights, badge) = match how {
        Derivation::Copy { rights } => (rights, None),
        Derivation::Mint { rights, badge } => (rights, Some(badge)),
    };
    let copy = match *src {
        Cap::Null | Cap::Zombie { .. } => return Err(Error::InvalidCapability),
        Cap::Reply { .. } => return Err(Error::IllegalOperation),
        Cap::Endpoint {
            obj,
            badge,
            rights: r,
        } => Cap::Endpoint {
            obj,
            badge,
            rights: r.intersect(rights),
        },
        Cap::Notification {
            obj,
            badge,
            rights: r,
        } => Cap::Notification {
            obj,
            badge,
            rights: r.intersect(rights),
        },
        Cap::Frame {
            base,
            size_bits,
            rights: r,
            device,
        } => Cap::Frame {
            base,
            size_bits,
            rights: r.intersect(rights),
            device,
        },
        other => other,
    };
    // As seL4's isCapRevocable: an untyped copy is revocable, so objects retyped through it
    // are its children and it knows when it has some (else its next retype would reset its
    // watermark over live objects).
    let copy_flags = if matches!(copy, Cap::Untyped { .. }) {
        SlotFlags::ORIGINAL
    } else {
        SlotFlags::COPY
    };
    let Some(new_badge) = badge else {
        return Ok((copy, copy_flags));
    };
    let badged = match copy {
        Cap::Endpoint {
            obj,
            badge: 0,
            rights,
        } if new_badge != 0 => Cap::Endpoint {
            obj,
            badge: new_badge,
            rights,
        },
        Cap::Notification {
            obj,
            badge: 0,
            rights,
        } if new_badge != 0 => Cap::Notification {
            obj,
            badge: new_badge,
            rights,
        },
        // seL4 never rebadges: a badge, once given, is what the receiver trusts.
        Cap::Endpoint { .. } | Cap::Notification { .. } => return Err(Error::InvalidArgument),
        _ if new_badge == 0 => return Ok((copy, copy_flags)),
        _ => return Err(Error::InvalidArgument),
    };
    // A badged mint can be revoked on its own (revocable), and is not a child of another
    // capability with the same badge (first_badged).
    Ok((
        badged,
        SlotFlags {
            revocable: true,
            first_badged: true,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: CapRights = CapRights(3);

    fn ep(obj: u64, badge: u64) -> Cap {
        Cap::Endpoint {
            obj,
            badge,
            rights: CapRights::ALL,
        }
    }

    fn ut(base: u64, size_bits: u8) -> Cap {
        Cap::Untyped {
            base,
            size_bits,
            free_offset: 0,
            device: false,
        }
    }

    fn frame(base: u64, size_bits: u8) -> Cap {
        Cap::Frame {
            base,
            size_bits,
            rights: CapRights::ALL,
            device: false,
        }
    }

    /// One capability of every kind, with fields at their extremes.
    fn samples() -> [Cap; 20] {
        const TOP: u64 = (1 << 48) - 16;
        [
            Cap::Null,
            Cap::Untyped {
                base: TOP,
                size_bits: 47,
                free_offset: u64::MAX,
                device: true,
            },
            Cap::Untyped {
                base: 0x4000_0000,
                size_bits: 4,
                free_offset: 16,
                device: false,
            },
            Cap::Endpoint {
                obj: TOP,
                badge: u64::MAX,
                rights: CapRights::GRANT,
            },
            Cap::Notification {
                obj: 0x10,
                badge: 1 << 63,
                rights: CapRights::NONE,
            },
            Cap::Tcb { obj: TOP },
            Cap::CNode {
                obj: 0x8000,
                radix: 16,
            },
            Cap::CNode { obj: 0, radix: 63 },
            Cap::VSpace { obj: 0x2000 },
            Cap::PageTable { obj: 0x4000 },
            Cap::Frame {
                base: 0x20_0000,
                size_bits: 21,
                rights: RW,
                device: true,
            },
            Cap::IrqControl,
            Cap::Console,
            Cap::PowerControl,
            Cap::IrqHandler { intid: u32::MAX },
            Cap::Zombie {
                obj: 0x800,
                kind: ZombieKind::Tcb,
            },
            Cap::Zombie {
                obj: 0x1000,
                kind: ZombieKind::CNode { radix: 12 },
            },
            Cap::IrqHandler { intid: 33 },
            Cap::Reply { tcb: TOP },
            Cap::Timer { obj: TOP },
        ]
    }

    #[test]
    fn encoding_round_trips() {
        for cap in samples() {
            assert_eq!(Cap::decode(cap.encode()), cap, "{cap:?}");
            assert_eq!(cap.encode()[0] >> 60, cap.cap_type() as u64);
        }
    }

    #[test]
    fn encoding_layout() {
        let cap = Cap::Frame {
            base: 0x1234_5000,
            size_bits: 12,
            rights: RW,
            device: true,
        };
        assert_eq!(cap.encode(), [0x80cb_0000_1234_5000, 0]);
        let cap = Cap::Untyped {
            base: 0x4000_0000,
            size_bits: 30,
            free_offset: 0x1000,
            device: false,
        };
        assert_eq!(cap.encode(), [0x11e0_0000_4000_0000, 0x1000]);
        assert_eq!(ep(0x40, 9).encode(), [0x3007_0000_0000_0040, 9]);
        assert_eq!(Cap::Null.encode(), [0, 0]);
        assert_eq!(Cap::decode([0, 0]), Cap::Null);
    }

    #[test]
    fn the_endpoint_decode_agrees_with_the_whole_decode() {
        // Every kind, and words no capability encodes to (stray bits, all ones).
        let odd = [[u64::MAX, 7], [3 << 60 | 0xc << 56 | 0x1234, 9], [0, 0]];
        for w in samples().iter().map(Cap::encode).chain(odd) {
            let whole = match Cap::decode(w) {
                Cap::Endpoint { obj, badge, rights } => Some((obj, badge, rights)),
                _ => None,
            };
            assert_eq!(Cap::decode_endpoint(w), whole, "{w:x?}");
        }
    }

    #[test]
    fn garbage_decodes_to_some_cap() {
        assert_eq!(
            Cap::decode([15 << 60 | 0x1234, 5]),
            Cap::Timer { obj: 0x1234 }
        );
        assert_eq!(
            Cap::decode([14 << 60 | 0x1234, 5]),
            Cap::Reply { tcb: 0x1234 }
        );
        assert_eq!(Cap::decode([12 << 60 | 0x1234, 5]), Cap::Console);
        assert_eq!(Cap::decode([13 << 60, 0]), Cap::PowerControl);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let words = [next(), next()];
            let cap = Cap::decode(words);
            // Decoding is canonical: re-encoding and decoding again changes nothing.
            assert_eq!(Cap::decode(cap.encode()), cap, "{words:x?}");
            // Nothing below may panic either.
            let _ = (cap.object(), cap.rights(), cap.badge(), cap.cap_type());
            let other = Cap::decode([next(), next()]);
            let _ = (cap.same_region_as(&other), cap.same_object_as(&other));
            let _ = derive(
                &cap,
                Derivation::Mint {
                    rights: CapRights(next()),
                    badge: next(),
                },
            );
        }
    }

    #[test]
    fn types_objects_rights_badges() {
        assert_eq!(Cap::Null.object(), None);
        assert_eq!(Cap::IrqControl.object(), None);
        assert_eq!(Cap::IrqHandler { intid: 40 }.object(), None);
        assert_eq!(ut(0x1000, 12).object(), Some((0x1000, 0x1000)));
        assert_eq!(ep(0x40, 0).object(), Some((0x40, 32)));
        assert_eq!(
            Cap::Notification {
                obj: 0x60,
                badge: 0,
                rights: CapRights::ALL
            }
            .object(),
            Some((0x60, 32))
        );
        assert_eq!(Cap::Tcb { obj: 0x800 }.object(), Some((0x800, 2048)));
        assert_eq!(
            Cap::CNode {
                obj: 0x1000,
                radix: 4
            }
            .object(),
            Some((0x1000, 1024))
        );
        assert_eq!(Cap::VSpace { obj: 0x2000 }.object(), Some((0x2000, 8192)));
        assert_eq!(
            Cap::PageTable { obj: 0x4000 }.object(),
            Some((0x4000, 16384))
        );
        assert_eq!(Cap::Timer { obj: 0x40 }.object(), Some((0x40, 64)));
        assert_eq!(frame(0x20_0000, 21).object(), Some((0x20_0000, 0x20_0000)));
        assert_eq!(
            Cap::Zombie {
                obj: 0x800,
                kind: ZombieKind::Tcb
            }
            .object(),
            Some((0x800, 2048))
        );
        assert_eq!(
            Cap::Zombie {
                obj: 0x1000,
                kind: ZombieKind::CNode { radix: 4 }
            }
            .object(),
            Some((0x1000, 1024))
        );
        // Sizes that do not fit in 64 bits (never built by the kernel) name nothing.
        assert_eq!(ut(0, 64).object(), None);
        assert_eq!(Cap::CNode { obj: 0, radix: 58 }.object(), None);
        assert_eq!(ut(0, 63).object(), Some((0, 1 << 63)));

        let types = samples().map(|c| c.cap_type() as u64);
        assert_eq!(
            types,
            [
                0, 1, 1, 3, 4, 2, 5, 5, 6, 7, 8, 9, 12, 13, 10, 11, 11, 10, 14, 15
            ]
        );

        assert_eq!(ep(0x40, 7).badge(), 7);
        assert_eq!(ep(0x40, 7).rights(), CapRights::ALL);
        assert_eq!(
            Cap::Frame {
                base: 0,
                size_bits: 12,
                rights: CapRights::READ,
                device: false
            }
            .rights(),
            CapRights::READ
        );
        assert_eq!(Cap::Tcb { obj: 0 }.rights(), CapRights::ALL);
        assert_eq!(Cap::Tcb { obj: 0 }.badge(), 0);
        assert_eq!(Cap::Null.rights(), CapRights::ALL);
        assert!(Cap::Null.is_null() && !Cap::IrqControl.is_null());
    }

    #[test]
    fn same_region() {
        let u = ut(0x10_0000, 20);
        // Untyped: whatever lies inside, untyped included, equal range included.
        assert!(u.same_region_as(&ep(0x10_0000, 0)));
        assert!(u.same_region_as(&ep(0x1f_ffe0, 5)));
        assert!(!u.same_region_as(&ep(0x20_0000, 0)));
        assert!(!u.same_region_as(&ep(0xf_ffe0, 0)));
        assert!(u.same_region_as(&u));
        assert!(u.same_region_as(&ut(0x18_0000, 19)));
        assert!(!u.same_region_as(&ut(0x18_0000, 20)), "runs past the end");
        assert!(!u.same_region_as(&ut(0, 21)), "contains, not contained");
        assert!(u.same_region_as(&frame(0x1f_f000, 12)));
        assert!(!u.same_region_as(&Cap::Null));
        assert!(!u.same_region_as(&Cap::IrqHandler { intid: 40 }));
        assert!(!u.same_region_as(&Cap::IrqControl));
        assert!(u.same_region_as(&Cap::Zombie {
            obj: 0x10_0800,
            kind: ZombieKind::Tcb
        }));
        // An untyped ending at the top of the address space: no overflow.
        let top = ut(1 << 63, 63);
        assert!(top.same_region_as(&ep(u64::MAX - 31, 0)));

        // Objects: same type and object, badge and rights irrelevant.
        assert!(ep(0x40, 1).same_region_as(&ep(0x40, 2)));
        assert!(!ep(0x40, 0).same_region_as(&ep(0x60, 0)));
        let ntfn = Cap::Notification {
            obj: 0x40,
            badge: 0,
            rights: CapRights::ALL,
        };
        assert!(!ep(0x40, 0).same_region_as(&ntfn));
        assert!(ntfn.same_region_as(&ntfn));
        assert!(Cap::Tcb { obj: 8 }.same_region_as(&Cap::Tcb { obj: 8 }));
        assert!(!Cap::Tcb { obj: 8 }.same_region_as(&Cap::VSpace { obj: 8 }));
        assert!(Cap::VSpace { obj: 8 }.same_region_as(&Cap::VSpace { obj: 8 }));
        assert!(Cap::PageTable { obj: 8 }.same_region_as(&Cap::PageTable { obj: 8 }));
        assert!(!Cap::PageTable { obj: 8 }.same_region_as(&Cap::PageTable { obj: 16 }));
        assert!(Cap::Timer { obj: 64 }.same_region_as(&Cap::Timer { obj: 64 }));
        assert!(!Cap::Timer { obj: 64 }.same_region_as(&Cap::Timer { obj: 128 }));
        assert!(!Cap::Timer { obj: 64 }.same_region_as(&Cap::PageTable { obj: 64 }));
        assert!(u.same_region_as(&Cap::Timer { obj: 0x10_0040 }));
        let cn = Cap::CNode { obj: 64, radix: 4 };
        assert!(cn.same_region_as(&cn));
        assert!(!cn.same_region_as(&Cap::CNode { obj: 64, radix: 5 }));
        // Frames: same base and size; rights and device irrelevant.
        let f = frame(0x1000, 12);
        assert!(f.same_region_as(&Cap::Frame {
            base: 0x1000,
            size_bits: 12,
            rights: CapRights::READ,
            device: false
        }));
        assert!(!f.same_region_as(&frame(0x1000, 13)));
        assert!(!f.same_region_as(&frame(0x2000, 12)));
        assert!(!f.same_region_as(&ut(0x1000, 12)));
        // IRQs.
        assert!(Cap::IrqControl.same_region_as(&Cap::IrqControl));
        assert!(Cap::IrqControl.same_region_as(&Cap::IrqHandler { intid: 40 }));
        let h = Cap::IrqHandler { intid: 40 };
        assert!(h.same_region_as(&h));
        assert!(!h.same_region_as(&Cap::IrqHandler { intid: 41 }));
        assert!(!h.same_region_as(&Cap::IrqControl));
        // Null, Zombie and Reply are related to nothing: a saved reply is never a child of
        // an untyped (revoking the untyped destroys the thread, which empties the reply's
        // slot) nor the same object as anything, so deleting it always finalises it.
        let reply = Cap::Reply { tcb: 0x10_0800 };
        for cap in samples() {
            assert!(!reply.same_region_as(&cap) && !cap.same_region_as(&reply));
            assert!(!reply.same_object_as(&cap) && !cap.same_object_as(&reply));
            assert!(!Cap::Null.same_region_as(&cap));
            assert!(
                !Cap::Zombie {
                    obj: 0x800,
                    kind: ZombieKind::Tcb
                }
                .same_region_as(&cap)
            );
        }
    }

    #[test]
    fn same_object() {
        let u = ut(0x10_0000, 20);
        assert!(!u.same_object_as(&u), "untyped names memory, not an object");
        assert!(!u.same_object_as(&ep(0x10_0000, 0)));
        assert!(!Cap::IrqControl.same_object_as(&Cap::IrqHandler { intid: 40 }));
        assert!(Cap::IrqControl.same_object_as(&Cap::IrqControl));
        let h = Cap::IrqHandler { intid: 40 };
        assert!(h.same_object_as(&h));
        assert!(ep(0x40, 1).same_object_as(&ep(0x40, 2)));
        assert!(!ep(0x40, 1).same_object_as(&ep(0x60, 1)));
        assert!(frame(0x1000, 12).same_object_as(&frame(0x1000, 12)));
        let z = Cap::Zombie {
            obj: 0x1000,
            kind: ZombieKind::CNode { radix: 4 },
        };
        assert!(z.same_object_as(&z));
        assert!(!z.same_object_as(&Cap::Zombie {
            obj: 0x1000,
            kind: ZombieKind::Tcb
        }));
        assert!(!z.same_object_as(&Cap::CNode {
            obj: 0x1000,
            radix: 4
        }));
        assert!(!Cap::Null.same_object_as(&Cap::Null));
    }

    #[test]
    fn mdb_parenthood() {
        let orig = SlotFlags::ORIGINAL;
        let copy = SlotFlags::COPY;
        let u = ut(0x10_0000, 20);
        // Only revocable capabilities have children.
        assert!(is_mdb_parent_of(&u, orig, &ep(0x10_0000, 0), orig));
        assert!(!is_mdb_parent_of(&u, copy, &ep(0x10_0000, 0), orig));
        assert!(!is_mdb_parent_of(&u, orig, &ep(0x20_0000, 0), orig));
        assert!(is_mdb_parent_of(&ep(0x40, 0), orig, &ep(0x40, 0), copy));
        assert!(!is_mdb_parent_of(&ep(0x40, 0), copy, &ep(0x40, 0), copy));
        // An unbadged endpoint is the parent of every badge.
        assert!(is_mdb_parent_of(&ep(0x40, 0), orig, &ep(0x40, 5), orig));
        // A badged one only of copies of its own badge.
        assert!(is_mdb_parent_of(&ep(0x40, 5), orig, &ep(0x40, 5), copy));
        assert!(!is_mdb_parent_of(&ep(0x40, 5), orig, &ep(0x40, 5), orig));
        assert!(!is_mdb_parent_of(&ep(0x40, 5), orig, &ep(0x40, 6), copy));
        assert!(!is_mdb_parent_of(&ep(0x40, 5), orig, &ep(0x40, 0), copy));
        let n = |badge| Cap::Notification {
            obj: 0x80,
            badge,
            rights: CapRights::ALL,
        };
        assert!(is_mdb_parent_of(&n(0), orig, &n(3), orig));
        assert!(is_mdb_parent_of(&n(3), orig, &n(3), copy));
        assert!(!is_mdb_parent_of(&n(3), orig, &n(3), orig));
        // first_badged matters only for badges.
        assert!(is_mdb_parent_of(&frame(0, 12), orig, &frame(0, 12), orig));
        assert!(is_mdb_parent_of(
            &Cap::IrqControl,
            orig,
            &Cap::IrqHandler { intid: 40 },
            orig
        ));
        assert!(!is_mdb_parent_of(&Cap::Null, orig, &Cap::Null, orig));
    }

    #[test]
    fn copies() {
        let copy = |src: Cap, rights| derive(&src, Derivation::Copy { rights });
        assert_eq!(
            copy(ep(0x40, 3), RW),
            Ok((
                Cap::Endpoint {
                    obj: 0x40,
                    badge: 3,
                    rights: RW
                },
                SlotFlags::COPY
            ))
        );
        // Rights only shrink.
        let ro = Cap::Frame {
            base: 0x1000,
            size_bits: 12,
            rights: CapRights::READ,
            device: true,
        };
        assert_eq!(copy(ro, CapRights::ALL), Ok((ro, SlotFlags::COPY)));
        assert_eq!(
            copy(ro, CapRights::WRITE).map(|(c, _)| c.rights()),
            Ok(CapRights::NONE)
        );
        let n = Cap::Notification {
            obj: 0x80,
            badge: 0,
            rights: CapRights::ALL,
        };
        assert_eq!(
            copy(n, CapRights::WRITE).map(|(c, _)| c.rights()),
            Ok(CapRights::WRITE)
        );
        // Types without rights copy unchanged.
        for cap in [
            Cap::Tcb { obj: 0x800 },
            Cap::CNode { obj: 0, radix: 4 },
            Cap::VSpace { obj: 0x2000 },
            Cap::PageTable { obj: 0x4000 },
            Cap::IrqControl,
            Cap::IrqHandler { intid: 40 },
        ] {
            assert_eq!(copy(cap, CapRights::NONE), Ok((cap, SlotFlags::COPY)));
        }
        // An untyped copy is revocable (seL4's isCapRevocable).
        let u = Cap::Untyped {
            base: 0x10_0000,
            size_bits: 20,
            free_offset: 0x1000,
            device: false,
        };
        assert_eq!(copy(u, CapRights::NONE), Ok((u, SlotFlags::ORIGINAL)));
        assert_eq!(
            copy(Cap::Null, CapRights::ALL),
            Err(Error::InvalidCapability)
        );
        let z = Cap::Zombie {
            obj: 0x800,
            kind: ZombieKind::Tcb,
        };
        assert_eq!(copy(z, CapRights::ALL), Err(Error::InvalidCapability));
        // A saved reply has exactly one capability.
        let reply = Cap::Reply { tcb: 0x800 };
        assert_eq!(copy(reply, CapRights::ALL), Err(Error::IllegalOperation));
        assert_eq!(
            derive(
                &reply,
                Derivation::Mint {
                    rights: CapRights::ALL,
                    badge: 0
                }
            ),
            Err(Error::IllegalOperation)
        );
    }

    #[test]
    fn mints() {
        let mint = |src: Cap, rights, badge| derive(&src, Derivation::Mint { rights, badge });
        let badged = SlotFlags {
            revocable: true,
            first_badged: true,
        };
        assert_eq!(
            mint(ep(0x40, 0), RW, 7),
            Ok((
                Cap::Endpoint {
                    obj: 0x40,
                    badge: 7,
                    rights: RW
                },
                badged
            ))
        );
        assert_eq!(
            mint(ep(0x40, 0), CapRights::ALL, u64::MAX),
            Ok((ep(0x40, u64::MAX), badged))
        );
        let n = |badge| Cap::Notification {
            obj: 0x80,
            badge,
            rights: CapRights::ALL,
        };
        assert_eq!(mint(n(0), CapRights::ALL, 1), Ok((n(1), badged)));
        // No rebadging, no zero badge.
        assert_eq!(mint(ep(0x40, 7), RW, 8), Err(Error::InvalidArgument));
        assert_eq!(mint(ep(0x40, 7), RW, 7), Err(Error::InvalidArgument));
        assert_eq!(mint(ep(0x40, 7), RW, 0), Err(Error::InvalidArgument));
        assert_eq!(mint(ep(0x40, 0), RW, 0), Err(Error::InvalidArgument));
        assert_eq!(mint(n(2), RW, 3), Err(Error::InvalidArgument));
        assert_eq!(mint(n(0), RW, 0), Err(Error::InvalidArgument));
        // Other types: a zero badge is a copy, any other an error.
        let f = frame(0x1000, 12);
        assert_eq!(
            mint(f, CapRights::READ, 0),
            derive(
                &f,
                Derivation::Copy {
                    rights: CapRights::READ
                }
            )
        );
        assert_eq!(mint(f, CapRights::READ, 1), Err(Error::InvalidArgument));
        let u = ut(0x10_0000, 20);
        assert_eq!(mint(u, CapRights::ALL, 0), Ok((u, SlotFlags::ORIGINAL)));
        assert_eq!(mint(u, CapRights::ALL, 4), Err(Error::InvalidArgument));
        assert_eq!(
            mint(Cap::IrqControl, CapRights::ALL, 0),
            Ok((Cap::IrqControl, SlotFlags::COPY))
        );
        assert_eq!(
            mint(Cap::Tcb { obj: 0 }, CapRights::ALL, 9),
            Err(Error::InvalidArgument)
        );
        assert_eq!(mint(Cap::Null, RW, 1), Err(Error::InvalidCapability));
        assert_eq!(mint(Cap::Null, RW, 0), Err(Error::InvalidCapability));
    }
}
