//! The system-call fuzzer (`test=fuzz`): threads driven by a fixed-seed PRNG issue at least
//! 100,000 random system calls on random capabilities and arguments, garbage included, in a
//! CSpace of their own that holds only objects they may wreck. Then everything is torn down,
//! all memory must come back, and the kernel must still pass its whole test suite.
//!
//! ```text
//!   init (255)      supervisor: Recv on `sup`; restarts a fuzzer that is stuck or faulted
//!   watchdog (100)  init's CSpace; yields in a loop and tells init (Send on `sup`) when a
//!                   fuzzer made no progress over STUCK_ROUNDS rounds of the run queue
//!   fuzzer 0, 1     (100) CSpace = the fuzz CNode (FUZZ_SLOTS slots, layout in `slot`),
//!                   VSpace = init's (code shared, which they cannot change), own stack
//!                   and IPC buffer; fault endpoint = `sup` with a badge per fuzzer
//! ```
//!
//! The fuzzers hold no capability to init's CNode or VSpace, to their own TCBs or to `sup`,
//! so nothing they do can stop them from running or harm init. A blocking call (`Send`,
//! `Call`, `Recv`, `Wait`, `ReplyRecv`) may block a fuzzer for good: the watchdog notices
//! (it shares the fuzzers' priority, so it runs once per round of the run queue, and nothing
//! the fuzzers make can have a higher priority) and init restarts the fuzzer (`TcbSuspend`,
//! then `TcbWriteRegisters` at the loop's entry and `TcbResume`). The PRNG state and the
//! counters live in shared memory, so a restarted fuzzer goes on with the next call. An
//! unknown system-call number is a fault (`UnknownSyscall`); init replies to resume it.
//!
//! Bootargs: `fuzz.seed=` (decimal or 0x hex), `fuzz.n=` (calls in all, at least 100,000 for
//! the check to pass), `fuzz.threads=` (1 or 2; 1 makes the call sequence deterministic),
//! `fuzz.trace=` (print every call from that call number on, for reproducing a failure),
//! `fuzz.avoid=zombie` (init empties the fuzz CNode before each teardown, so a CNode holding
//! the last capability to itself is never destroyed: a kernel bug found by this fuzzer, which
//! otherwise leaves the timer's IrqHandler claimed; for hunting other bugs meanwhile).
//!
//! The calls run in epochs of `EPOCH_CALLS`, each with a fresh rig that is torn down at its
//! end (the fuzzers soon wreck their CSpace); after each teardown the timer's interrupt must
//! be free again.

use crate::alloc::{Alloc, CNODE, PAGE, table_base};
use crate::thread::{Config, Thread};
use abi::Invocation;
use abi::bootinfo::{BootInfo, INIT_IPC_BUFFER_VADDR, bootarg};
use abi::message::{FaultLabel, MAX_MRS, MsgInfo, NULL_CPTR, REGISTER_MRS};
use abi::object::{CapRights, MapFlags, ObjectType, init_slots};
use abi::{Error, Syscall};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use libmk::{
    CNode, Cap, Endpoint, Frame, IrqControl, IrqHandler, Message, Notification, PageTable, Tcb,
    Timer, Untyped, VSpace,
};
use rt::println;

/// The seed when the bootargs give none.
const DEFAULT_SEED: u64 = 0x5eed_f022_c0ff_ee01;
/// System calls to issue when the bootargs do not say.
const DEFAULT_CALLS: u64 = 100_000;
/// Calls per epoch (a fresh rig each).
const EPOCH_CALLS: u64 = 2_000;
/// What the `fuzz-syscalls` check asks for at least.
const MIN_CALLS: u64 = 100_000;
/// Priority of the fuzzers and the watchdog (init has 255).
const FUZZ_PRIORITY: u64 = 100;
/// Fuzzer threads at most.
const MAX_FUZZERS: usize = 2;
/// log2 of the fuzz CNode's slot count.
const FUZZ_RADIX: u64 = 6;
const FUZZ_SLOTS: u64 = 1 << FUZZ_RADIX;
/// Where the fuzz VSpace has tables (and some frames mapped).
const FZ_VA: u64 = 0x4000_0000;
/// Rounds of the run queue without a call before the watchdog reports a fuzzer stuck.
const STUCK_ROUNDS: u32 = 3;
/// Consecutive faults other than `UnknownSyscall` without any call in between that make
/// init give up (a fuzzer that cannot run at all).
const MAX_DEAD_FAULTS: u64 = 100;
/// Badges of the capabilities to `sup`.
const WATCHDOG_BADGE: u64 = 0xd09;
const FAULT_BADGE: u64 = 0xfa00;
/// What the watchdog sends in MR0 when every fuzzer is done.
const ALL_DONE: u64 = u64::MAX;
/// The INTID of the EL1 physical timer, which EL0 may program.
const TIMER_INTID: u64 = 30;

/// The fuzz CNode's layout at the start (the fuzzers move things around).
mod slot {
    pub const UNTYPED_BIG: u64 = 1;
    pub const UNTYPED_SMALL: u64 = 2;
    /// A copy of the fuzz CNode's own capability.
    pub const OWN_CNODE: u64 = 3;
    pub const CNODE2: u64 = 4;
    pub const VSPACE: u64 = 5;
    /// Level-1, -2, -3 tables installed in the fuzz VSpace, then two free ones.
    pub const PT: u64 = 6;
    pub const PT_FREE: u64 = 9;
    /// 4 KiB mapped at FZ_VA, 4 KiB mapped after it (victim's IPC buffer), 16 KiB mapped
    /// 16 pages on, 2 MiB unmapped, a read-only copy of the first.
    pub const FRAME: u64 = 11;
    pub const FRAME_RO: u64 = 15;
    pub const EP0: u64 = 16;
    pub const EP0_BADGED: u64 = 17;
    pub const EP1: u64 = 18;
    pub const EP1_WRITE: u64 = 19;
    pub const NTFN0: u64 = 20;
    pub const NTFN0_BADGED: u64 = 21;
    pub const NTFN1: u64 = 22;
    /// Configured (fuzz VSpace, CNode2, fault endpoint EP0_BADGED), not started.
    pub const VICTIM: u64 = 23;
    /// Never configured.
    pub const VICTIM2: u64 = 24;
    pub const IRQ: u64 = 25;
    pub const EP0_READ: u64 = 26;
    /// A timer, disarmed at first.
    pub const TIMER: u64 = 27;
    /// Slots from here on start empty.
    pub const FIRST_EMPTY: u64 = 28;
}

// --- State shared between init, the watchdog and the fuzzers ------------------------------

