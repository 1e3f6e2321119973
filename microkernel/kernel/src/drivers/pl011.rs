//! PL011 UART, transmit side only (ARM PrimeCell UART PL011 TRM, DDI 0183, section 3).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {
    u32,
    /// Flag register (3.3.3).
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Line control register (3.3.7).
    LCR_H [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        /// FIFOs enabled.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// Control register (3.3.8).
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    pub Registers {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x2c => LCR_H: ReadWrite<u32, LCR_H::Register>),
        (0x30 => CR: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x44 => ICR: WriteOnly<u32>),
        (0x48 => @END),
    }
}

/// A PL011 whose registers are mapped at a kernel virtual address.
pub struct Pl011 {
    regs: &'static Registers,
}

// SAFETY: the registers are MMIO, accessed only through volatile reads and writes; the
// console lock serialises every use, so moving the driver between contexts is sound.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be the kernel virtual address of a PL011's registers, mapped as device
    /// memory for the rest of the kernel's life, and no other `Pl011` may drive it.
    pub unsafe fn new(base: u64) -> Self {
        // SAFETY: the caller guarantees `base` maps a PL011 register block for 'static.
        let regs = unsafe { &*(base as *const Registers) };
        Self { regs }
    }

    /// Enables the transmitter with 8-bit words and FIFOs. The baud rate is left as the
    /// firmware set it (QEMU ignores it).
    pub fn init(&self) {
        while self.regs.FR.is_set(FR::BUSY) {}
        self.regs.CR.set(0);
        self.regs.ICR.set(0x7ff);
        self.regs
            .LCR_H
            .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        self.regs
            .CR
            .write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    pub fn write_byte(&self, byte: u8) {
        while self.regs.FR.is_set(FR::TXFF) {}
        self.regs.DR.set(u32::from(byte));
    }

    /// Waits until every queued byte has left the UART.
    pub fn flush(&self) {
        while self.regs.FR.is_set(FR::BUSY) {}
    }
}
