//! ktest, the kernel's own root task for testing: the kernel boots it instead of init
//! (`tools`: the `Initrd::Tests` archive holds it under the name `init`) when a boot only
//! tests the kernel, as seL4 keeps sel4test and sel4bench apart from its root servers. It
//! greets, then does what `/chosen/bootargs` asks:
//! - `test=boot` (or nothing): checks what the kernel gave the root task, one
//!   `PASS`/`FAIL` line each;
//! - `test=kernel`: runs the kernel test suite (`suite`), one `PASS`/`FAIL` line per check
//!   (`ktest=<prefix>`: only the checks whose name starts with it);
//! - `test=fuzz`: the system-call fuzzer (`fuzz`), then the kernel test suite;
//! - `test=undef`: executes an undefined instruction (the kernel must report it);
//! - `bench=kernel`: the kernel benchmarks (`bench`) for `cargo xtask bench`.
//!
//! When it returns, the runtime asks the kernel to power off.
#![no_std]
#![no_main]

// The `alloc` crate, under another name: `alloc` is the root task's object allocator.
extern crate alloc as liballoc;

use abi::bootinfo::{
    BOOTINFO_MAGIC, BOOTINFO_VERSION, BootInfo, INIT_CNODE_RADIX, ReservedKind, bootarg,
};
use abi::object::{CapType, MapFlags, init_slots};
use abi::{Error, Syscall};
use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};
use rootalloc as alloc;
use rt::println;

mod bench;
mod fuzz;
mod suite;
mod thread;

rt::root_entry!(main);

fn main(info: &'static BootInfo) -> i32 {
    println!("ktest: hello from user space");
    let args = info.bootargs();
    match (bootarg(args, "test"), bootarg(args, "bench")) {
        (_, Some(b"kernel")) => bench::run(&mut alloc::Alloc::new(info)),
        (_, Some(other)) => println!(
            "FAIL bench: ktest runs bench=kernel, not {:?} (the others run under init)",
            core::str::from_utf8(other).unwrap_or("?")
        ),
        (Some(b"undef"), None) => undefined_instruction(),
        (None | Some(b"boot"), None) => run_checks(info),
        (Some(b"kernel"), None) => suite::run(info),
        (Some(b"fuzz"), None) => fuzz::run(info),
        (Some(other), None) => {
            println!(
                "FAIL test: unknown test {:?}",
                core::str::from_utf8(other).unwrap_or("?")
            );
        }
    }
    println!("ktest: done");
    0
}

type Check = fn(&BootInfo) -> Result<(), &'static str>;

/// The boot checks, in the order they run.
const CHECKS: &[(&str, Check)] = &[
    ("bootinfo-header", bootinfo_header),
    ("memory-accounting", memory_accounting),
    ("memory-reservations", memory_reservations),
    ("init-slots", init_slots_types),
    ("untyped-caps", untyped_caps),
    ("initrd-frames", initrd_frames),
    ("image-frames", image_frames),
    ("virtio-transports", virtio_transports),
    ("free-slots-empty", free_slots_empty),
    ("loader-data-bss", loader_data_bss),
    ("syscall-unknown-number", syscall_unknown_number),
    ("syscall-putstr-too-long", syscall_putstr_too_long),
    (
        "syscall-debug-needs-capability",
        syscall_debug_needs_capability,
    ),
    ("pmu-cycle-counter", pmu_cycle_counter),
    ("timer-tick", timer_tick),
    ("fp-simd", fp_simd),
];

fn run_checks(info: &BootInfo) {
    for (name, check) in CHECKS {
        match check(info) {
            Ok(()) => println!("PASS {name}"),
            Err(why) => println!("FAIL {name}: {why}"),
        }
    }
}

fn bootinfo_header(info: &BootInfo) -> Result<(), &'static str> {
    if info.magic != BOOTINFO_MAGIC {
        return Err("wrong magic");
    }
    if info.version != BOOTINFO_VERSION {
        return Err("wrong version");
    }
    if info.counter_frequency == 0 || info.tick_hz == 0 {
        return Err("counter frequency or tick rate is zero");
    }
    if info.cnode_radix != INIT_CNODE_RADIX {
        return Err("the root CNode's radix is not INIT_CNODE_RADIX");
    }
    if info.first_free_slot < init_slots::FIRST_VARIABLE
        || info.first_free_slot >= 1 << info.cnode_radix
    {
        return Err("first_free_slot is outside the variable slots of the CNode");
    }
    Ok(())
}

