//! The microkernel: the only code that runs at EL1.
//!
//! Design principles (docs/design.md §4):
//! - The kernel owns translation tables, threads, capabilities and IPC, and nothing else;
//!   files, regions, zero pages and copy-on-write live in user-space servers.
//! - After boot it allocates nothing by itself.
//! - No input from user space can make it panic, hang or leak: every system call is decoded
//!   and checked before anything changes, and a bad one returns an error code.
//! - Machine facts come from the device tree; unsafe code lives in `arch/` and the MMIO
//!   drivers, each block with its reason.
//!
//! This file is the boot sequence, from `kernel_main` (called by `arch::aarch64::boot` with
//! the MMU on) to the first entry into the root task.
#![no_std]
#![no_main]

mod arch;
mod console;
mod delete;
mod drivers;
mod fastpath;
mod fault;
mod invoke;
mod ipc;
mod object;
mod platform;
mod root_task;
mod sched;
mod syscall;
mod trap;

use arch::mmu::{DTB_WINDOW, DTB_WINDOW_SIZE, KernelTables, phys_to_virt};
use arch::{cpu, exception, gic::Gic, timer};
use kernel_core::machine::{GicInfo, MachineInfo, MemRange};
use kernel_core::memory::{PhysMap, Use};
use platform::fatal;

/// Where QEMU's `virt` machine puts its PL011: used only to report a missing or unreadable
/// device tree, when nothing else can tell us where a console is.
const FALLBACK_UART: u64 = 0x0900_0000;

const MIB: u64 = 1024 * 1024;

unsafe extern "C" {
    /// First byte of the image (linker script).
    static __kernel_start: u8;
    /// End of the image including .bss (linker script).
    static __kernel_end: u8;
}

/// The kernel's Rust entry, from `boot.rs`: `dtb_pa` is what the boot loader passed in x0,
/// `image_pa` the physical address of the image, `entry_el` the exception level we started in.
pub extern "C" fn kernel_main(dtb_pa: u64, image_pa: u64, entry_el: u64) -> ! {
    let mut tables = KernelTables::new(image_pa);
    let dtb = match device_tree(dtb_pa) {
        Ok(dtb) => dtb,
        Err(why) => early_fatal(&mut tables, format_args!("{why}")),
    };
    let machine = match MachineInfo::parse(dtb) {
        Ok(m) => m,
        Err(e) => early_fatal(&mut tables, format_args!("device tree: {e}")),
    };
    platform::set_psci(machine.psci);

    for r in &machine.ram {
        if tables.map_linear(r.base, r.size).is_err() {
            early_fatal(&mut tables, format_args!("cannot map RAM at {:#x}", r.base));
        }
    }
    let uart = match tables.map_device(machine.uart.base, machine.uart.size) {
        Ok(va) => va,
        Err(_) => early_fatal(&mut tables, format_args!("cannot map the UART")),
    };
    // SAFETY: `uart` maps the device tree's PL011 as device memory for good; only the
    // console drives it.
    console::set(unsafe { drivers::pl011::Pl011::new(uart) });
    banner(&machine, entry_el);

    let image_size = kernel_image_size();
    let phys = physical_memory(&machine, image_pa, image_size, dtb_pa, dtb.len() as u64);

    set_up_interrupts(&machine, &mut tables);
    kernel_selftest(machine.bootargs);

    let Some(initrd) = machine.initrd else {
        fatal(format_args!("no initrd"))
    };
    start_root_task(&machine, initrd, phys)
}

