//! The kernel benchmarks (`bench=kernel`), measured with the PMU cycle counter, which under
//! QEMU `-icount` counts guest instructions. Each figure is the median over many
//! repetitions, printed as `BENCH <name> <value> instructions` with the kernel entries and
//! address-space switches one operation costs (from `DebugCounters`). Measurement points
//! follow seL4's sel4bench: counter read just before the system call, just after it returns.

use crate::alloc::{Alloc, PAGE};
use crate::thread::{Config, Space, Thread};
use abi::Error;
use abi::message::{fault_reply, vm_fault};
use abi::object::{MapFlags, ObjectType};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use libmk::{Cap, Endpoint, Frame, Message, SavedReply};
use rt::println;

/// Repetitions per figure.
const RUNS: usize = 256;
/// The address the fault benchmark's thread touches (one 2 MiB region).
const FAULT_BASE: u64 = 0x0000_0020_0000_0000;

pub fn run(alloc: &mut Alloc) {
    for (name, bench) in [
        (
            "ipc_call_reply_roundtrip",
            ipc_call_reply as fn(&mut Alloc) -> Result<Figure, Error>,
        ),
        ("fault_reply_map_roundtrip", fault_reply_map),
        ("map_unmap_range_4k_pages_per_page", map_unmap_range),
        ("ipc_call_saved_reply_roundtrip", ipc_call_saved_reply),
        ("fault_saved_reply_map_roundtrip", fault_saved_reply_map),
    ] {
        let result = alloc.begin_scope().and_then(|()| bench(alloc));
        let _ = alloc.end_scope();
        match result {
            Ok(f) if f.save_and_send != 0 => println!(
                "BENCH {name} {} instructions kernel_entries={} address_space_switches={} save_and_send={}",
                f.median, f.entries, f.switches, f.save_and_send
            ),
            Ok(f) => println!(
                "BENCH {name} {} instructions kernel_entries={} address_space_switches={}",
                f.median, f.entries, f.switches
            ),
            Err(e) => println!("FAIL bench-{name}: {e}"),
        }
    }
}

/// A figure: median instructions per operation and what one operation costs in crossings.
struct Figure {
    median: u64,
    entries: u64,
    switches: u64,
    /// For the saved-reply figures: median instructions of the replier's `SaveCaller`
    /// and `Send` on the saved reply together (0: not measured).
    save_and_send: u64,
}

fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Times `op` RUNS times; counts kernel entries and address-space switches per call.
fn measure(mut op: impl FnMut(usize) -> Result<u64, Error>) -> Result<Figure, Error> {
    let mut samples = [0u64; RUNS];
    let (e0, s0) = libmk::debug_counters();
    for (i, s) in samples.iter_mut().enumerate() {
        *s = op(i)?;
    }
    let (e1, s1) = libmk::debug_counters();
    let runs = RUNS as u64;
    // One of the entries counted is the second `DebugCounters` call itself.
    Ok(Figure {
        median: median(&mut samples),
        entries: (e1 - e0 - 1) / runs,
        switches: (s1 - s0) / runs,
        save_and_send: 0,
    })
}

static SERVER_EP: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The server: receives, then replies and receives again, forever.
fn server(_: u64) {
    let ep: Cap<Endpoint> = Cap::from_cptr(SERVER_EP.load(core::sync::atomic::Ordering::Relaxed));
    let mut msg = match ep.recv() {
        Ok(r) => r.message(),
        Err(_) => return,
    };
    loop {
        msg = match ep.reply_recv(&msg) {
            Ok(r) => r.message(),
            Err(_) => return,
        };
    }
}

/// `Call` + `ReplyRecv` between init and a server in another address space, same priority.
fn ipc_call_reply(alloc: &mut Alloc) -> Result<Figure, Error> {
    let ep: Cap<Endpoint> = alloc.obj(ObjectType::Endpoint, 0)?;
    SERVER_EP.store(ep.cptr(), core::sync::atomic::Ordering::Relaxed);
    let mut space = Space::new(alloc)?;
    space.map_image(alloc)?;
    let t = Thread::new(alloc, Config::new(255), Some(&mut space))?;
    t.run(server, 0)?;
    let msg = Message::new(1, &[1, 2]);
    // The server runs when init first blocks in `Call`.
    ep.call(&msg)?;
    let figure = measure(|_| {
        let start = libmk::cycle_counter();
        ep.call(&msg)?;
        Ok(libmk::cycle_counter() - start)
    });
    t.tcb.suspend()?;
    figure
}

static FAULT_DONE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static FAULT_SAMPLES: [core::sync::atomic::AtomicU64; RUNS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; RUNS];