/// Every byte of RAM is in exactly one RAM untyped or reserved range: sizes add up, nothing
/// overlaps, all ranges are whole pages.
fn memory_accounting(info: &BootInfo) -> Result<(), &'static str> {
    let ram = info.untyped().iter().filter(|u| u.device == 0);
    let untyped = ram
        .clone()
        .map(|u| (u.base, 1u64.checked_shl(u.size_bits as u32).unwrap_or(0)));
    let reserved = info.reserved_ranges().iter().map(|r| (r.base, r.size));
    let mut all = [(0u64, 0u64); abi::bootinfo::MAX_UNTYPED + abi::bootinfo::MAX_RESERVED];
    let mut n = 0;
    for range in untyped.chain(reserved) {
        all[n] = range;
        n += 1;
    }
    let all = &mut all[..n];
    if all
        .iter()
        .any(|&(base, size)| base % 4096 != 0 || size % 4096 != 0 || size == 0)
    {
        return Err("a range is empty or not page aligned");
    }
    all.sort_unstable();
    if all.windows(2).any(|w| w[0].0 + w[0].1 > w[1].0) {
        return Err("two ranges overlap");
    }
    let total: u64 = all.iter().map(|r| r.1).sum();
    if total != info.ram_total {
        return Err("RAM untyped + reserved != RAM size");
    }
    let free: u64 = ram.map(|u| 1u64 << u.size_bits).sum();
    if free < info.ram_total / 2 {
        return Err("less than half of RAM is untyped");
    }
    Ok(())
}

/// The kernel, device tree, initrd and init's own frames are all accounted for, and the
/// initrd range matches the reservation.
fn memory_reservations(info: &BootInfo) -> Result<(), &'static str> {
    let has = |kind: ReservedKind| info.reserved_ranges().iter().any(|r| r.kind == kind as u64);
    for (kind, why) in [
        (ReservedKind::Kernel, "no kernel reservation"),
        (ReservedKind::DeviceTree, "no device-tree reservation"),
        (ReservedKind::Initrd, "no initrd reservation"),
        (ReservedKind::BootAlloc, "no reservation for init's frames"),
    ] {
        if !has(kind) {
            return Err(why);
        }
    }
    let initrd = info.initrd;
    let covered = info.reserved_ranges().iter().any(|r| {
        r.kind == ReservedKind::Initrd as u64
            && r.base <= initrd.base
            && initrd.base + initrd.size <= r.base + r.size
    });
    if initrd.size == 0 || !covered {
        return Err("the initrd is not inside its reservation");
    }
    Ok(())
}

/// The fixed slots hold what `init_slots` says.
fn init_slots_types(_: &BootInfo) -> Result<(), &'static str> {
    for (slot, want, why) in [
        (init_slots::NULL, CapType::Null, "slot NULL is not empty"),
        (
            init_slots::TCB,
            CapType::Tcb,
            "slot TCB does not hold a TCB",
        ),
        (
            init_slots::CNODE,
            CapType::CNode,
            "slot CNODE does not hold a CNode",
        ),
        (
            init_slots::VSPACE,
            CapType::VSpace,
            "slot VSPACE does not hold a VSpace",
        ),
        (
            init_slots::IRQ_CONTROL,
            CapType::IrqControl,
            "slot IRQ_CONTROL does not hold IrqControl",
        ),
        (
            init_slots::CONSOLE,
            CapType::Console,
            "slot CONSOLE does not hold Console",
        ),
        (
            init_slots::POWER,
            CapType::PowerControl,
            "slot POWER does not hold PowerControl",
        ),
        (
            init_slots::IPC_BUFFER,
            CapType::Frame,
            "slot IPC_BUFFER does not hold a Frame",
        ),
        (
            init_slots::BOOTINFO,
            CapType::Frame,
            "slot BOOTINFO does not hold a Frame",
        ),
        (
            init_slots::STACK,
            CapType::Frame,
            "slot STACK does not hold a Frame",
        ),
    ] {
        if libmk::debug_cap_type(slot) != Ok(want as u64) {
            return Err(why);
        }
    }
    Ok(())
}

/// A slot the kernel filled at boot: among the variable slots, below `first_free_slot`.
fn boot_slot(info: &BootInfo, slot: u64) -> bool {
    (init_slots::FIRST_VARIABLE..info.first_free_slot).contains(&slot)
}

/// Every untyped the boot info lists is an Untyped capability in a boot slot, aligned to its
/// size; there is RAM untyped and device untyped (virtio-mmio).
fn untyped_caps(info: &BootInfo) -> Result<(), &'static str> {
    let list = info.untyped();
    if !list.iter().any(|u| u.device == 0) || !list.iter().any(|u| u.device == 1) {
        return Err("no RAM untyped or no device untyped");
    }
    for u in list {
        if !boot_slot(info, u.slot) {
            return Err("an untyped's slot is outside the boot slots");
        }
        if libmk::debug_cap_type(u.slot) != Ok(CapType::Untyped as u64) {
            return Err("an untyped's slot does not hold an Untyped capability");
        }
        if !(4..=47).contains(&u.size_bits) || u.base % (1 << u.size_bits) != 0 || u.device > 1 {
            return Err("an untyped has a bad size, alignment or device flag");
        }
    }
    Ok(())
}

