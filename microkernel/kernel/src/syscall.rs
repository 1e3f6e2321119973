//! System call decoding and dispatch (numbers and convention: `abi::syscall`).

use crate::arch::exception::UserContext;
use crate::arch::timer;
use crate::{console, kprintln, platform};
use abi::syscall::{PUTSTR_REGS, unpack_putstr};
use abi::{Error, Syscall};

/// Performs the system call in `context` and writes its results back into it.
pub fn handle(context: &mut UserContext) {
    let result = match Syscall::try_from(context.x[8]) {
        Ok(Syscall::DebugPutStr) => put_str(context),
        Ok(Syscall::DebugPowerOff) => {
            kprintln!("kernel: power off requested by user space");
            platform::power_off()
        }
        Ok(Syscall::DebugTicks) => {
            context.x[1] = timer::ticks();
            context.x[2] = timer::TICK_HZ;
            Ok(())
        }
        Err(_) => Err(Error::InvalidSyscall),
    };
    context.x[0] = match result {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
}

fn put_str(context: &UserContext) -> Result<(), Error> {
    let mut regs = [0u64; PUTSTR_REGS];
    regs.copy_from_slice(&context.x[1..=PUTSTR_REGS]);
    let (bytes, len) = unpack_putstr(context.x[0], &regs).ok_or(Error::InvalidArgument)?;
    console::write_bytes(&bytes[..len]);
    Ok(())
}