/// The faulting thread: touches one new page at a time, timing each touch.
fn toucher(_: u64) {
    for (i, sample) in FAULT_SAMPLES.iter().enumerate() {
        let p = (FAULT_BASE + i as u64 * PAGE) as *mut u64;
        let start = libmk::cycle_counter();
        // SAFETY: the page is mapped by the fault handler before this store completes.
        unsafe { core::ptr::write_volatile(p, i as u64) };
        sample.store(
            libmk::cycle_counter() - start,
            core::sync::atomic::Ordering::Relaxed,
        );
    }
    FAULT_DONE.store(1, core::sync::atomic::Ordering::Relaxed);
}

/// A thread in another address space writes to unmapped pages; init, its fault handler,
/// replies to each `VmFault` with a map item for the page.
fn fault_reply_map(alloc: &mut Alloc) -> Result<Figure, Error> {
    let ep: Cap<Endpoint> = alloc.obj(ObjectType::Endpoint, 0)?;
    let frame: Cap<Frame> = alloc.obj(ObjectType::Frame, 21)?;
    let mut space = Space::new(alloc)?;
    space.map_image(alloc)?;
    space.tables_for(alloc, FAULT_BASE, 512)?;
    let mut cfg = Config::new(254);
    cfg.fault_endpoint = Some(ep);
    let t = Thread::new(alloc, cfg, Some(&mut space))?;
    FAULT_DONE.store(0, core::sync::atomic::Ordering::Relaxed);
    t.run(toucher, 0)?;
    let (e0, s0) = libmk::debug_counters();
    let mut fault = ep.recv()?;
    let mut served = 0u64;
    while FAULT_DONE.load(core::sync::atomic::Ordering::Relaxed) == 0 {
        let addr = fault.mrs[vm_fault::ADDRESS];
        if fault.info().label != abi::message::FaultLabel::VmFault as u64
            || !(FAULT_BASE..FAULT_BASE + (2 << 20)).contains(&addr)
        {
            t.tcb.suspend()?;
            return Err(Error::InvalidArgument);
        }
        let page = (addr - FAULT_BASE) / PAGE;
        let reply = Message::new(
            fault_reply::REPLY_MAP,
            &[frame.cptr(), page, 1, addr & !(PAGE - 1), MapFlags::RW.0],
        );
        served += 1;
        if served as usize == RUNS {
            // The last fault: reply, and let the thread finish (it suspends itself).
            libmk::reply(&reply)?;
            break;
        }
        fault = ep.reply_recv(&reply)?;
    }
    let (e1, s1) = libmk::debug_counters();
    // Let the toucher record its last sample and stop: at init's priority, yielding to it.
    t.tcb.set_priority(255)?;
    while FAULT_DONE.load(core::sync::atomic::Ordering::Relaxed) == 0 {
        libmk::yield_now();
    }
    let mut samples = [0u64; RUNS];
    for (s, a) in samples.iter_mut().zip(FAULT_SAMPLES.iter()) {
        *s = a.load(core::sync::atomic::Ordering::Relaxed);
    }
    t.tcb.suspend()?;
    Ok(Figure {
        median: median(&mut samples),
        entries: (e1 - e0) / served,
        switches: (s1 - s0) / served,
        save_and_send: 0,
    })
}

/// One `FrameMap` of 512 pages of a 2 MiB frame, then one `VSpaceUnmap` of the range; the
/// figure is the instructions of both calls divided by 512.
fn map_unmap_range(alloc: &mut Alloc) -> Result<Figure, Error> {
    let frame: Cap<Frame> = alloc.obj(ObjectType::Frame, 21)?;
    let mut space = Space::new(alloc)?;
    space.tables_for(alloc, FAULT_BASE, 512)?;
    let vspace = space.vspace;
    let mut figure = measure(|_| {
        let start = libmk::cycle_counter();
        frame.map(vspace, FAULT_BASE, MapFlags::RW, 0, 512)?;
        vspace.unmap(FAULT_BASE, 2 << 20)?;
        Ok((libmk::cycle_counter() - start) / 512)
    })?;
    figure.entries = 2;
    Ok(figure)
}

/// The slot the saved-reply server keeps its reply in, and its timings of save + send.
static SAVED_SLOT: AtomicU64 = AtomicU64::new(0);
static SAVE_SEND_SAMPLES: [AtomicU64; RUNS] = [const { AtomicU64::new(0) }; RUNS];