/// The initrd frames are Frame capabilities covering the initrd, in address order.
fn initrd_frames(info: &BootInfo) -> Result<(), &'static str> {
    let frames = info.initrd_frames();
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        return Err("no initrd frames");
    };
    for f in frames {
        if !boot_slot(info, f.slot) || libmk::debug_cap_type(f.slot) != Ok(CapType::Frame as u64) {
            return Err("an initrd frame slot does not hold a Frame capability");
        }
    }
    if frames
        .windows(2)
        .any(|w| w[0].base + (1 << w[0].size_bits) != w[1].base)
    {
        return Err("the initrd frames are not contiguous and in order");
    }
    let end = last.base + (1 << last.size_bits);
    if first.base > info.initrd.base || end < info.initrd.base + info.initrd.size {
        return Err("the initrd frames do not cover the initrd");
    }
    Ok(())
}

/// init's image frames are Frame capabilities in address order, and the ones holding this
/// code and this program's data have the right flags.
fn image_frames(info: &BootInfo) -> Result<(), &'static str> {
    let frames = info.image_frames();
    if frames.is_empty() {
        return Err("no image frames");
    }
    for f in frames {
        if !boot_slot(info, f.slot) || libmk::debug_cap_type(f.slot) != Ok(CapType::Frame as u64) {
            return Err("an image frame slot does not hold a Frame capability");
        }
        if f.vaddr % 4096 != 0 || MapFlags::validate(f.flags).is_none() {
            return Err("an image frame has an unaligned address or bad flags");
        }
    }
    if frames.windows(2).any(|w| w[0].vaddr >= w[1].vaddr) {
        return Err("the image frames are not in address order");
    }
    let page_of = |addr: u64| frames.iter().find(|f| f.vaddr == addr & !0xfff);
    let code = image_frames as fn(&BootInfo) -> Result<(), &'static str> as usize as u64;
    match page_of(code) {
        Some(f)
            if MapFlags(f.flags).contains(MapFlags::RX)
                && !MapFlags(f.flags).contains(MapFlags::WRITE) => {}
        _ => return Err("the frame of init's code is missing or not read-execute only"),
    }
    match page_of(DATA.as_ptr() as u64) {
        Some(f)
            if MapFlags(f.flags).contains(MapFlags::RW)
                && !MapFlags(f.flags).contains(MapFlags::EXECUTE) => {}
        _ => return Err("the frame of init's .data is missing or not read-write only"),
    }
    Ok(())
}

/// Slots from `first_free_slot` on are empty (a sample, and the last).
fn free_slots_empty(info: &BootInfo) -> Result<(), &'static str> {
    let last = (1 << info.cnode_radix) - 1;
    for slot in (info.first_free_slot..info.first_free_slot + 64).chain([last]) {
        if slot <= last && libmk::debug_cap_type(slot) != Ok(CapType::Null as u64) {
            return Err("a slot after first_free_slot is not empty");
        }
    }
    if libmk::debug_cap_type(last + 1).is_ok() {
        return Err("DebugCapType accepted a slot past the CNode's end");
    }
    Ok(())
}

static DATA: AtomicU64 = AtomicU64::new(0x1234_5678_9abc_def0);
static BSS: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];

/// The loader copied .data and zeroed .bss (a whole page of it), and both are writable.
fn loader_data_bss(_: &BootInfo) -> Result<(), &'static str> {
    if DATA.load(Ordering::Relaxed) != 0x1234_5678_9abc_def0 {
        return Err(".data does not hold its initial value");
    }
    if BSS.iter().any(|w| w.load(Ordering::Relaxed) != 0) {
        return Err(".bss is not zero");
    }
    DATA.store(1, Ordering::Relaxed);
    BSS[511].store(2, Ordering::Relaxed);
    if DATA.load(Ordering::Relaxed) != 1 || BSS[511].load(Ordering::Relaxed) != 2 {
        return Err(".data or .bss did not keep a write");
    }
    Ok(())
}

fn syscall_unknown_number(_: &BootInfo) -> Result<(), &'static str> {
    for number in [0, 999, u64::MAX] {
        let r = libmk::raw_syscall(number, 7, 7, [7; 6]);
        if r.error != Error::InvalidSyscall.code() {
            return Err("an unknown number did not return InvalidSyscall");
        }
    }
    Ok(())
}