/// The device tree, through the boot window.
fn device_tree(dtb_pa: u64) -> Result<&'static [u8], &'static str> {
    if dtb_pa == 0 {
        return Err("no device tree (x0 = 0 at entry; boot the Image, not the ELF)");
    }
    let offset = dtb_pa & (DTB_WINDOW_SIZE / 2 - 1);
    let window = DTB_WINDOW + offset;
    let room = (DTB_WINDOW_SIZE - offset) as usize;
    // SAFETY: boot.rs mapped 4 MiB of RAM from the 2 MiB block holding `dtb_pa` at
    // DTB_WINDOW; `room` bytes from `window` stay inside it, and nothing writes there.
    let mapped = unsafe { core::slice::from_raw_parts(window as *const u8, room) };
    match kernel_core::machine::fdt_total_size(mapped) {
        Ok(size) if size <= room => Ok(&mapped[..size]),
        Ok(_) => Err("device tree larger than 2 MiB"),
        Err(_) => Err("no valid device tree at the address in x0"),
    }
}

/// A fatal error before the device tree told us where the console is.
fn early_fatal(tables: &mut KernelTables, why: core::fmt::Arguments<'_>) -> ! {
    if let Ok(va) = tables.map_device(FALLBACK_UART, 0x1000) {
        // SAFETY: the fallback PL011 is mapped as device memory for good, and nothing else
        // drives it (the console was not set up).
        console::set(unsafe { drivers::pl011::Pl011::new(va) });
    }
    fatal(why)
}

fn banner(m: &MachineInfo<'_>, entry_el: u64) {
    kprintln!("microkernel {} booting", env!("CARGO_PKG_VERSION"));
    let midr = cpu::midr();
    let el = if entry_el == 2 {
        "entered at EL2, dropped to EL1"
    } else {
        "entered at EL1"
    };
    kprintln!(
        "cpu: {} (MIDR {midr:#010x}), {el}",
        kernel_core::cpu::cpu_name(midr)
    );
    kprintln!("cpus: {} in device tree", m.cpu_count);
    let total: u64 = m.ram.iter().map(|r| r.size).sum();
    kprintln!("ram: {} MiB in {} range(s)", total / MIB, m.ram.len());
    for r in &m.ram {
        kprintln!("  {:#x}..{:#x}", r.base, r.base + r.size);
    }
    match m.initrd {
        Some(r) => kprintln!("initrd: {} bytes at {:#x}", r.size, r.base),
        None => kprintln!("initrd: none"),
    }
    match &m.gic {
        GicInfo::V2 {
            distributor,
            cpu_interface,
        } => kprintln!(
            "gic: v2, distributor {:#x}, cpu interface {:#x}",
            distributor.base,
            cpu_interface.base
        ),
        GicInfo::V3 {
            distributor,
            redistributors,
        } => kprintln!(
            "gic: v3, distributor {:#x}, redistributors {:#x}",
            distributor.base,
            redistributors.base
        ),
    }
    kprintln!(
        "timer: virtual timer INTID {}, counter {} Hz, tick {} Hz",
        m.timer_intid.virt,
        timer::frequency(),
        timer::TICK_HZ
    );
    kprintln!("virtio-mmio: {} slot(s)", m.virtio_mmio.len());
    kprintln!("bootargs: \"{}\"", m.bootargs);
}

fn kernel_image_size() -> u64 {
    let start = &raw const __kernel_start as u64;
    let end = &raw const __kernel_end as u64;
    end - start
}

/// Accounts for every byte of RAM: what the kernel, device tree, initrd and firmware use,
/// and what is free.
fn physical_memory(
    m: &MachineInfo<'_>,
    image_pa: u64,
    image_size: u64,
    dtb_pa: u64,
    dtb_size: u64,
) -> PhysMap {
    let mut phys = PhysMap::new(&m.ram).unwrap_or_else(|e| fatal(format_args!("memory map: {e}")));
    let mut reserve = |base: u64, size: u64, what: Use| {
        if let Err(e) = phys.reserve(MemRange { base, size }, what) {
            fatal(format_args!(
                "memory map: cannot reserve {base:#x}+{size:#x}: {e}"
            ));
        }
    };
    reserve(image_pa, image_size, Use::Kernel);
    reserve(dtb_pa, dtb_size, Use::DeviceTree);
    if let Some(r) = m.initrd {
        reserve(r.base, r.size, Use::Initrd);
    }
    for r in &m.reserved {
        reserve(r.base, r.size, Use::Firmware);
    }
    phys
}