/// System calls issued (counted before each `svc`), and how many to issue.
static ISSUED: AtomicU64 = AtomicU64::new(0);
static TARGET: AtomicU64 = AtomicU64::new(0);
static NFUZZ: AtomicU64 = AtomicU64::new(0);
/// Calls that returned an error code, by code (index 0: success); known numbers only.
static RESULTS: [AtomicU64; 17] = [const { AtomicU64::new(0) }; 17];
/// Calls by system-call number (0..=31; 32: anything larger).
static BY_NUMBER: [AtomicU64; 33] = [const { AtomicU64::new(0) }; 33];
static OK_BY_NUMBER: [AtomicU64; 33] = [const { AtomicU64::new(0) }; 33];
/// `Invoke`s by label (the last counter: anything larger), and how many of them succeeded.
static BY_LABEL: [AtomicU64; LABELS] = [const { AtomicU64::new(0) }; LABELS];
static OK_BY_LABEL: [AtomicU64; LABELS] = [const { AtomicU64::new(0) }; LABELS];
/// Counters by label: every invocation label (the largest is 71) and one for the rest.
const LABELS: usize = 80;
const _: () = assert!((Invocation::TimerDisarm as usize) < LABELS - 1);
/// Per fuzzer: calls issued (the watchdog's progress count), PRNG state, done flag.
static PROGRESS: [AtomicU64; MAX_FUZZERS] = [const { AtomicU64::new(0) }; MAX_FUZZERS];
static STATE: [AtomicU64; MAX_FUZZERS] = [const { AtomicU64::new(0) }; MAX_FUZZERS];
static DONE: [AtomicU64; MAX_FUZZERS] = [const { AtomicU64::new(0) }; MAX_FUZZERS];
/// Follow-up `Send`s on a reply just saved (see `follow_up`), and how many succeeded.
static REPLY_SENDS: AtomicU64 = AtomicU64::new(0);
static REPLY_SENDS_OK: AtomicU64 = AtomicU64::new(0);
/// Whether the fuzzers may program the EL1 physical timer (cleared if that faults).
static TIMER_OK: AtomicU64 = AtomicU64::new(0);
/// First call number to print (u64::MAX: none).
static TRACE_FROM: AtomicU64 = AtomicU64::new(u64::MAX);

// --- The PRNG and the argument generators ------------------------------------------------

/// xorshift64* (Vigna): small, fast, and good enough to pick arguments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0; the bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// What an argument means, so the value is often one the kernel accepts.
#[derive(Clone, Copy)]
enum Arg {
    /// A slot of the fuzz CNode that starts full, one that starts empty.
    Src,
    Dest,
    /// A slot that holds this kind of capability at first.
    CNode,
    VsCap,
    PtCap,
    FrameCap,
    EpCap,
    NtfnCap,
    Type,
    Bits,
    Count,
    Rights,
    Badge,
    Priority,
    Addr,
    Size,
    Flags,
    Level,
    Page,
    Regs,
    Intid,
    Deadline,
    Any,
}

use Arg::*;

/// Each operation, its arguments and the slots that hold its kind of capability at first.
const SPECS: &[(Invocation, &[Arg], &[u64])] = &[
    (
        Invocation::UntypedRetype,
        &[Type, Bits, CNode, Dest, Count],
        &[slot::UNTYPED_BIG, slot::UNTYPED_SMALL],
    ),
    (
        Invocation::CNodeCopy,
        &[Dest, CNode, Src, Rights],
        &[slot::OWN_CNODE, slot::CNODE2],
    ),
    (
        Invocation::CNodeMint,
        &[Dest, CNode, Src, Rights, Badge],
        &[slot::OWN_CNODE, slot::CNODE2],
    ),
    (
        Invocation::CNodeMove,
        &[Dest, CNode, Src],
        &[slot::OWN_CNODE, slot::CNODE2],
    ),
    (
        Invocation::CNodeDelete,
        &[Src],
        &[slot::OWN_CNODE, slot::CNODE2],
    ),
    (
        Invocation::CNodeRevoke,
        &[Src],
        &[slot::OWN_CNODE, slot::CNODE2],
    ),
    (
        Invocation::TcbConfigure,
        &[CNode, VsCap, FrameCap, Addr, EpCap, Priority],
        &[slot::VICTIM, slot::VICTIM2],
    ),
    (
        Invocation::TcbSetPriority,
        &[Priority],
        &[slot::VICTIM, slot::VICTIM2],
    ),
    (
        Invocation::TcbReadRegisters,
        &[Regs],
        &[slot::VICTIM, slot::VICTIM2],
    ),
    (
        Invocation::TcbWriteRegisters,
        &[Addr, Addr, Any, Any, Any, Any],
        &[slot::VICTIM, slot::VICTIM2],
    ),
    (Invocation::TcbResume, &[], &[slot::VICTIM, slot::VICTIM2]),
    (Invocation::TcbSuspend, &[], &[slot::VICTIM, slot::VICTIM2]),
    (
        Invocation::TcbStart,
        &[Addr, Addr, Any],
        &[slot::VICTIM, slot::VICTIM2],
    ),
    (
        Invocation::TcbBindNotification,
        &[NtfnCap],
        &[slot::VICTIM, slot::VICTIM2],
    ),
    (
        Invocation::TcbUnbindNotification,
        &[],
        &[slot::VICTIM, slot::VICTIM2],
    ),
    (
        Invocation::VSpaceMapTable,
        &[PtCap, Addr, Level],
        &[slot::VSPACE],
    ),
    (Invocation::VSpaceUnmap, &[Addr, Size], &[slot::VSPACE]),
    (
        Invocation::VSpaceProtect,
        &[Addr, Size, Flags],
        &[slot::VSPACE],
    ),
    (Invocation::VSpaceQuery, &[Addr], &[slot::VSPACE]),
    (
        Invocation::PageTableUnmap,
        &[],
        &[slot::PT, slot::PT + 1, slot::PT + 2, slot::PT_FREE],
    ),
    (
        Invocation::FrameMap,
        &[VsCap, Addr, Flags, Page, Count],
        &[
            slot::FRAME,
            slot::FRAME + 1,
            slot::FRAME + 2,
            slot::FRAME + 3,
            slot::FRAME_RO,
        ],
    ),
    (
        Invocation::FrameUnmap,
        &[],
        &[slot::FRAME, slot::FRAME + 2, slot::FRAME_RO],
    ),
    (
        Invocation::FramePhysAddr,
        &[],
        &[slot::FRAME, slot::FRAME + 3],
    ),
    (
        Invocation::IrqControlGet,
        &[Intid, CNode, Dest],
        &[slot::IRQ],
    ),
    (
        Invocation::IrqHandlerSetNotification,
        &[NtfnCap],
        &[slot::IRQ],
    ),
    (Invocation::IrqHandlerAck, &[], &[slot::IRQ]),
    (Invocation::IrqHandlerClear, &[], &[slot::IRQ]),
    (
        Invocation::TimerArm,
        &[NtfnCap, Badge, Deadline],
        &[slot::TIMER],
    ),
    (Invocation::TimerDisarm, &[], &[slot::TIMER]),
];