fn syscall_putstr_too_long(_: &BootInfo) -> Result<(), &'static str> {
    let number = Syscall::DebugPutStr as u64;
    for len in [abi::syscall::PUTSTR_MAX as u64 + 1, u64::MAX] {
        let r = libmk::raw_syscall(number, init_slots::CONSOLE, len, [0; 6]);
        if r.error != Error::InvalidArgument.code() {
            return Err("an over-long DebugPutStr did not return InvalidArgument");
        }
    }
    let r = libmk::raw_syscall(number, init_slots::CONSOLE, 0, [0; 6]);
    if r.error != 0 {
        return Err("an empty DebugPutStr failed");
    }
    Ok(())
}

/// The console and the power switch answer only to their capabilities: any other
/// capability, an empty slot or an address outside the CSpace is `InvalidCapability`.
fn syscall_debug_needs_capability(_: &BootInfo) -> Result<(), &'static str> {
    let invalid = Error::InvalidCapability.code();
    let not_console = [
        init_slots::NULL,
        init_slots::TCB,
        init_slots::POWER,
        init_slots::IRQ_CONTROL,
        u64::MAX,
    ];
    let text = abi::syscall::pack_putstr(b"!");
    for cptr in not_console {
        let r = libmk::raw_syscall(
            Syscall::DebugPutStr as u64,
            cptr,
            1,
            [text[0], 0, 0, 0, 0, 0],
        );
        if r.error != invalid {
            return Err("DebugPutStr without a Console capability was not refused");
        }
    }
    for cptr in [
        init_slots::NULL,
        init_slots::CNODE,
        init_slots::CONSOLE,
        init_slots::IRQ_CONTROL,
        u64::MAX,
    ] {
        if libmk::debug_power_off(cptr) != Error::InvalidCapability {
            return Err("DebugPowerOff without the PowerControl capability was not refused");
        }
    }
    Ok(())
}

fn pmu_cycle_counter(_: &BootInfo) -> Result<(), &'static str> {
    let a = libmk::cycle_counter();
    let mut x = 0u64;
    for i in 0..1000 {
        x = black_box(x.wrapping_add(i));
    }
    let b = libmk::cycle_counter();
    black_box(x);
    if b <= a {
        return Err("PMCCNTR_EL0 did not advance");
    }
    Ok(())
}

/// The timer interrupt arrives while init runs: ticks advance over three tick periods of
/// the virtual counter. Gives up after ten periods.
fn timer_tick(info: &BootInfo) -> Result<(), &'static str> {
    let (start_ticks, hz) = libmk::debug_ticks();
    if hz != info.tick_hz {
        return Err("DebugTicks reports another tick rate than the boot info");
    }
    let (start, freq) = libmk::virtual_counter();
    let period = freq / hz;
    loop {
        let (now, _) = libmk::virtual_counter();
        let (ticks, _) = libmk::debug_ticks();
        if ticks >= start_ticks + 2 && now - start >= 2 * period {
            return Ok(());
        }
        // Generous: a host that stalls QEMU's thread makes the counter jump over several
        // periods while the timer fires once (seen once under a loaded host with 10).
        if now - start > 100 * period {
            return Err("fewer than 2 ticks in 100 tick periods");
        }
    }
}

/// EL0 may use the FP/SIMD registers (the kernel does not trap them).
fn fp_simd(_: &BootInfo) -> Result<(), &'static str> {
    let mut x = black_box(2.0f64);
    for _ in 0..6 {
        x = 0.5 * (x + 2.0 / x); // Newton's method for sqrt(2)
    }
    if (x * x - 2.0).abs() > 1e-12 {
        return Err("sqrt(2) by Newton's method came out wrong");
    }
    Ok(())
}

fn undefined_instruction() {
    println!("init: executing an undefined instruction (the kernel must report it)");
    // SAFETY: `udf` raises an undefined-instruction exception; the kernel reports it and does
    // not return here.
    unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
    println!("FAIL undef: the undefined instruction returned");
}

/// The virtio-mmio transports the device tree lists reach init with their interrupts: each
/// lies inside a device untyped, interrupts are SPIs (INTID 32..1019) and all different.
fn virtio_transports(info: &BootInfo) -> Result<(), &'static str> {
    let transports = info.virtio();
    if transports.is_empty() {
        return Err("no virtio-mmio transport listed");
    }
    for (i, v) in transports.iter().enumerate() {
        let inside = info.untyped().iter().any(|u| {
            u.device != 0 && u.base <= v.base && v.base + v.size <= u.base + (1u64 << u.size_bits)
        });
        if !inside {
            return Err("a transport is outside every device untyped");
        }
        if !(32..1020).contains(&v.intid) {
            return Err("a transport's interrupt is not an SPI");
        }
        if transports[..i]
            .iter()
            .any(|w| w.intid == v.intid || w.base >= v.base)
        {
            return Err("transports not in address order or sharing an interrupt");
        }
    }
    Ok(())
}
