//! Power control through PSCI (Arm DEN 0022, Power State Coordination Interface).

use kernel_core::machine::PsciConduit;

/// PSCI 0.2+ `SYSTEM_OFF` function id (DEN 0022 section 5.1).
const SYSTEM_OFF: u64 = 0x8400_0008;

/// Powers the machine off. Without PSCI, or if the call returns, waits forever.
pub fn system_off(conduit: Option<PsciConduit>) -> ! {
    match conduit {
        // SAFETY: SYSTEM_OFF does not return on success; the firmware (QEMU) owns the call.
        Some(PsciConduit::Hvc) => unsafe {
            core::arch::asm!("hvc #0", inout("x0") SYSTEM_OFF => _, options(nostack))
        },
        // SAFETY: as above, through the secure monitor.
        Some(PsciConduit::Smc) => unsafe {
            core::arch::asm!("smc #0", inout("x0") SYSTEM_OFF => _, options(nostack))
        },
        None => {}
    }
    super::cpu::halt()
}