/// How often each operation is picked, relative to the others: building state more often
/// than destroying it, so that operations needing a built state get to succeed.
fn weight(label: Invocation) -> u64 {
    match label {
        Invocation::UntypedRetype
        | Invocation::CNodeCopy
        | Invocation::CNodeMint
        | Invocation::CNodeMove
        | Invocation::TcbConfigure
        | Invocation::VSpaceMapTable
        | Invocation::VSpaceQuery
        | Invocation::FrameMap => 4,
        Invocation::CNodeDelete
        | Invocation::CNodeRevoke
        | Invocation::PageTableUnmap
        | Invocation::FrameUnmap
        | Invocation::VSpaceUnmap
        | Invocation::IrqHandlerClear => 1,
        _ => 2,
    }
}

fn pick_spec(rng: &mut Rng) -> (Invocation, &'static [Arg], &'static [u64]) {
    let total: u64 = SPECS.iter().map(|s| weight(s.0)).sum();
    let mut at = rng.below(total);
    for &spec in SPECS {
        let w = weight(spec.0);
        if at < w {
            return spec;
        }
        at -= w;
    }
    SPECS[0]
}

/// Slots holding endpoints and notifications at first.
const IPC_SLOTS: &[u64] = &[
    slot::EP0,
    slot::EP0_BADGED,
    slot::EP1,
    slot::EP1_WRITE,
    slot::NTFN0,
    slot::NTFN0_BADGED,
    slot::NTFN1,
    slot::EP0_READ,
];

/// The system-call numbers the kernel knows, but for `DebugPowerOff`.
const KNOWN: &[u64] = &[
    1, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 30,
];

/// A value chosen for being on an edge somewhere.
fn interesting(rng: &mut Rng) -> u64 {
    match rng.below(14) {
        0 => 0,
        1 => 1,
        2 => rng.below(FUZZ_SLOTS + 8),
        3 => rng.next() & 0x0000_ffff_ffff_f000,
        4 => FZ_VA + rng.below(32) * PAGE,
        5 => rng.below(10),
        6 => 12 + rng.below(10),
        7 => u64::MAX,
        8 => rng.next(),
        9 => 1 << rng.below(64),
        10 => rng.below(300),
        11 => u64::MAX - rng.below(8),
        12 => (1 << 48) + rng.below(4) * PAGE,
        _ => rng.pick(&[
            i64::MIN as u64,
            u32::MAX as u64,
            1 << 32,
            0xffff_0000_0000_0000,
        ]),
    }
}

fn slot_arg(rng: &mut Rng) -> u64 {
    match rng.below(20) {
        0 => FUZZ_SLOTS + rng.below(8),
        1 => interesting(rng),
        2..=7 => slot::FIRST_EMPTY + rng.below(FUZZ_SLOTS - slot::FIRST_EMPTY),
        _ => rng.below(FUZZ_SLOTS),
    }
}

/// A slot of `kind` three times in four, else any slot.
fn typed_slot(rng: &mut Rng, kind: &[u64]) -> u64 {
    if rng.chance(3, 4) {
        rng.pick(kind)
    } else {
        slot_arg(rng)
    }
}

/// An argument of `kind`; one in `noise` is an interesting value of any kind instead.
fn arg(rng: &mut Rng, kind: Arg, noise: u64) -> u64 {
    if rng.chance(1, noise) {
        return interesting(rng);
    }
    match kind {
        Src => match rng.below(3) {
            0 => slot_arg(rng),
            _ => rng.below(slot::FIRST_EMPTY),
        },
        Dest => match rng.below(4) {
            0 => slot_arg(rng),
            _ => slot::FIRST_EMPTY + rng.below(FUZZ_SLOTS - slot::FIRST_EMPTY),
        },
        CNode => typed_slot(rng, &[slot::OWN_CNODE, slot::OWN_CNODE, slot::CNODE2]),
        VsCap => typed_slot(rng, &[slot::VSPACE]),
        PtCap => typed_slot(
            rng,
            &[
                slot::PT,
                slot::PT + 1,
                slot::PT + 2,
                slot::PT_FREE,
                slot::PT_FREE + 1,
            ],
        ),
        FrameCap => typed_slot(
            rng,
            &[
                slot::FRAME,
                slot::FRAME + 1,
                slot::FRAME + 2,
                slot::FRAME + 3,
                slot::FRAME_RO,
            ],
        ),
        EpCap => typed_slot(
            rng,
            &[
                slot::EP0,
                slot::EP0_BADGED,
                slot::EP1,
                slot::EP1_WRITE,
                slot::EP0_READ,
            ],
        ),
        NtfnCap => typed_slot(rng, &[slot::NTFN0, slot::NTFN0_BADGED, slot::NTFN1]),
        Type => rng.below(11),
        Bits => match rng.below(4) {
            0 => rng.below(17),
            1 => 12 + rng.below(10),
            2 => 4 + rng.below(20),
            _ => rng.below(64),
        },
        Count => match rng.below(6) {
            0 => 0,
            1 => rng.below(70),
            2 => 1 + rng.below(3),
            _ => 1,
        },
        Rights => rng.below(8),
        Badge => {
            let random = rng.next();
            rng.pick(&[0, 1, 0x33, 1 << 63, u64::MAX, random])
        }
        Priority => match rng.below(4) {
            0 => FUZZ_PRIORITY,
            1 => rng.below(FUZZ_PRIORITY + 1),
            2 => FUZZ_PRIORITY + 1 + rng.below(160),
            _ => rng.below(300),
        },
        Addr => match rng.below(8) {
            0..=2 => FZ_VA + rng.below(24) * PAGE,
            3 => FZ_VA + rng.below(1024) * PAGE,
            4 => (rng.next() & 0x0000_ffff_ffff_f000) >> rng.below(40),
            5 => FZ_VA + rng.below(1 << 21),
            _ => table_base(FZ_VA, 1 + rng.below(3) as u8) + (rng.below(4) << 21),
        },
        Size => match rng.below(5) {
            0 => 0,
            1 => rng.below(1 << 22),
            2 => (1 << 21) * (1 + rng.below(4)),
            _ => PAGE * (1 + rng.below(8)),
        },
        Flags => rng.below(17),
        Level => rng.below(5),
        Page => match rng.below(4) {
            0 => rng.below(600),
            1 => rng.below(5),
            _ => 0,
        },
        Regs => rng.below(40),
        Intid => match rng.below(4) {
            0 => TIMER_INTID,
            1 => rng.below(1100),
            2 => 16 + rng.below(1004),
            _ => rng.pick(&[26, 27, 29, 33, 1019, 1020]),
        },
        // Past, near (a few ticks: fires while the fuzzers run), far, never.
        Deadline => match rng.below(5) {
            0 => 0,
            1 => libmk::debug_ticks().0 + rng.below(4),
            2 => libmk::debug_ticks().0 + rng.below(200),
            3 => u64::MAX - rng.below(2),
            _ => interesting(rng),
        },
        Any => interesting(rng),
    }
}

