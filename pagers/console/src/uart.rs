//! The PL011's registers as the console server drives them (ARM PrimeCell UART PL011 TRM,
//! DDI 0183): init mapped the UART's page as device memory at `CONSOLE_MMIO_WINDOW`; the
//! kernel enabled the UART, its FIFOs, transmitter and receiver at boot, and still writes
//! its own fatal messages to it.

/// Data register: a byte to send, or the next byte received.
const DR: usize = 0x00;
/// Flag register.
const FR: usize = 0x18;
/// Interrupt mask set/clear, masked interrupt status, interrupt clear.
const IMSC: usize = 0x38;
const ICR: usize = 0x44;
/// FR: receive FIFO empty, transmit FIFO full, busy sending.
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const FR_BUSY: u32 = 1 << 3;
/// IMSC/ICR: receive, and receive timeout (bytes wait in the FIFO below its level).
const INT_RX: u32 = 1 << 4;
const INT_RT: u32 = 1 << 6;
/// The registers' span (checked against the mapping).
const SPAN: usize = 0x48;

/// The UART's registers.
pub struct Uart {
    base: usize,
}

impl Uart {
    /// The UART whose registers are at `base`, inside a mapping of `mapped` bytes; `None`
    /// if they do not fit in it or are not word-aligned.
    pub fn at(base: u64, mapped: u64) -> Option<Self> {
        let base = usize::try_from(base).ok()?;
        (mapped >= SPAN as u64 && base % 4 == 0).then_some(Self { base })
    }

    fn read(&self, reg: usize) -> u32 {
        // SAFETY: `base` is the UART's register block, mapped as device memory for the
        // server's whole life (init maps it before the server runs; `Uart::at` checked it
        // spans every register used), and `reg` is a word-aligned register offset in it.
        unsafe { core::ptr::read_volatile((self.base + reg) as *const u32) }
    }

    fn write(&self, reg: usize, value: u32) {
        // SAFETY: as in `read`; writes to these registers touch only the UART.
        unsafe { core::ptr::write_volatile((self.base + reg) as *mut u32, value) }
    }

    /// Unmasks the receive interrupts (a byte arrived, or bytes wait in the FIFO).
    pub fn enable_receive(&self) {
        self.write(ICR, INT_RX | INT_RT);
        self.write(IMSC, INT_RX | INT_RT);
    }

    /// The next received byte, if any.
    pub fn receive(&self) -> Option<u8> {
        if self.read(FR) & FR_RXFE != 0 {
            return None;
        }
        Some(self.read(DR) as u8)
    }

    /// Clears the receive interrupts (before the FIFO is emptied).
    pub fn clear_receive(&self) {
        self.write(ICR, INT_RX | INT_RT);
    }

    /// Sends `bytes`, a newline as CR LF (as the kernel's console does).
    pub fn send(&self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    fn put(&self, b: u8) {
        while self.read(FR) & FR_TXFF != 0 {}
        self.write(DR, u32::from(b));
    }

    /// Waits until every byte has left the UART.
    pub fn drain(&self) {
        while self.read(FR) & FR_BUSY != 0 {}
    }
}
