//! Threads running init's code: in init's own VSpace, or in a new VSpace that maps init's
//! image frames at the same addresses (so the code runs there and `.data`/`.bss` are shared
//! memory between the two address spaces).
//!
//! A thread gets its own stack (16 KiB, with an unmapped guard page below) and, if asked, an
//! IPC buffer; both are also mapped in init's VSpace at the same address, so init can look
//! at them. It starts in [`trampoline`], which registers the IPC buffer with libmk, runs the
//! thread's function and then suspends the thread.

use crate::alloc::{Alloc, CNODE, PAGE, Source, Tables, VSPACE};
use abi::Error;
use abi::message::NULL_CPTR;
use abi::object::{CapRights, MapFlags, ObjectType};
use libmk::{CNode, Cap, Endpoint, Frame, Tcb, VSpace};

/// log2 of a thread's stack size.
const STACK_BITS: u64 = 14;

/// A VSpace other than init's, with the tables installed in it so far.
pub struct Space {
    pub vspace: Cap<VSpace>,
    tables: Tables,
}

impl Space {
    /// A new, empty VSpace (scoped).
    pub fn new(alloc: &mut Alloc) -> Result<Self, Error> {
        Ok(Self {
            vspace: alloc.obj(ObjectType::VSpace, 0)?,
            tables: Tables::default(),
        })
    }

    /// Installs (scoped) tables for [`va`, `va + pages` pages) as needed.
    pub fn tables_for(&mut self, alloc: &mut Alloc, va: u64, pages: u64) -> Result<(), Error> {
        let mut at = va;
        while at < va + pages.max(1) * PAGE {
            alloc.ensure_tables(self.vspace, at, &mut self.tables, Source::Scope)?;
            at = crate::alloc::table_base(at, 3) + (1 << crate::alloc::table_span_bits(3));
        }
        Ok(())
    }

    /// `FrameMap` into this VSpace, installing the tables first.
    pub fn map(
        &mut self,
        alloc: &mut Alloc,
        frame: Cap<Frame>,
        va: u64,
        flags: MapFlags,
        first_page: u64,
        count: u64,
    ) -> Result<(), Error> {
        self.tables_for(alloc, va, count)?;
        frame.map(self.vspace, va, flags, first_page, count)
    }

    /// Maps every frame of init's image at its address with its flags, through copies of
    /// init's frame capabilities (so ending the scope removes exactly these mappings).
    pub fn map_image(&mut self, alloc: &mut Alloc) -> Result<(), Error> {
        let info = alloc.info;
        for f in info.image_frames() {
            let copy = alloc.slot()?;
            CNODE.copy(copy, CNODE, f.slot, CapRights::ALL)?;
            self.map(
                alloc,
                Cap::from_cptr(copy),
                f.vaddr,
                MapFlags(f.flags),
                0,
                1,
            )?;
        }
        Ok(())
    }
}

/// How to make a thread.
#[derive(Clone, Copy)]
pub struct Config {
    pub priority: u64,
    pub fault_endpoint: Option<Cap<Endpoint>>,
    pub ipc_buffer: bool,
    pub cspace: Cap<CNode>,
}

impl Config {
    /// Priority `priority`, init's CSpace, an IPC buffer, no fault endpoint.
    pub const fn new(priority: u64) -> Self {
        Self {
            priority,
            fault_endpoint: None,
            ipc_buffer: true,
            cspace: CNODE,
        }
    }
}

/// A configured thread.
#[derive(Clone, Copy)]
pub struct Thread {
    pub tcb: Cap<Tcb>,
    /// Its stack's top (initial `sp`).
    pub sp: u64,
    /// Where its IPC buffer is mapped (0: none), in its VSpace and in init's.
    pub ipc_va: u64,
}

impl Thread {
    /// A configured, not yet started thread (all its objects scoped), in init's VSpace or
    /// in `space`.
    pub fn new(alloc: &mut Alloc, cfg: Config, space: Option<&mut Space>) -> Result<Self, Error> {
        let tcb: Cap<Tcb> = alloc.obj(ObjectType::Tcb, 0)?;
        let (stack, stack_va) = alloc.mapped_frame(STACK_BITS, MapFlags::RW)?;
        let stack_pages = (1 << STACK_BITS) / PAGE;
        let (ipc_frame, ipc_va) = if cfg.ipc_buffer {
            let (f, va) = alloc.mapped_frame(12, MapFlags::RW)?;
            (Some(f), va)
        } else {
            (None, 0)
        };
        let vspace = match space {
            Some(space) => {
                space.map(alloc, stack, stack_va, MapFlags::RW, 0, stack_pages)?;
                if let Some(f) = ipc_frame {
                    space.map(alloc, f, ipc_va, MapFlags::RW, 0, 1)?;
                }
                space.vspace
            }
            None => VSPACE,
        };
        tcb.configure(
            cfg.cspace,
            vspace,
            ipc_frame.map(|f| (f, ipc_va)),
            cfg.fault_endpoint,
            cfg.priority,
        )?;
        Ok(Self {
            tcb,
            sp: stack_va + (1 << STACK_BITS),
            ipc_va,
        })
    }

    /// Starts the thread in [`trampoline`], which runs `f(arg)` and then suspends it
    /// (`TcbWriteRegisters` then `TcbResume`).
    pub fn run(&self, f: fn(u64), arg: u64) -> Result<(), Error> {
        let entry = trampoline as extern "C" fn(u64, u64, u64, u64) -> ! as usize as u64;
        self.tcb.write_registers(&[
            entry,
            self.sp,
            arg,
            self.ipc_va,
            f as usize as u64,
            self.tcb.cptr(),
        ])?;
        self.tcb.resume()
    }
}

/// Where every thread made by [`Thread::run`] starts: `x0` = the argument, `x1` = its IPC
/// buffer's address (0: none), `x2` = the `fn(u64)` to run, `x3` = its own TCB capability.
extern "C" fn trampoline(arg: u64, ipc_va: u64, f: u64, tcb: u64) -> ! {
    libmk::set_ipc_buffer(ipc_va);
    if let Some(buf) = libmk::ipc_buffer() {
        buf.receive_slot = NULL_CPTR;
    }
    // SAFETY: `Thread::run` put a `fn(u64)` of this program, turned into its address, in x2.
    let f = unsafe { core::mem::transmute::<usize, fn(u64)>(f as usize) };
    f(arg);
    let _ = Cap::<Tcb>::from_cptr(tcb).suspend();
    loop {
        libmk::yield_now();
    }
}