/// A message-info word: mostly well formed, sometimes garbage.
fn msg_info(rng: &mut Rng, label: u64, args: usize) -> u64 {
    let length = match rng.below(10) {
        0..=5 => args as u64,
        6 => rng.below(REGISTER_MRS as u64 + 1),
        7 => rng.below(MAX_MRS as u64 + 7),
        8 => args as u64 + 1,
        _ => args.saturating_sub(1) as u64,
    };
    let caps = match rng.below(10) {
        0 => 1,
        1 => 2,
        _ => 0,
    };
    let label = if rng.chance(1, 10) {
        interesting(rng)
    } else {
        label
    };
    MsgInfo {
        label,
        length: length as usize,
        caps,
    }
    .encode()
        | if rng.chance(1, 20) { rng.next() } else { 0 }
}

/// One system call's registers.
#[derive(Clone, Copy)]
struct Call {
    number: u64,
    x0: u64,
    x1: u64,
    mrs: [u64; REGISTER_MRS],
    /// The label `x1` carries (u64::MAX if `x1` is not a valid message info).
    label: u64,
}

fn syscall_number(rng: &mut Rng) -> u64 {
    loop {
        let n = match rng.below(100) {
            0..=44 => Syscall::Invoke as u64,
            45..=89 => rng.pick(KNOWN),
            90..=95 => rng.below(32),
            _ => match rng.below(6) {
                0 => u64::MAX,
                1 => (1 << 32) | rng.pick(KNOWN),
                2 => (1 << 63) | rng.pick(KNOWN),
                3 => 0x100 | rng.pick(KNOWN),
                _ => rng.next(),
            },
        };
        // Never power the machine off, nor anything a kernel that truncated the number
        // would take for it.
        if n & 0xff != Syscall::DebugPowerOff as u64 {
            return n;
        }
    }
}

fn generate(rng: &mut Rng) -> Call {
    let number = syscall_number(rng);
    let mut c = Call {
        number,
        x0: 0,
        x1: 0,
        mrs: [0; REGISTER_MRS],
        label: 0,
    };
    match Syscall::try_from(number) {
        Ok(Syscall::Invoke) if rng.chance(7, 8) => {
            let (label, args, targets) = pick_spec(rng);
            c.label = label as u64;
            c.x0 = typed_slot(rng, targets);
            // Half the time well formed (so the operation is performed often), else noisy.
            let precise = rng.chance(1, 2);
            c.x1 = if precise {
                MsgInfo::new(c.label, args.len()).encode()
            } else {
                msg_info(rng, c.label, args.len())
            };
            let noise = if precise { 40 } else { 8 };
            for (i, &kind) in args.iter().enumerate() {
                c.mrs[i] = arg(rng, kind, noise);
            }
            for mr in c.mrs.iter_mut().skip(args.len()) {
                if rng.chance(1, 4) {
                    *mr = interesting(rng);
                }
            }
        }
        Ok(Syscall::DebugPutStr) => {
            // The console capability or garbage; garbage lengths, but never more than a
            // couple of harmless dots printed.
            c.x0 = if rng.chance(1, 2) {
                init_slots::CONSOLE
            } else {
                interesting(rng)
            };
            c.x1 = match rng.below(3) {
                0 => rng.below(3),
                _ => interesting(rng),
            };
            if c.x1 <= abi::syscall::PUTSTR_MAX as u64 {
                c.x1 = c.x1.min(1);
            }
            c.mrs = [u64::from_le_bytes(*b"........"); REGISTER_MRS];
        }
        // `SaveCaller` succeeds when the fuzzer received a `Call` (from the other fuzzer) or
        // a fault (the victim's, if a fuzzer resumed it) and has not replied; the saved
        // reply then sits in a slot that `Send`, `CNodeMove`, `CNodeDelete`, restarts and
        // the teardown all reach.
        Ok(Syscall::SaveCaller) => {
            c.x0 = arg(rng, Dest, 8);
            c.x1 = interesting(rng);
        }
        Ok(Syscall::Send | Syscall::NBSend | Syscall::Call)
        | Ok(Syscall::Recv | Syscall::NBRecv | Syscall::Reply | Syscall::ReplyRecv)
        | Ok(Syscall::Signal | Syscall::Wait | Syscall::Poll) => {
            c.x0 = if rng.chance(2, 3) {
                rng.pick(IPC_SLOTS)
            } else {
                slot_arg(rng)
            };
            // Labels 0 and 1 are the fault replies (resume, map); map items need these.
            let random = rng.below(1 << 16);
            let label = rng.pick(&[0, 1, 1, 2, 7, random]);
            let length = rng.below(REGISTER_MRS as u64 + 1) as usize;
            c.x1 = msg_info(rng, label, length);
            let kinds = [FrameCap, Page, Count, Addr, Flags, Any];
            for (mr, &kind) in c.mrs.iter_mut().zip(&kinds) {
                *mr = arg(rng, kind, 8);
            }
        }
        _ => {
            c.x0 = if rng.chance(3, 4) {
                slot_arg(rng)
            } else {
                interesting(rng)
            };
            c.x1 = if rng.chance(1, 2) {
                let label = rng.pick(SPECS).0 as u64;
                let length = rng.below(7) as usize;
                msg_info(rng, label, length)
            } else {
                interesting(rng)
            };
            for mr in &mut c.mrs {
                *mr = interesting(rng);
            }
        }
    }
    // Counted by the label actually sent (noise may have replaced the intended one).
    c.label = MsgInfo::decode(c.x1).map_or(u64::MAX, |i| i.label);
    c
}

// --- The threads ------------------------------------------------------------------------

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, SeqCst);
}

/// Programs the EL1 physical timer (INTID 30) to fire after `ticks` counter ticks, or stops
/// it when `ticks` is `None`.
fn timer(ticks: Option<u64>) {
    match ticks {
        // SAFETY: CNTP_TVAL_EL0/CNTP_CTL_EL0 program the EL1 physical timer, which the
        // kernel leaves to EL0 (docs/kernel.md, Interrupts); no memory is touched. If the
        // kernel traps the access instead, the fuzzer faults and init stops using this.
        Some(t) => unsafe {
            asm!(
                "msr cntp_tval_el0, {t}",
                "msr cntp_ctl_el0, {c}",
                "isb",
                t = in(reg) t,
                c = in(reg) 1u64,
                options(nomem, nostack),
            )
        },
        // SAFETY: as above; this disables the timer.
        None => unsafe { asm!("msr cntp_ctl_el0, xzr", "isb", options(nomem, nostack)) },
    }
}