fn print_memory(phys: &PhysMap) {
    let kib = |what| phys.total_reserved(what) / 1024;
    kprintln!(
        "memory: {} KiB free in {} range(s); kernel {} KiB, device tree {} KiB, initrd {} KiB, firmware {} KiB, init {} KiB",
        phys.total_free() / 1024,
        phys.free().count(),
        kib(Use::Kernel),
        kib(Use::DeviceTree),
        kib(Use::Initrd),
        kib(Use::Firmware),
        kib(Use::BootAlloc)
    );
}

fn set_up_interrupts(m: &MachineInfo<'_>, tables: &mut KernelTables) {
    let mut map = |r: MemRange| {
        tables
            .map_device(r.base, r.size)
            .unwrap_or_else(|_| fatal(format_args!("cannot map the GIC at {:#x}", r.base)))
    };
    let gic = match &m.gic {
        GicInfo::V2 {
            distributor,
            cpu_interface,
        } => {
            let (d, c) = (map(*distributor), map(*cpu_interface));
            // SAFETY: both regions are mapped as device memory for good; only `Gic` drives them.
            unsafe { Gic::new_v2(d, c) }
        }
        GicInfo::V3 {
            distributor,
            redistributors,
        } => {
            // Only the frames of the cores the device tree lists (128 KiB each).
            let size = redistributors.size.min(m.cpu_count as u64 * 0x2_0000);
            let d = map(*distributor);
            let r = map(MemRange {
                base: redistributors.base,
                size,
            });
            // SAFETY: as above, `size` bytes of redistributor frames are mapped.
            unsafe { Gic::new_v3(d, r, size, cpu::affinity()) }
                .unwrap_or_else(|| fatal(format_args!("gic: no redistributor for this core")))
        }
    };
    gic.enable(m.timer_intid.virt);
    platform::set(platform::Platform {
        gic,
        timer_intid: m.timer_intid.virt,
    });
    if !timer::start() {
        fatal(format_args!("timer: CNTFRQ_EL0 is zero"));
    }
    cpu::enable_user_access();
}

/// `kernel.selftest=data-abort` makes the kernel fault on purpose, so the boot tests can see
/// that kernel exceptions are reported.
fn kernel_selftest(bootargs: &str) {
    let Some(test) = abi::bootinfo::bootarg(bootargs.as_bytes(), "kernel.selftest") else {
        return;
    };
    match test {
        b"data-abort" => {
            kprintln!("kernel: self-test: reading an unmapped kernel address");
            cpu::read_unmapped_kernel_address();
        }
        other => kprintln!(
            "kernel: unknown self-test {:?}",
            core::str::from_utf8(other).unwrap_or("?")
        ),
    }
}

fn start_root_task(m: &MachineInfo<'_>, initrd: MemRange, mut phys: PhysMap) -> ! {
    // SAFETY: the initrd lies in RAM (the memory map reserved it, so nothing else is placed
    // there), which the linear map covers; nothing writes it.
    let archive = unsafe {
        core::slice::from_raw_parts(phys_to_virt(initrd.base) as *const u8, initrd.size as usize)
    };
    let facts = root_task::BootFacts {
        bootargs: m.bootargs,
        initrd,
        counter_frequency: timer::frequency(),
        tick_hz: timer::TICK_HZ,
    };
    arch::mmu::init_asids();
    object::vspace::init();
    match root_task::create(archive, &mut phys, m, &facts) {
        Ok(init) => {
            print_memory(&phys);
            kprintln!("kernel: starting init at {:#x}", init.get().ctx.elr);
            exception::enter_user(sched::schedule())
        }
        Err(e) => fatal(format_args!("{e}")),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::seize();
    kprintln!("KERNEL PANIC: {info}");
    platform::power_off()
}
