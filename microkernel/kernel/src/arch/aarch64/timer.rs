//! The generic timer's EL1 virtual timer as the periodic tick (ARM ARM D11).

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0};
use core::sync::atomic::{AtomicU64, Ordering};
use tock_registers::interfaces::{Readable, Writeable};

/// Scheduler ticks per second.
pub const TICK_HZ: u64 = 100;

static INTERVAL: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Counter ticks per second (CNTFRQ_EL0, set by the firmware; 62.5 MHz on QEMU 7.2).
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Starts the periodic tick. Returns false if the counter frequency is unusable.
pub fn start() -> bool {
    let interval = frequency() / TICK_HZ;
    if interval == 0 {
        return false;
    }
    INTERVAL.store(interval, Ordering::Relaxed);
    CNTV_CVAL_EL0.set(CNTVCT_EL0.get() + interval);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    true
}

/// Handles the timer interrupt: counts the tick and sets the next deadline. Deadlines are
/// spaced from the previous one, not from now, so the tick does not drift; after a long
/// stall missed ticks are skipped rather than replayed.
pub fn on_interrupt() {
    let interval = INTERVAL.load(Ordering::Relaxed);
    let now = CNTVCT_EL0.get();
    let mut next = CNTV_CVAL_EL0.get() + interval;
    if next <= now {
        next = now + interval;
    }
    CNTV_CVAL_EL0.set(next);
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Ticks since the timer started.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