/// A fuzzer's loop: runs until `TARGET` calls are issued in all, then yields for good.
fn fuzzer(index: u64) {
    let i = index as usize;
    let mut rng = Rng(STATE[i].load(SeqCst));
    let Some(buf) = libmk::ipc_buffer() else {
        return;
    };
    let mut next: Option<Call> = None;
    loop {
        let n = ISSUED.fetch_add(1, SeqCst);
        if n >= TARGET.load(SeqCst) {
            ISSUED.fetch_sub(1, SeqCst);
            DONE[i].store(1, SeqCst);
            loop {
                libmk::yield_now();
            }
        }
        let answering = next.is_some_and(|c| c.number != Syscall::SaveCaller as u64);
        let call = next.take().unwrap_or_else(|| generate(&mut rng));
        if rng.chance(1, 16) {
            for mr in &mut buf.mrs[REGISTER_MRS..] {
                *mr = interesting(&mut rng);
            }
        }
        buf.send_cap = slot_arg(&mut rng);
        buf.receive_slot = if rng.chance(1, 4) {
            NULL_CPTR
        } else {
            slot_arg(&mut rng)
        };
        if TIMER_OK.load(SeqCst) != 0 && rng.chance(1, 300) {
            timer(rng.chance(3, 4).then(|| rng.below(200_000)));
        }
        STATE[i].store(rng.0, SeqCst);
        bump(&PROGRESS[i]);
        bump(&BY_NUMBER[call.number.min(32) as usize]);
        let known = Syscall::try_from(call.number).is_ok();
        if call.number == Syscall::Invoke as u64 {
            bump(&BY_LABEL[call.label.min(LABELS as u64 - 1) as usize]);
        }
        if n >= TRACE_FROM.load(SeqCst) {
            println!(
                "fuzz: #{n} t{i} sys {:#x} x0 {:#x} x1 {:#x} mrs {:x?}",
                call.number, call.x0, call.x1, call.mrs
            );
        }
        let r = libmk::raw_syscall(call.number, call.x0, call.x1, call.mrs);
        if known {
            bump(&RESULTS[(r.error as usize).min(RESULTS.len() - 1)]);
            if r.error == 0 {
                bump(&OK_BY_NUMBER[call.number.min(32) as usize]);
            }
            if call.number == Syscall::Invoke as u64 && r.error == 0 {
                bump(&OK_BY_LABEL[call.label.min(LABELS as u64 - 1) as usize]);
            }
        }
        if n >= TRACE_FROM.load(SeqCst) {
            println!("fuzz: #{n} t{i} -> x0 {:#x} x1 {:#x}", r.error, r.x1);
        }
        if answering {
            bump(&REPLY_SENDS);
            if r.error == 0 {
                bump(&REPLY_SENDS_OK);
            }
        }
        next = follow_up(&mut rng, &call, r.error);
        STATE[i].store(rng.0, SeqCst);
    }
}

/// A call that follows up on one that succeeded, half the time, to reach the saved-reply
/// paths far more often than independent random calls would: after a receive (which may
/// have left a caller or faulted thread to answer), `SaveCaller` into a free slot;
/// after a save, `Send` or `NBSend` on the saved reply with a message, a resume or a map
/// item (or, one time in four, nothing: the reply stays for whatever comes next, a move, a
/// delete, a restart of the waiting fuzzer, the teardown).
fn follow_up(rng: &mut Rng, prev: &Call, error: u64) -> Option<Call> {
    if error != 0 || !rng.chance(1, 2) {
        return None;
    }
    match Syscall::try_from(prev.number) {
        Ok(Syscall::Recv | Syscall::NBRecv | Syscall::ReplyRecv) => Some(Call {
            number: Syscall::SaveCaller as u64,
            x0: arg(rng, Dest, 40),
            x1: 0,
            mrs: [0; REGISTER_MRS],
            label: 0,
        }),
        Ok(Syscall::SaveCaller) if rng.chance(3, 4) => {
            let label = rng.pick(&[0, 1, 1, 0x71]);
            let length = rng.below(REGISTER_MRS as u64 + 1) as usize;
            let mut mrs = [0; REGISTER_MRS];
            let kinds = [FrameCap, Page, Count, Addr, Flags, Any];
            for (mr, &kind) in mrs.iter_mut().zip(&kinds) {
                *mr = arg(rng, kind, 8);
            }
            let number = rng.pick(&[Syscall::Send, Syscall::NBSend]) as u64;
            Some(Call {
                number,
                x0: prev.x0,
                x1: msg_info(rng, label, length),
                mrs,
                label,
            })
        }
        _ => None,
    }
}

/// The watchdog: once per round of the run queue at its priority, checks each fuzzer's
/// progress; reports to init (Send on `sup`, MR0 = the fuzzer) one that made none for
/// `STUCK_ROUNDS` rounds, and `ALL_DONE` when all are done.
fn watchdog(sup: u64) {
    let sup = Cap::<Endpoint>::from_cptr(sup);
    let n = (NFUZZ.load(SeqCst) as usize).min(MAX_FUZZERS);
    let mut last = [u64::MAX; MAX_FUZZERS];
    let mut still = [0u32; MAX_FUZZERS];
    loop {
        libmk::yield_now();
        let mut all_done = true;
        for i in 0..n {
            if DONE[i].load(SeqCst) != 0 {
                continue;
            }
            all_done = false;
            let p = PROGRESS[i].load(SeqCst);
            if p != last[i] {
                last[i] = p;
                still[i] = 0;
                continue;
            }
            still[i] += 1;
            if still[i] >= STUCK_ROUNDS {
                still[i] = 0;
                let _ = sup.send(&Message::new(0, &[i as u64]));
            }
        }
        if all_done {
            let _ = sup.send(&Message::new(0, &[ALL_DONE]));
        }
    }
}

// --- init's side: setup, supervision, teardown, checks ----------------------------------

/// What init keeps of the fuzzing rig.
struct Rig {
    sup: Cap<Endpoint>,
    /// The fuzz CNode (init's capability to it).
    cnode: Cap<CNode>,
    fuzzers: [Option<Thread>; MAX_FUZZERS],
    watchdog: Thread,
    /// The watchdog's badged capability to `sup` (in init's CNode).
    sup_watchdog: u64,
    victim: Cap<Tcb>,
}

/// Moves the capability at init's `from` into `slot` of the fuzz CNode (the scope forgets
/// the now empty slot; revoking the scratch untyped still reaches the capability).
fn give(a: &mut Alloc, cn: Cap<CNode>, from: u64, slot: u64) -> Result<(), Error> {
    cn.move_cap(slot, CNODE, from)?;
    a.free_slot(from);
    Ok(())
}

/// A copy (or badged copy) of init's `from` into `slot` of the fuzz CNode.
fn give_copy(
    cn: Cap<CNode>,
    from: u64,
    slot: u64,
    rights: CapRights,
    badge: u64,
) -> Result<(), Error> {
    if badge == 0 {
        cn.copy(slot, CNODE, from, rights)
    } else {
        cn.mint(slot, CNODE, from, rights, badge)
    }
}