/// The server of `ipc_call_saved_reply`: receives, saves the caller, answers through the
/// saved reply, and receives again (four kernel entries per call instead of two), timing
/// the save and the send.
fn saving_server(_: u64) {
    let ep: Cap<Endpoint> = Cap::from_cptr(SERVER_EP.load(Relaxed));
    let slot = SAVED_SLOT.load(Relaxed);
    let mut i = 0usize;
    loop {
        let msg = match ep.recv() {
            Ok(r) => r.message(),
            Err(_) => return,
        };
        let start = libmk::cycle_counter();
        if libmk::save_caller(slot).is_err()
            || Cap::<SavedReply>::from_cptr(slot).send(&msg).is_err()
        {
            return;
        }
        SAVE_SEND_SAMPLES[i % RUNS].store(libmk::cycle_counter() - start, Relaxed);
        i += 1;
    }
}

/// As `ipc_call_reply_roundtrip`, but the server answers through a saved reply
/// (`SaveCaller`, then `Send` on the `Reply` capability, then `Recv`): what answering
/// a request later costs over answering it at once.
fn ipc_call_saved_reply(alloc: &mut Alloc) -> Result<Figure, Error> {
    let ep: Cap<Endpoint> = alloc.obj(ObjectType::Endpoint, 0)?;
    SERVER_EP.store(ep.cptr(), Relaxed);
    SAVED_SLOT.store(alloc.slot()?, Relaxed);
    let mut space = Space::new(alloc)?;
    space.map_image(alloc)?;
    let t = Thread::new(alloc, Config::new(255), Some(&mut space))?;
    t.run(saving_server, 0)?;
    let msg = Message::new(1, &[1, 2]);
    ep.call(&msg)?;
    let figure = measure(|_| {
        let start = libmk::cycle_counter();
        ep.call(&msg)?;
        Ok(libmk::cycle_counter() - start)
    });
    t.tcb.suspend()?;
    let mut figure = figure?;
    figure.save_and_send = save_send_median();
    Ok(figure)
}

fn save_send_median() -> u64 {
    let mut samples = [0u64; RUNS];
    for (s, a) in samples.iter_mut().zip(SAVE_SEND_SAMPLES.iter()) {
        *s = a.load(Relaxed);
    }
    median(&mut samples)
}

/// As `fault_reply_map_roundtrip`, but init saves each fault's reply and answers it with
/// `Send` on the saved reply, then receives the next fault (`Recv`): how a pager that
/// parks faults resolves one.
fn fault_saved_reply_map(alloc: &mut Alloc) -> Result<Figure, Error> {
    let ep: Cap<Endpoint> = alloc.obj(ObjectType::Endpoint, 0)?;
    let frame: Cap<Frame> = alloc.obj(ObjectType::Frame, 21)?;
    let slot = alloc.slot()?;
    let reply = Cap::<SavedReply>::from_cptr(slot);
    let mut space = Space::new(alloc)?;
    space.map_image(alloc)?;
    space.tables_for(alloc, FAULT_BASE, 512)?;
    let mut cfg = Config::new(254);
    cfg.fault_endpoint = Some(ep);
    let t = Thread::new(alloc, cfg, Some(&mut space))?;
    FAULT_DONE.store(0, Relaxed);
    t.run(toucher, 0)?;
    let (e0, s0) = libmk::debug_counters();
    let mut served = 0u64;
    let mut save_send = [0u64; RUNS];
    while served < RUNS as u64 {
        let fault = ep.recv()?;
        let addr = fault.mrs[vm_fault::ADDRESS];
        if fault.info().label != abi::message::FaultLabel::VmFault as u64
            || !(FAULT_BASE..FAULT_BASE + (2 << 20)).contains(&addr)
        {
            t.tcb.suspend()?;
            return Err(Error::InvalidArgument);
        }
        let page = (addr - FAULT_BASE) / PAGE;
        let item = Message::new(
            fault_reply::REPLY_MAP,
            &[frame.cptr(), page, 1, addr & !(PAGE - 1), MapFlags::RW.0],
        );
        let start = libmk::cycle_counter();
        libmk::save_caller(slot)?;
        reply.send(&item)?;
        save_send[served as usize] = libmk::cycle_counter() - start;
        served += 1;
    }
    let (e1, s1) = libmk::debug_counters();
    t.tcb.set_priority(255)?;
    while FAULT_DONE.load(Relaxed) == 0 {
        libmk::yield_now();
    }
    let mut samples = [0u64; RUNS];
    for (s, a) in samples.iter_mut().zip(FAULT_SAMPLES.iter()) {
        *s = a.load(Relaxed);
    }
    t.tcb.suspend()?;
    Ok(Figure {
        median: median(&mut samples),
        entries: (e1 - e0) / served,
        switches: (s1 - s0) / served,
        save_and_send: median(&mut save_send),
    })
}
