//! The devices the kernel drives itself, found in the device tree at boot, and power-off.

use crate::arch::{gic::Gic, psci};
use crate::{console, kprintln};
use kernel_core::machine::PsciConduit;
use spin::Once;

pub struct Platform {
    pub gic: Gic,
    /// INTID of the EL1 virtual timer.
    pub timer_intid: u32,
}

// SAFETY: `Gic` holds references to MMIO registers that are accessed only with volatile
// reads and writes; the kernel runs on one core with interrupts masked, so accesses never
// interleave.
unsafe impl Sync for Platform {}
// SAFETY: as above; the platform never moves between cores.
unsafe impl Send for Platform {}

impl Platform {
    /// Interrupts the kernel handles itself, which no user handler may claim.
    pub fn is_kernel_interrupt(&self, intid: u32) -> bool {
        intid == self.timer_intid
    }
}

static PLATFORM: Once<Platform> = Once::new();
static PSCI: Once<Option<PsciConduit>> = Once::new();

pub fn set(platform: Platform) {
    PLATFORM.call_once(|| platform);
}

/// The platform; boot sets it before any exception can reach a handler that asks.
pub fn get() -> &'static Platform {
    match PLATFORM.get() {
        Some(p) => p,
        None => fatal(format_args!(
            "interrupt before the interrupt controller was set up"
        )),
    }
}

/// Records how to reach PSCI, as soon as the device tree has been read.
pub fn set_psci(conduit: Option<PsciConduit>) {
    PSCI.call_once(|| conduit);
}

/// Prints `system off` and turns the machine off (QEMU exits).
pub fn power_off() -> ! {
    kprintln!("system off");
    console::flush();
    psci::system_off(PSCI.get().copied().flatten())
}

/// Reports an unrecoverable boot error and powers off.
pub fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    console::seize();
    kprintln!("FATAL: {args}");
    power_off()
}