/// Makes the fuzz CNode and its contents, the fuzzers and the watchdog (not started).
fn setup(a: &mut Alloc, nfuzz: usize) -> Result<Rig, Error> {
    // The 2 MiB objects first: the scratch untyped is carved from a watermark, each object
    // aligned to its size.
    let ut_big: Cap<Untyped> = a.obj(ObjectType::Untyped, 21)?;
    let big_frame: Cap<Frame> = a.obj(ObjectType::Frame, 21)?;
    let sup: Cap<Endpoint> = a.obj(ObjectType::Endpoint, 0)?;
    let cn: Cap<CNode> = a.obj(ObjectType::CNode, FUZZ_RADIX)?;
    let ut_small: Cap<Untyped> = a.obj(ObjectType::Untyped, 14)?;
    let cn2: Cap<CNode> = a.obj(ObjectType::CNode, 4)?;
    let vs: Cap<VSpace> = a.obj(ObjectType::VSpace, 0)?;
    let mut tables = [0u64; 5];
    for (i, t) in tables.iter_mut().enumerate() {
        let pt: Cap<PageTable> = a.obj(ObjectType::PageTable, 0)?;
        if i < 3 {
            let level = i as u8 + 1;
            vs.map_table(pt, table_base(FZ_VA, level), u64::from(level))?;
        }
        *t = pt.cptr();
    }
    let frames: [Cap<Frame>; 4] = [
        a.obj(ObjectType::Frame, 12)?,
        a.obj(ObjectType::Frame, 12)?,
        a.obj(ObjectType::Frame, 14)?,
        big_frame,
    ];
    frames[0].map(vs, FZ_VA, MapFlags::RW, 0, 1)?;
    frames[1].map(vs, FZ_VA + PAGE, MapFlags::RW, 0, 1)?;
    frames[2].map(vs, FZ_VA + 16 * PAGE, MapFlags::READ, 0, 4)?;
    let ep0: Cap<Endpoint> = a.obj(ObjectType::Endpoint, 0)?;
    let ep1: Cap<Endpoint> = a.obj(ObjectType::Endpoint, 0)?;
    let n0: Cap<Notification> = a.obj(ObjectType::Notification, 0)?;
    let n1: Cap<Notification> = a.obj(ObjectType::Notification, 0)?;
    let victim: Cap<Tcb> = a.obj(ObjectType::Tcb, 0)?;
    let victim2: Cap<Tcb> = a.obj(ObjectType::Tcb, 0)?;
    let timer: Cap<Timer> = a.obj(ObjectType::Timer, 0)?;
    let ep0_badged = a.slot()?;
    CNODE.mint(ep0_badged, CNODE, ep0.cptr(), CapRights::ALL, 0x11)?;
    victim.configure(
        cn2,
        vs,
        Some((frames[1], FZ_VA + PAGE)),
        Some(Cap::from_cptr(ep0_badged)),
        FUZZ_PRIORITY,
    )?;
    // The timer's handler, if it can be had (a kernel that leaked it keeps it claimed).
    let irq = a.slot()?;
    let have_irq = Cap::<IrqControl>::from_cptr(init_slots::IRQ_CONTROL)
        .get(TIMER_INTID, CNODE, irq)
        .is_ok();

    // Copies first (their sources move next), then the moves.
    give_copy(cn, cn.cptr(), slot::OWN_CNODE, CapRights::ALL, 0)?;
    give_copy(cn, frames[0].cptr(), slot::FRAME_RO, CapRights::READ, 0)?;
    give_copy(cn, ep0.cptr(), slot::EP0_READ, CapRights::READ, 0)?;
    give_copy(cn, ep1.cptr(), slot::EP1_WRITE, CapRights::WRITE, 0)?;
    give_copy(cn, n0.cptr(), slot::NTFN0_BADGED, CapRights::ALL, 0x22)?;
    give_copy(cn, victim.cptr(), slot::VICTIM, CapRights::ALL, 0)?;
    let moves = [
        (ut_big.cptr(), slot::UNTYPED_BIG),
        (ut_small.cptr(), slot::UNTYPED_SMALL),
        (cn2.cptr(), slot::CNODE2),
        (vs.cptr(), slot::VSPACE),
        (tables[0], slot::PT),
        (tables[1], slot::PT + 1),
        (tables[2], slot::PT + 2),
        (tables[3], slot::PT_FREE),
        (tables[4], slot::PT_FREE + 1),
        (frames[0].cptr(), slot::FRAME),
        (frames[1].cptr(), slot::FRAME + 1),
        (frames[2].cptr(), slot::FRAME + 2),
        (frames[3].cptr(), slot::FRAME + 3),
        (ep0.cptr(), slot::EP0),
        (ep0_badged, slot::EP0_BADGED),
        (ep1.cptr(), slot::EP1),
        (n0.cptr(), slot::NTFN0),
        (n1.cptr(), slot::NTFN1),
        (victim2.cptr(), slot::VICTIM2),
        (timer.cptr(), slot::TIMER),
    ];
    for (from, to) in moves {
        give(a, cn, from, to)?;
    }
    if have_irq {
        give(a, cn, irq, slot::IRQ)?;
    }

    let mut fuzzers = [None; MAX_FUZZERS];
    for (i, f) in fuzzers.iter_mut().enumerate().take(nfuzz) {
        let fault = a.slot()?;
        CNODE.mint(
            fault,
            CNODE,
            sup.cptr(),
            CapRights::ALL,
            FAULT_BADGE + i as u64,
        )?;
        let cfg = Config {
            priority: FUZZ_PRIORITY,
            fault_endpoint: Some(Cap::from_cptr(fault)),
            ipc_buffer: true,
            cspace: cn,
        };
        *f = Some(Thread::new(a, cfg, None)?);
    }
    let cfg = Config {
        ipc_buffer: false,
        ..Config::new(FUZZ_PRIORITY)
    };
    let watchdog = Thread::new(a, cfg, None)?;
    let sup_watchdog = a.slot()?;
    CNODE.mint(
        sup_watchdog,
        CNODE,
        sup.cptr(),
        CapRights::ALL,
        WATCHDOG_BADGE,
    )?;
    Ok(Rig {
        sup,
        cnode: cn,
        fuzzers,
        watchdog,
        sup_watchdog,
        victim,
    })
}

/// What the supervision counted.
#[derive(Default)]
struct Stats {
    /// Fuzzers restarted because they were stuck in a blocking call.
    blocked: u64,
    /// Fault messages, by label (index 0: unknown label).
    faults: [u64; 6],
    /// Epochs run (a fresh rig each).
    epochs: u64,
    /// The first teardown failure.
    teardown: Option<&'static str>,
}

impl Rig {
    fn restart(&self, i: usize) -> Result<(), Error> {
        let Some(t) = self.fuzzers.get(i).copied().flatten() else {
            return Err(Error::InvalidArgument);
        };
        t.tcb.suspend()?;
        t.run(fuzzer, i as u64)
    }

    fn start(&self) -> Result<(), Error> {
        self.watchdog.run(watchdog, self.sup_watchdog)?;
        for i in 0..MAX_FUZZERS {
            if let Some(t) = self.fuzzers[i] {
                t.run(fuzzer, i as u64)?;
            }
        }
        Ok(())
    }

    /// Answers the watchdog and the fault messages until every fuzzer is done.
    fn supervise(&self, stats: &mut Stats) -> Result<(), &'static str> {
        let mut dead_faults = 0u64;
        let mut issued_at_fault = u64::MAX;
        loop {
            let r = self
                .sup
                .recv()
                .map_err(|_| "Recv on the supervisor endpoint failed")?;
            let who = r.badge.wrapping_sub(FAULT_BADGE) as usize;
            if r.badge == WATCHDOG_BADGE {
                if r.mrs[0] == ALL_DONE {
                    return Ok(());
                }
                stats.blocked += 1;
                self.restart(r.mrs[0] as usize)
                    .map_err(|_| "could not restart a stuck fuzzer")?;
            } else if who < MAX_FUZZERS {
                let label = r.info().label;
                stats.faults[(label as usize).min(5)] += 1;
                if label == FaultLabel::UnknownSyscall as u64 {
                    // The fault reply resumes the fuzzer after its `svc`.
                    libmk::reply(&Message::new(0, &[]))
                        .map_err(|_| "the reply to an UnknownSyscall fault failed")?;
                    continue;
                }
                // Anything else can only be the timer registers (or a fuzzer bug).
                println!(
                    "fuzz: fuzzer {who} fault label {label} ip {:#x} esr {:#x}: restarting",
                    r.mrs[0], r.mrs[1]
                );
                TIMER_OK.store(0, SeqCst);
                let issued = ISSUED.load(SeqCst);
                dead_faults = if issued == issued_at_fault {
                    dead_faults + 1
                } else {
                    0
                };
                issued_at_fault = issued;
                if dead_faults >= MAX_DEAD_FAULTS {
                    return Err("a fuzzer keeps faulting without issuing calls");
                }
                self.restart(who)
                    .map_err(|_| "could not restart a faulted fuzzer")?;
            } else {
                return Err("a message with an unknown badge reached the supervisor");
            }
        }
    }

    /// Deletes every capability in the fuzz CNode (for `fuzz.avoid=zombie`).
    fn empty_cnode(&self) {
        for s in 0..FUZZ_SLOTS {
            let _ = self.cnode.delete(s);
        }
    }

    /// Stops every thread of the rig.
    fn stop(&self) {
        for t in self.fuzzers.iter().flatten() {
            let _ = t.tcb.suspend();
        }
        let _ = self.watchdog.tcb.suspend();
        let _ = self.victim.suspend();
        timer(None);
    }
}

fn parse(word: &[u8]) -> Option<u64> {
    let s = core::str::from_utf8(word).ok()?;
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Retypes the whole scratch untyped as one Untyped and that as 2 MiB frames: every byte of
/// it is free.
fn whole_scratch_free(a: &mut Alloc) -> Result<(), &'static str> {
    a.begin_scope().map_err(|_| "no scratch untyped")?;
    let result = (|| {
        let (ut, bits) = a.scratch().ok_or("no scratch untyped")?;
        let child = a.slot().map_err(|_| "no free slot")?;
        ut.retype(ObjectType::Untyped, u64::from(bits), CNODE, child, 1)
            .map_err(|_| "the scratch untyped cannot be retyped whole")?;
        let frames = 1u64 << bits.saturating_sub(21);
        let first = a.slots(frames as usize).map_err(|_| "no free slots")?;
        Cap::<Untyped>::from_cptr(child)
            .retype(ObjectType::Frame, 21, CNODE, first, frames)
            .map_err(|_| "the whole-size child cannot be retyped as 2 MiB frames")
    })();
    let end = a
        .end_scope()
        .map_err(|_| "cleaning up after the retype failed");
    result.and(end)
}

fn client(ep: u64) {
    let ep = Cap::<Endpoint>::from_cptr(ep);
    let v = match ep.call(&Message::new(0x77, &[1, 2, 3])) {
        Ok(r) if r.info().label == 0x78 => r.mrs[0],
        _ => 0,
    };
    let _ = ep.send(&Message::new(0x79, &[v]));
}

/// A call and its reply between init and a new thread, a retype, a signal, and a handler
/// for the timer interrupt (free again) still work.
fn kernel_alive(a: &mut Alloc) -> Result<(), &'static str> {
    a.begin_scope().map_err(|_| "no scratch untyped")?;
    let result = (|| {
        let ep: Cap<Endpoint> = a
            .obj(ObjectType::Endpoint, 0)
            .map_err(|_| "retype an endpoint")?;
        let t = Thread::new(a, Config::new(200), None).map_err(|_| "make a thread")?;
        t.run(client, ep.cptr()).map_err(|_| "start a thread")?;
        let r = ep.recv().map_err(|_| "Recv")?;
        if r.info().label != 0x77 || r.mrs[..3] != [1, 2, 3] {
            return Err("the call arrived wrong");
        }
        libmk::reply(&Message::new(0x78, &[r.mrs[0] + r.mrs[1] + r.mrs[2]]))
            .map_err(|_| "Reply")?;
        let r = ep.recv().map_err(|_| "Recv")?;
        if r.info().label != 0x79 || r.mrs[0] != 6 {
            return Err("the reply arrived wrong");
        }
        let n: Cap<Notification> = a
            .obj(ObjectType::Notification, 0)
            .map_err(|_| "retype a notification")?;
        n.signal().map_err(|_| "Signal")?;
        if n.poll() != Ok(1) {
            return Err("Poll did not return the signal");
        }
        let irq = a.slot().map_err(|_| "no free slot")?;
        Cap::<IrqControl>::from_cptr(init_slots::IRQ_CONTROL)
            .get(TIMER_INTID, CNODE, irq)
            .map_err(|_| "IrqControlGet of the timer interrupt failed (not released)")?;
        Cap::<IrqHandler>::from_cptr(irq)
            .clear()
            .map_err(|_| "IrqHandlerClear")
    })();
    let end = a.end_scope().map_err(|_| "cleaning up failed");
    result.and(end)
}

/// Deletes every capability init made since boot (newest slot first), so the kernel suite
/// starts from the boot state; all slots from `first_free_slot` on must then be empty.
fn release_everything(a: &Alloc) -> Result<(), &'static str> {
    let first = a.info.first_free_slot;
    for s in (first..a.slot_count()).rev() {
        if libmk::debug_cap_type(s) != Ok(0) {
            CNODE
                .delete(s)
                .map_err(|_| "deleting one of init's capabilities failed")?;
        }
    }
    if (first..a.slot_count()).any(|s| libmk::debug_cap_type(s) != Ok(0)) {
        return Err("a slot is not empty after deleting it");
    }
    Ok(())
}

fn report(name: &str, r: Result<(), &str>) {
    match r {
        Ok(()) => println!("PASS {name}"),
        Err(why) => println!("FAIL {name}: {why}"),
    }
}

fn print_mix(stats: &Stats) {
    let load = |c: &AtomicU64| c.load(SeqCst);
    rt::print!("fuzz: calls by number (issued/succeeded):");
    for (n, c) in BY_NUMBER.iter().enumerate() {
        let (c, ok) = (load(c), load(&OK_BY_NUMBER[n]));
        if c != 0 {
            if n == 32 {
                rt::print!(" >31:{c}");
            } else {
                rt::print!(" {n}:{c}/{ok}");
            }
        }
    }
    println!();
    rt::print!("fuzz: Invoke by label (issued/succeeded):");
    for &inv in Invocation::ALL {
        let l = inv as usize;
        rt::print!(" {inv:?} {}/{}", load(&BY_LABEL[l]), load(&OK_BY_LABEL[l]));
    }
    let other: u64 = (0..LABELS)
        .filter(|&l| Invocation::try_from(l as u64).is_err())
        .map(|l| load(&BY_LABEL[l]))
        .sum();
    println!(" other-labels {other}");
    rt::print!("fuzz: results of known calls:");
    for (code, c) in RESULTS.iter().enumerate() {
        let c = load(c);
        match Error::try_from(code as u64) {
            _ if c == 0 => {}
            Ok(e) => rt::print!(" {e:?}:{c}"),
            Err(_) => rt::print!(" ok:{c}"),
        }
    }
    println!();
    println!(
        "fuzz: Send on a reply just saved: {}/{}",
        load(&REPLY_SENDS),
        load(&REPLY_SENDS_OK)
    );
    println!(
        "fuzz: faults by label: VmFault {} UnknownSyscall {} Undefined {} Alignment {} Other {} unlabelled {}",
        stats.faults[1],
        stats.faults[2],
        stats.faults[3],
        stats.faults[4],
        stats.faults[5],
        stats.faults[0]
    );
}

/// A handler for the timer interrupt can be made (and is deleted again).
fn irq_released(a: &mut Alloc) -> Result<(), Error> {
    let s = a.slot()?;
    let r = Cap::<IrqControl>::from_cptr(init_slots::IRQ_CONTROL).get(TIMER_INTID, CNODE, s);
    if r.is_ok() {
        CNODE.delete(s)?;
    }
    a.free_slot(s);
    r
}

/// Fuzzes in epochs of `EPOCH_CALLS` calls, each with a fresh rig (the fuzzers soon delete
/// their own CNode capability or revoke their untyped, after which little succeeds), until
/// `target` calls are issued. Each epoch ends by tearing its rig down; the first teardown
/// that fails (or leaves the timer's IrqHandler claimed) is noted in `stats.teardown` and
/// fuzzing goes on. With `avoid_zombie` init empties the fuzz CNode before the teardown.
fn fuzz_epochs(
    a: &mut Alloc,
    nfuzz: usize,
    target: u64,
    avoid_zombie: bool,
    stats: &mut Stats,
) -> Result<(), &'static str> {
    while ISSUED.load(SeqCst) < target {
        let first = ISSUED.load(SeqCst);
        let epoch_target = (first + EPOCH_CALLS).min(target);
        TARGET.store(epoch_target, SeqCst);
        for d in &DONE {
            d.store(0, SeqCst);
        }
        a.begin_scope().map_err(|_| "no scratch untyped")?;
        let result = match setup(a, nfuzz) {
            Ok(rig) => {
                let r = rig
                    .start()
                    .map_err(|_| "could not start the threads")
                    .and_then(|()| rig.supervise(stats));
                rig.stop();
                if avoid_zombie {
                    rig.empty_cnode();
                }
                r
            }
            Err(_) => Err("setting up the fuzz CNode and threads failed"),
        };
        let epoch = stats.epochs;
        stats.epochs += 1;
        let end = a.end_scope();
        result?;
        let teardown = match (end, irq_released(a)) {
            (Err(e), _) => Some((
                "ending an epoch's scope (delete its slots, revoke the scratch) failed",
                e,
            )),
            (Ok(()), Err(e)) => Some((
                "the fuzzers' IrqHandler stayed claimed after all its capabilities went",
                e,
            )),
            (Ok(()), Ok(())) => None,
        };
        if let Some((why, e)) = teardown
            && stats.teardown.is_none()
        {
            println!("fuzz: after epoch {epoch} (calls {first}..{epoch_target}): {why}: {e:?}");
            stats.teardown = Some(why);
        }
    }
    Ok(())
}

/// `test=fuzz`: fuzz, tear down, check, then the kernel suite.
pub fn run(info: &'static BootInfo) {
    libmk::set_ipc_buffer(INIT_IPC_BUFFER_VADDR);
    let args = info.bootargs();
    let seed = bootarg(args, "fuzz.seed")
        .and_then(parse)
        .unwrap_or(DEFAULT_SEED);
    let target = bootarg(args, "fuzz.n")
        .and_then(parse)
        .unwrap_or(DEFAULT_CALLS);
    let nfuzz = bootarg(args, "fuzz.threads")
        .and_then(parse)
        .map_or(MAX_FUZZERS, |n| (n as usize).clamp(1, MAX_FUZZERS));
    if let Some(t) = bootarg(args, "fuzz.trace").and_then(parse) {
        TRACE_FROM.store(t, SeqCst);
    }
    TARGET.store(target, SeqCst);
    NFUZZ.store(nfuzz as u64, SeqCst);
    for (i, s) in STATE.iter().enumerate() {
        // xorshift needs a nonzero state; the fuzzers' streams differ by their index.
        s.store(
            (seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).max(1),
            SeqCst,
        );
    }
    println!("fuzz: seed {seed:#x}, {target} calls, {nfuzz} fuzzer thread(s)");

    let mut a = Alloc::new(info);
    let before = whole_scratch_free(&mut a);
    if let Err(why) = before {
        println!("FAIL fuzz-setup: before fuzzing: {why}");
        return;
    }
    // Whether EL0 may use the timer is found out the hard way: a fault clears this.
    TIMER_OK.store(1, SeqCst);
    let mut stats = Stats::default();
    let (t0, freq) = libmk::virtual_counter();
    let avoid_zombie = bootarg(args, "fuzz.avoid") == Some(b"zombie");
    let outcome = fuzz_epochs(&mut a, nfuzz, target, avoid_zombie, &mut stats);
    let (t1, _) = libmk::virtual_counter();
    let ms = (t1 - t0) * 1000 / freq.max(1);

    // A fuzzer's `DebugPutStr` may have left a line unfinished.
    println!();
    print_mix(&stats);
    let issued = ISSUED.load(SeqCst);
    let errors: u64 = RESULTS[1..].iter().map(|c| c.load(SeqCst)).sum();
    let faults: u64 = stats.faults.iter().sum();
    println!(
        "fuzz: {issued} calls in {ms} ms, {} epochs of at most {EPOCH_CALLS}",
        stats.epochs
    );
    let syscalls = match outcome {
        Ok(()) if issued < MIN_CALLS => Err("fewer than 100000 system calls issued"),
        other => other,
    };
    let teardown = stats.teardown.map_or(Ok(()), Err);
    match syscalls {
        Ok(()) => println!(
            "PASS fuzz-syscalls: {issued} system calls, {errors} errors returned, {} blocked/unblocked, {faults} faults",
            stats.blocked
        ),
        Err(why) => println!(
            "FAIL fuzz-syscalls: {why} ({issued} system calls, {errors} errors, {} blocked, {faults} faults)",
            stats.blocked
        ),
    }
    report(
        "fuzz-memory-reclaimed",
        teardown.and_then(|()| whole_scratch_free(&mut a)),
    );
    report("fuzz-kernel-alive", kernel_alive(&mut a));
    if let Err(why) = release_everything(&a) {
        println!("FAIL fuzz-release: {why}");
        return;
    }
    crate::suite::run(info);
}
