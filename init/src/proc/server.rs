//! Starting the servers (zero, vm, file, shm) from the initrd: everything they will touch is mapped
//! before they run, so they never fault.
//!
//! A server's CNode (radix [`SERVER_RADIX`]), as init fills it:
//!
//! ```text
//!   1 ENDPOINT  its endpoint          16.. the initrd frames, read-only (vm)
//!   2 ZERO      zero's endpoint (vm)  64.. the untyped budget, consecutive
//!   3 NOTIFY    init's notification   first_free_slot: after the budget
//!   4 VSPACE    its VSpace            16.. the interrupt handlers, one per virtio-mmio
//!   5 CNODE     its CNode                  transport (file)
//!   6 DMA       its DMA frame (file); the file server's endpoint (vm)
//!   7 IRQ_NOTIFY the notification its interrupts signal (file); the shm server's
//!               endpoint (vm)
//!   9 TIMER     a timer of its own (vm)
//!  10 NOTIFY    a notification bound to its thread, READ|WRITE (vm)
//! ```
//!
//! (file's budget: 64.. the untypeds for its page-cache frames, then the one for the page
//! tables of its cache window.)
//!
//! The file server also gets the virtio-mmio registers (the device untyped, retyped to
//! frames) mapped at `FILE_MMIO_WINDOW` as device memory, and one physically contiguous
//! frame of DMA memory mapped at `FILE_DMA_WINDOW`.
//!
//! Its address space: the ELF segments, a 64 KiB stack below `USER_STACK_TOP`, the IPC
//! buffer at `USER_IPC_BUFFER`, the startup page (read-only) at `STARTUP_VADDR`, the heap at
//! `SERVER_HEAP_BASE`.

use super::initrd::Initrd;
use super::mem::{Space, Window, retype};
use crate::alloc::{Alloc, CNODE, PAGE};
use abi::Error;
use abi::bootinfo::{BootInfo, bootarg, bootarg_u64};
use abi::object::{CapRights, MapFlags, ObjectType, init_slots};
use liballoc::vec::Vec;
use libmk::{
    CNode, Cap, Endpoint, Frame, IrqControl, IrqHandler, Notification, Tcb, Timer, Untyped,
};
use proto::object::BLOCK_SIZE;
use proto::startup::{
    Budgets, CONSOLE_HEAP_SIZE, CONSOLE_MMIO_WINDOW, FILE_DMA_BITS, FILE_DMA_WINDOW,
    FILE_MMIO_WINDOW, InitrdFrame, SERVER_CONSOLE_SLOT, SERVER_HEAP_BASE, STARTUP_FRAMES, Startup,
    VIRTIO_SLOT_SIZE, ZERO_HEAP_SIZE, console_slots, file_slots, shm_slots, vm_slots, zero_slots,
};
use proto::{STARTUP_VADDR, USER_IPC_BUFFER, USER_STACK_TOP, pid};

/// The images in the initrd that are no programs: the servers' (as `Builder::new` finds
/// them) and init's.
pub const IMAGES: [&str; 6] = ["vm", "zero", "file", "shm-server", "console", "init"];

/// log2 of a server's CNode slots.
pub const SERVER_RADIX: u64 = 10;
/// log2 of vm's CNode slots: a slot per chunk, per page table and per memory-object block
/// it holds.
const VM_RADIX: u64 = 13;
/// vm's slots for the file and shm servers' endpoints.
const SLOT_VM_FILE: u64 = 6;
const SLOT_VM_SHM: u64 = 7;
/// vm's timer and the notification bound to its thread (`vm_slots::TIMER`, `NOTIFY`).
const SLOT_VM_TIMER: u64 = 9;
const SLOT_VM_NOTIFY: u64 = 10;
const SLOT_ENDPOINT: u64 = 1;
const SLOT_ZERO: u64 = 2;
const SLOT_NOTIFY: u64 = 3;
const SLOT_VSPACE: u64 = 4;
const SLOT_CNODE: u64 = 5;
const SLOT_DMA: u64 = 6;
const SLOT_IRQ_NOTIFY: u64 = 7;
const FIRST_IRQ_SLOT: u64 = 16;
const FIRST_INITRD_SLOT: u64 = 16;
const FIRST_UNTYPED_SLOT: u64 = 64;
/// log2 of the untyped a server's objects (but not its heap) are carved from.
const SERVER_UNTYPED_BITS: u64 = 22;
/// log2 of a server's stack.
const STACK_BITS: u64 = 16;
/// log2 of the file server's untyped for the page tables of its page-cache window.
const FILE_TABLES_BITS: u64 = 20;
/// RAM init keeps for itself (tasks' objects), at most half of what is left once the servers
/// are built (so that a small machine still gives zero some); zero gets the rest.
const INIT_RESERVE: u64 = 64 << 20;

const VM_PRIORITY: u64 = 250;
const ZERO_PRIORITY: u64 = 249;
/// The file server runs at the tasks' priority, not above them: its work after a disk
/// interrupt (about 22,000 instructions per 64 KiB block: the completion, its answers to vm's
/// proxy, vm resuming the reader) is done for the reading task, so it takes its turn among
/// the tasks (the kernel queues a thread an interrupt wakes, `sched::make_ready_queued`)
/// instead of running in the middle of another task's page fault. Above the tasks, 1 % of an
/// unrelated task's anonymous faults took 16 times as long beside a cold reader (docs/
/// performance.md, issue 9). The price: a task that computes without blocking delays a
/// completion by up to one time slice.
const FILE_PRIORITY: u64 = super::task::TASK_PRIORITY;
const SHM_PRIORITY: u64 = 247;
/// Above every other server's (but init's): a line it writes to the UART is never cut by
/// another server's message through the kernel's console, and typed keys are echoed at
/// once.
const CONSOLE_PRIORITY: u64 = 251;
/// The console server's slot for init's endpoint (badged `pid::CONSOLE`).
const SLOT_CONSOLE_PROC: u64 = 10;
/// The most virtio-mmio transports the file server gets interrupt handlers for.
const MAX_VIRTIO_SLOTS: u64 = 32;
/// The interrupt of the virtio-mmio transport at `base`, as the device tree gives it (the
/// kernel copies the list into `BootInfo::virtio`).
fn virtio_intid(info: &BootInfo, base: u64) -> Option<u64> {
    info.virtio()
        .iter()
        .find(|v| v.base == base)
        .map(|v| v.intid)
}

/// What init keeps of the servers it started.
pub struct Servers {
    /// vm's endpoint, unbadged (init mints the tasks' badged copies from it).
    pub vm_ep: Cap<Endpoint>,
    /// vm's endpoint badged `pid::INIT`, for init's own calls.
    pub vm_init: Cap<Endpoint>,
    /// init's endpoint, unbadged.
    pub init_ep: Cap<Endpoint>,
    /// The notification bound to init's thread (vm's kill records and init's timer signal
    /// it).
    pub notify: Cap<Notification>,
    /// The file server's endpoint, unbadged (`None` if it could not be started: programs
    /// then run without files).
    pub file_ep: Option<Cap<Endpoint>>,
    /// The shm server's endpoint, unbadged (`None` if it could not be started: programs then
    /// run without shared memory objects).
    pub shm_ep: Option<Cap<Endpoint>>,
    /// The console server's endpoint, unbadged (`None` if it could not be started: tasks
    /// then print nothing and read end of input).
    pub console_ep: Option<Cap<Endpoint>>,
    /// The servers' threads, for when one of them fails.
    pub threads: Vec<ServerThread>,
    /// The untypeds the file server is built from (for its restarts).
    pub file_roots: Roots,
    /// Bytes of RAM given to zero.
    pub zero_bytes: u64,
}

/// A server's thread as init keeps it: its faults reach init (badge `pid | FAULT_BADGE`).
#[derive(Clone, Copy)]
pub struct ServerThread {
    pub name: &'static str,
    pub pid: u64,
    pub tcb: Cap<Tcb>,
}

impl ServerThread {
    pub const fn new(name: &'static str, pid: u64, tcb: Cap<Tcb>) -> Self {
        Self { name, pid, tcb }
    }
}

/// The untypeds a restartable server (file) is built from, kept by init: revoking them
/// takes back everything the server had (its CNode, thread, address space and tables,
/// stack, IPC buffer, heap, page cache, DMA frame, endpoint), and the next instance is
/// built from the same untypeds again, in the same order and sizes.
#[derive(Default)]
pub struct Roots {
    /// Each untyped (in init's CNode) and its size.
    list: Vec<(Cap<Untyped>, u64)>,
    /// How many of `list` the build in progress took.
    next: usize,
    /// The slots of init's CNode the last build filled (objects made from the roots): free
    /// again once the roots are revoked.
    slots: Vec<u64>,
}

impl Roots {
    /// The next untyped of 2^`bits` bytes: the one the earlier build took at this point,
    /// or a new one.
    fn take(&mut self, alloc: &mut Alloc, bits: u64) -> Result<Cap<Untyped>, Error> {
        let ut = match self.list.get(self.next) {
            Some(&(ut, b)) if b == bits => ut,
            Some(_) => return Err(Error::InvalidArgument),
            None => {
                let ut = Cap::from_cptr(alloc.retype_global(ObjectType::Untyped, bits)?);
                self.list.push((ut, bits));
                ut
            }
        };
        self.next += 1;
        Ok(ut)
    }

    /// An untyped of 2^`bits` bytes for the server itself (in a new slot of init's CNode):
    /// a child of a root, so that revoking the root takes it back.
    fn child(&mut self, alloc: &mut Alloc, bits: u64) -> Result<u64, Error> {
        let root = self.take(alloc, bits)?;
        retype::<Untyped>(alloc, root, ObjectType::Untyped, bits).map(|c| c.cptr())
    }

    /// Revokes every root (everything built from them goes, and init's slots that held
    /// it are free again) for the next build.
    pub fn revoke(&mut self, alloc: &mut Alloc) -> Result<(), Error> {
        for &(ut, _) in &self.list {
            CNODE.revoke(ut.cptr())?;
        }
        for s in self.slots.drain(..) {
            let _ = CNODE.delete(s);
            alloc.free_slot(s);
        }
        self.next = 0;
        Ok(())
    }
}

/// A server being built.
struct Builder {
    name: &'static str,
    cnode: Cap<CNode>,
    tcb: Cap<Tcb>,
    space: Space,
    ipc: Cap<Frame>,
    startup: Startup,
    entry: u64,
}

/// Makes init's endpoint and notification (bound to init's thread), builds zero and vm,
/// gives them their budgets and starts them.
pub fn start(
    alloc: &mut Alloc,
    window: &mut Window,
    initrd: &Initrd,
    info: &BootInfo,
) -> Result<Servers, Error> {
    // Heaps and budgets follow the RAM the device tree reports (the full figures from
    // 512 MiB up; a 32 MiB shm budget is 511 blocks, so that a 16 MiB object fits).
    let budgets = Budgets::for_ram(info.ram_total);
    let init_ep: Cap<Endpoint> = Cap::from_cptr(alloc.retype_global(ObjectType::Endpoint, 0)?);
    let notify: Cap<Notification> =
        Cap::from_cptr(alloc.retype_global(ObjectType::Notification, 0)?);
    Cap::<Tcb>::from_cptr(init_slots::TCB).bind_notification(notify)?;
    let vm_ep: Cap<Endpoint> = Cap::from_cptr(alloc.retype_global(ObjectType::Endpoint, 0)?);
    let zero_ep: Cap<Endpoint> = Cap::from_cptr(alloc.retype_global(ObjectType::Endpoint, 0)?);
    let vm_init: Cap<Endpoint> = Cap::from_cptr(alloc.slot()?);
    CNODE.mint(
        vm_init.cptr(),
        CNODE,
        vm_ep.cptr(),
        CapRights::ALL,
        pid::INIT,
    )?;

    let mut vm = Builder::with_radix(
        alloc,
        window,
        initrd,
        ("vm", pid::VM),
        budgets.vm_heap,
        VM_RADIX,
        &mut Roots::default(),
    )?;
    let mut zero = Builder::new(
        alloc,
        window,
        initrd,
        ("zero", pid::ZERO),
        ZERO_HEAP_SIZE,
        &mut Roots::default(),
    )?;

    // vm: its endpoint, zero's (badged, so replies can carry chunks), init's notification,
    // the initrd frames, and an untyped budget for page tables.
    vm.copy_in(SLOT_ENDPOINT, vm_ep.cptr(), CapRights::ALL)?;
    vm.startup.slots[vm_slots::ENDPOINT] = SLOT_ENDPOINT;
    vm.startup.deadline_ms = bootarg_u64(info.bootargs(), "vm.deadline").unwrap_or(0);
    vm.cnode.mint(
        SLOT_ZERO,
        CNODE,
        zero_ep.cptr(),
        CapRights(CapRights::WRITE.0 | CapRights::GRANT.0),
        pid::VM,
    )?;
    vm.startup.slots[vm_slots::ZERO] = SLOT_ZERO;
    vm.cnode
        .mint(SLOT_NOTIFY, CNODE, notify.cptr(), CapRights::WRITE, pid::VM)?;
    vm.startup.slots[vm_slots::INIT_NOTIFY] = SLOT_NOTIFY;
    vm.startup.slots[vm_slots::VSPACE] = SLOT_VSPACE;
    vm.startup.slots[vm_slots::CNODE] = SLOT_CNODE;
    let frames = info.initrd_frames();
    if frames.len() > STARTUP_FRAMES {
        return Err(Error::RangeError);
    }
    for (i, f) in frames.iter().enumerate() {
        let slot = FIRST_INITRD_SLOT + i as u64;
        vm.copy_in(slot, f.slot, CapRights::READ)?;
        vm.startup.initrd_frames[i] = InitrdFrame {
            slot,
            base: f.base,
            size_bits: f.size_bits,
        };
    }
    vm.startup.initrd_frame_count = frames.len() as u64;
    vm.startup.initrd_base = info.initrd.base;
    vm.startup.initrd_size = info.initrd.size;
    let budget = alloc.retype_global(ObjectType::Untyped, budgets.vm_tables_bits)?;
    vm.move_in(alloc, FIRST_UNTYPED_SLOT, budget)?;
    vm.startup.untyped_first = FIRST_UNTYPED_SLOT;
    vm.startup.untyped_count = 1;
    vm.startup.first_free_slot = FIRST_UNTYPED_SLOT + 1;
    give_vm_timer(alloc, &mut vm)?;

    // console: first, so that tasks' output has somewhere to go. Without it the system
    // still runs (tasks print nothing).
    let mut threads = Vec::new();
    let console_ep = optional(
        &mut threads,
        "console",
        pid::CONSOLE,
        start_console(alloc, window, initrd, info, init_ep),
    );

    // file: before zero takes the rest of RAM. Without it the system still runs.
    let mut file_roots = Roots::default();
    let file_ep = optional(
        &mut threads,
        "file",
        pid::FILE,
        start_file(alloc, window, initrd, info, init_ep, &mut file_roots, 0),
    );

    // shm: also before zero. Without it the system still runs.
    let shm_ep = optional(
        &mut threads,
        "shm-server",
        pid::SHM,
        start_shm(alloc, window, initrd, info, init_ep),
    );

    // vm calls the memory-object pagers (badged, so replies can carry block frames).
    for (ep, slot, index) in [
        (file_ep, SLOT_VM_FILE, vm_slots::FILE),
        (shm_ep, SLOT_VM_SHM, vm_slots::SHM),
    ] {
        if let Some(ep) = ep {
            vm.cnode.mint(
                slot,
                CNODE,
                ep.cptr(),
                CapRights(CapRights::WRITE.0 | CapRights::GRANT.0),
                pid::VM,
            )?;
            vm.startup.slots[index] = slot;
        }
    }

    // zero: its endpoint and all the RAM init does not keep, as untyped capabilities.
    zero.copy_in(SLOT_ENDPOINT, zero_ep.cptr(), CapRights::ALL)?;
    zero.startup.slots[zero_slots::ENDPOINT] = SLOT_ENDPOINT;
    zero.startup.slots[zero_slots::VSPACE] = SLOT_VSPACE;
    zero.startup.slots[zero_slots::CNODE] = SLOT_CNODE;
    let free = alloc.free_bytes();
    let mut give = free.saturating_sub(INIT_RESERVE.min(free / 2));
    let mut count = 0u64;
    let mut zero_bytes = 0u64;
    let last_slot = (1u64 << SERVER_RADIX) - 1;
    for bits in (21..=30u64).rev() {
        while give >= 1 << bits && FIRST_UNTYPED_SLOT + count < last_slot {
            let Ok(ut) = alloc.retype_global(ObjectType::Untyped, bits) else {
                break;
            };
            zero.move_in(alloc, FIRST_UNTYPED_SLOT + count, ut)?;
            count += 1;
            give -= 1 << bits;
            zero_bytes += 1 << bits;
        }
    }
    zero.startup.untyped_first = FIRST_UNTYPED_SLOT;
    zero.startup.untyped_count = count;
    zero.startup.first_free_slot = FIRST_UNTYPED_SLOT + count;

    let zero_tcb = zero.start(alloc, window, ZERO_PRIORITY, init_ep)?;
    threads.push(ServerThread::new("zero", pid::ZERO, zero_tcb));
    let vm_tcb = vm.start(alloc, window, VM_PRIORITY, init_ep)?;
    threads.push(ServerThread::new("vm", pid::VM, vm_tcb));
    Ok(Servers {
        vm_ep,
        vm_init,
        init_ep,
        notify,
        file_ep,
        shm_ep,
        console_ep,
        threads,
        file_roots,
        zero_bytes,
    })
}

/// Builds and starts the console server: its endpoint, the UART's page (the device untyped
/// the kernel made for it, retyped to a frame and mapped as device memory at
/// `CONSOLE_MMIO_WINDOW`), the UART's interrupt handler signalling a notification bound to
/// the server's thread, and init's endpoint badged `pid::CONSOLE` (Ctrl-C's `Kill`).
/// An optional server's start: its thread kept among `threads` and its endpoint, or `None`
/// (said on the console) when it could not start: the system runs without it.
fn optional(
    threads: &mut Vec<ServerThread>,
    name: &'static str,
    pid: u64,
    started: Result<(Cap<Endpoint>, Cap<Tcb>), Error>,
) -> Option<Cap<Endpoint>> {
    match started {
        Ok((ep, tcb)) => {
            threads.push(ServerThread::new(name, pid, tcb));
            Some(ep)
        }
        Err(e) => {
            rt::println!("init: server {name} did not start: {e:?}");
            None
        }
    }
}

fn start_console(
    alloc: &mut Alloc,
    window: &mut Window,
    initrd: &Initrd,
    info: &BootInfo,
    init_ep: Cap<Endpoint>,
) -> Result<(Cap<Endpoint>, Cap<Tcb>), Error> {
    let uart = info.uart;
    let device = info
        .untyped()
        .iter()
        .find(|u| {
            u.device != 0 && u.size_bits == 12 && u.base <= uart.base && uart.base - u.base < PAGE
        })
        .copied()
        .ok_or(Error::InvalidArgument)?;
    let mut con = Builder::new(
        alloc,
        window,
        initrd,
        ("console", pid::CONSOLE),
        CONSOLE_HEAP_SIZE,
        &mut Roots::default(),
    )?;
    let ut = con.space.untyped();
    let ep: Cap<Endpoint> = retype(alloc, ut, ObjectType::Endpoint, 0)?;
    let irq_notify: Cap<Notification> = retype(alloc, ut, ObjectType::Notification, 0)?;
    con.copy_in(SLOT_ENDPOINT, ep.cptr(), CapRights::ALL)?;
    con.startup.slots[console_slots::ENDPOINT] = SLOT_ENDPOINT;
    con.startup.slots[console_slots::VSPACE] = SLOT_VSPACE;
    con.startup.slots[console_slots::CNODE] = SLOT_CNODE;
    con.copy_in(SLOT_IRQ_NOTIFY, irq_notify.cptr(), CapRights::READ)?;
    con.startup.slots[console_slots::IRQ_NOTIFY] = SLOT_IRQ_NOTIFY;
    con.tcb.bind_notification(irq_notify)?;
    con.cnode.mint(
        SLOT_CONSOLE_PROC,
        CNODE,
        init_ep.cptr(),
        CapRights::WRITE,
        pid::CONSOLE,
    )?;
    con.startup.slots[console_slots::PROC] = SLOT_CONSOLE_PROC;

    let mmio: Cap<Frame> = retype(alloc, Cap::from_cptr(device.slot), ObjectType::Frame, 12)?;
    con.space
        .map(alloc, mmio, CONSOLE_MMIO_WINDOW, MapFlags::RW, 0, 1)?;
    con.startup.mmio_size = PAGE - (uart.base - device.base);
    con.startup.mmio_offset = uart.base - device.base;

    if uart.intid != 0 {
        let irq_control: Cap<IrqControl> = Cap::from_cptr(init_slots::IRQ_CONTROL);
        let handler: Cap<IrqHandler> = Cap::from_cptr(alloc.slot()?);
        irq_control.get(uart.intid, CNODE, handler.cptr())?;
        let badged = alloc.slot()?;
        CNODE.mint(badged, CNODE, irq_notify.cptr(), CapRights::WRITE, 1)?;
        // The kernel keeps the notification and badge, not the capability.
        let set = handler.set_notification(Cap::from_cptr(badged));
        CNODE.delete(badged)?;
        alloc.free_slot(badged);
        set?;
        con.move_in(alloc, FIRST_IRQ_SLOT, handler.cptr())?;
        con.startup.slots[console_slots::IRQ] = FIRST_IRQ_SLOT;
    }
    con.startup.stop_at = bootarg_u64(info.bootargs(), "console.stop").unwrap_or(0);
    con.startup.untyped_first = FIRST_UNTYPED_SLOT;
    con.startup.untyped_count = 0;
    con.startup.first_free_slot = FIRST_UNTYPED_SLOT;
    let tcb = con.start(alloc, window, CONSOLE_PRIORITY, init_ep)?;
    Ok((ep, tcb))
}

/// vm's deadlines: a timer and a notification bound to its thread (so that the timer's
/// signal ends vm's `Recv` on its endpoint), both from vm's own untyped and moved into its
/// CNode (`vm_slots::TIMER`, `vm_slots::NOTIFY`). init keeps no capability to either.
fn give_vm_timer(alloc: &mut Alloc, vm: &mut Builder) -> Result<(), Error> {
    let ut = vm.space.untyped();
    let timer: Cap<Timer> = retype(alloc, ut, ObjectType::Timer, 0)?;
    let notify: Cap<Notification> = retype(alloc, ut, ObjectType::Notification, 0)?;
    vm.tcb.bind_notification(notify)?;
    vm.move_in(alloc, SLOT_VM_TIMER, timer.cptr())?;
    vm.move_in(alloc, SLOT_VM_NOTIFY, notify.cptr())?;
    vm.startup.slots[vm_slots::TIMER] = SLOT_VM_TIMER;
    vm.startup.slots[vm_slots::NOTIFY] = SLOT_VM_NOTIFY;
    Ok(())
}

/// Builds and starts the shm server: its endpoint and an untyped budget for its block
/// frames and the page tables mapping them.
fn start_shm(
    alloc: &mut Alloc,
    window: &mut Window,
    initrd: &Initrd,
    info: &BootInfo,
    init_ep: Cap<Endpoint>,
) -> Result<(Cap<Endpoint>, Cap<Tcb>), Error> {
    let ep: Cap<Endpoint> = Cap::from_cptr(alloc.retype_global(ObjectType::Endpoint, 0)?);
    let budgets = Budgets::for_ram(info.ram_total);
    let mut shm = Builder::new(
        alloc,
        window,
        initrd,
        ("shm-server", pid::SHM),
        budgets.shm_heap,
        &mut Roots::default(),
    )?;
    shm.copy_in(SLOT_ENDPOINT, ep.cptr(), CapRights::ALL)?;
    shm.startup.slots[shm_slots::ENDPOINT] = SLOT_ENDPOINT;
    shm.startup.slots[shm_slots::VSPACE] = SLOT_VSPACE;
    shm.startup.slots[shm_slots::CNODE] = SLOT_CNODE;
    let budget = alloc.retype_global(ObjectType::Untyped, budgets.shm_bits)?;
    shm.move_in(alloc, FIRST_UNTYPED_SLOT, budget)?;
    shm.startup.untyped_first = FIRST_UNTYPED_SLOT;
    shm.startup.untyped_count = 1;
    shm.startup.first_free_slot = FIRST_UNTYPED_SLOT + 1;
    shm.startup.stop_at = bootarg_u64(info.bootargs(), "shm.stop").unwrap_or(0);
    shm.startup.hang_at = bootarg_u64(info.bootargs(), "shm.hang").unwrap_or(0);
    shm.startup.stop_block = bootarg_u64(info.bootargs(), "shm.stop.block").unwrap_or(0);
    shm.startup.hang_block = bootarg_u64(info.bootargs(), "shm.hang.block").unwrap_or(0);
    let tcb = shm.start(alloc, window, SHM_PRIORITY, init_ep)?;
    Ok((ep, tcb))
}

/// The device untyped (the virtio-mmio transports) the file server's registers come from.
fn device_untyped(info: &BootInfo) -> Option<abi::bootinfo::UntypedDesc> {
    let first = info.virtio().first()?.base;
    info.untyped()
        .iter()
        .find(|u| u.device != 0 && u.base <= first && first - u.base < 1u64 << u.size_bits)
        .copied()
}

/// Builds and starts the file server, every object of it from `roots` (so that revoking
/// them takes it all back: [`restart_file`]): its endpoint, the virtio-mmio registers
/// (device memory), a DMA frame, and an interrupt handler per transport signalling one
/// notification with badge `1 << transport`, bound to the server's thread. `instance` counts restarts (0: the first);
/// the test hook `file.stop=N` applies to the first instance only, or to every one with
/// `file.stop.all=1` (scenario `server-restart-limit`).
fn start_file(
    alloc: &mut Alloc,
    window: &mut Window,
    initrd: &Initrd,
    info: &BootInfo,
    init_ep: Cap<Endpoint>,
    roots: &mut Roots,
    instance: u32,
) -> Result<(Cap<Endpoint>, Cap<Tcb>), Error> {
    let before = alloc.used_slots();
    let built = build_file(alloc, window, initrd, info, init_ep, roots, instance);
    roots.slots = alloc
        .taken_since(&before)
        .into_iter()
        .filter(|&s| !roots.list.iter().any(|&(ut, _)| ut.cptr() == s))
        .collect();
    built
}

fn build_file(
    alloc: &mut Alloc,
    window: &mut Window,
    initrd: &Initrd,
    info: &BootInfo,
    init_ep: Cap<Endpoint>,
    roots: &mut Roots,
    instance: u32,
) -> Result<(Cap<Endpoint>, Cap<Tcb>), Error> {
    let device = device_untyped(info).ok_or(Error::InvalidArgument)?;
    let budgets = Budgets::for_ram(info.ram_total);
    let mut file = Builder::new(
        alloc,
        window,
        initrd,
        ("file", pid::FILE),
        budgets.file_heap,
        roots,
    )?;
    let ut = file.space.untyped();
    let ep: Cap<Endpoint> = retype(alloc, ut, ObjectType::Endpoint, 0)?;
    let irq_notify: Cap<Notification> = retype(alloc, ut, ObjectType::Notification, 0)?;
    let every = bootarg(info.bootargs(), "file.stop.all") == Some(b"1".as_slice());
    if instance == 0 || every {
        file.startup.stop_at = bootarg_u64(info.bootargs(), "file.stop").unwrap_or(0);
        file.startup.hang_at = bootarg_u64(info.bootargs(), "file.hang").unwrap_or(0);
        file.startup.stop_block = bootarg_u64(info.bootargs(), "file.stop.block").unwrap_or(0);
        file.startup.hang_block = bootarg_u64(info.bootargs(), "file.hang.block").unwrap_or(0);
    }
    file.copy_in(SLOT_ENDPOINT, ep.cptr(), CapRights::ALL)?;
    file.startup.slots[file_slots::ENDPOINT] = SLOT_ENDPOINT;
    file.startup.slots[file_slots::VSPACE] = SLOT_VSPACE;
    file.startup.slots[file_slots::CNODE] = SLOT_CNODE;
    file.copy_in(SLOT_IRQ_NOTIFY, irq_notify.cptr(), CapRights::READ)?;
    file.startup.slots[file_slots::IRQ_NOTIFY] = SLOT_IRQ_NOTIFY;
    // Bound to the server's thread: its `Recv` on the endpoint also returns the disk's
    // interrupt (label `NOTIFICATION_LABEL`), so that it serves requests while reads are in
    // flight and completes them when the interrupt comes.
    file.tcb.bind_notification(irq_notify)?;

    // The registers: the device untyped as one frame, mapped as device memory (the kernel
    // maps frames of device untyped that way).
    let mmio_bits = device.size_bits.clamp(12, 21);
    let mmio: Cap<Frame> = retype(
        alloc,
        Cap::from_cptr(device.slot),
        ObjectType::Frame,
        mmio_bits,
    )?;
    let mmio_size = 1u64 << mmio_bits;
    file.space.map(
        alloc,
        mmio,
        FILE_MMIO_WINDOW,
        MapFlags::RW,
        0,
        mmio_size / PAGE,
    )?;
    file.startup.mmio_size = mmio_size;

    // DMA memory: one frame, so physically contiguous; the server asks the kernel for its
    // physical address.
    let dma_ut = roots.take(alloc, FILE_DMA_BITS)?;
    let dma: Cap<Frame> = retype(alloc, dma_ut, ObjectType::Frame, FILE_DMA_BITS)?;
    let dma_size = 1u64 << FILE_DMA_BITS;
    file.space.map(
        alloc,
        dma,
        FILE_DMA_WINDOW,
        MapFlags::RW,
        0,
        dma_size / PAGE,
    )?;
    file.copy_in(SLOT_DMA, dma.cptr(), CapRights::ALL)?;
    file.startup.slots[file_slots::DMA_FRAME] = SLOT_DMA;
    file.startup.dma_size = dma_size;

    // One handler per transport, each signalling the notification with its own bit.
    let transports = (mmio_size / VIRTIO_SLOT_SIZE).min(MAX_VIRTIO_SLOTS);
    let irq_control: Cap<IrqControl> = Cap::from_cptr(init_slots::IRQ_CONTROL);
    let badged = alloc.slot()?;
    for i in 0..transports {
        let handler: Cap<IrqHandler> = Cap::from_cptr(alloc.slot()?);
        let intid =
            virtio_intid(info, device.base + i * VIRTIO_SLOT_SIZE).ok_or(Error::InvalidArgument)?;
        irq_control.get(intid, CNODE, handler.cptr())?;
        CNODE.mint(badged, CNODE, irq_notify.cptr(), CapRights::WRITE, 1 << i)?;
        // The kernel keeps the notification and badge, not the capability.
        let set = handler.set_notification(Cap::from_cptr(badged));
        CNODE.delete(badged)?;
        set?;
        file.move_in(alloc, FIRST_IRQ_SLOT + i, handler.cptr())?;
    }
    alloc.free_slot(badged);
    file.startup.slots[file_slots::IRQ_FIRST] = FIRST_IRQ_SLOT;

    // The page cache's budget: untypeds for its 64 KiB block frames (as many as the
    // `file.cache=` bootarg asks, within limits; a power of two each, together exactly the
    // blocks), then one for the page tables mapping them (the last).
    let blocks = bootarg_u64(info.bootargs(), "file.cache")
        .unwrap_or(budgets.file_cache_blocks)
        .clamp(1, budgets.file_cache_max);
    let mut slot = FIRST_UNTYPED_SLOT;
    let mut left = blocks * BLOCK_SIZE;
    while left > 0 {
        let bits = u64::from(63 - left.leading_zeros());
        let frames = roots.child(alloc, bits)?;
        file.move_in(alloc, slot, frames)?;
        slot += 1;
        left -= 1 << bits;
    }
    let tables = roots.child(alloc, FILE_TABLES_BITS)?;
    file.move_in(alloc, slot, tables)?;
    file.startup.untyped_first = FIRST_UNTYPED_SLOT;
    file.startup.untyped_count = slot + 1 - FIRST_UNTYPED_SLOT;
    file.startup.cache_blocks = blocks;
    file.startup.first_free_slot = slot + 1;
    let tcb = file.start(alloc, window, FILE_PRIORITY, init_ep)?;
    Ok((ep, tcb))
}

/// Builds a new instance of the file server after the last one failed (its thread and
/// endpoint already deleted): revokes its roots (every object it had goes, its interrupt
/// handlers with its CNode) and the device untyped (its register frame), and builds and
/// starts it from them again. The new driver resets the device (`VirtIOBlk::new`).
pub fn restart_file(
    alloc: &mut Alloc,
    window: &mut Window,
    initrd: &Initrd,
    info: &BootInfo,
    init_ep: Cap<Endpoint>,
    roots: &mut Roots,
    instance: u32,
) -> Result<(Cap<Endpoint>, Cap<Tcb>), Error> {
    roots.revoke(alloc)?;
    let device = device_untyped(info).ok_or(Error::InvalidArgument)?;
    CNODE.revoke(device.slot)?;
    start_file(alloc, window, initrd, info, init_ep, roots, instance)
}

impl Builder {
    /// The server's objects, its image, stack, IPC buffer and heap mapped; not started.
    fn new(
        alloc: &mut Alloc,
        window: &mut Window,
        initrd: &Initrd,
        who: (&'static str, u64),
        heap_size: u64,
        roots: &mut Roots,
    ) -> Result<Self, Error> {
        Self::with_radix(alloc, window, initrd, who, heap_size, SERVER_RADIX, roots)
    }

    /// [`Builder::new`] with a CNode of 2^`radix` slots.
    fn with_radix(
        alloc: &mut Alloc,
        window: &mut Window,
        initrd: &Initrd,
        (name, pid): (&'static str, u64),
        heap_size: u64,
        radix: u64,
        roots: &mut Roots,
    ) -> Result<Self, Error> {
        let file = initrd.find(name).ok_or(Error::InvalidArgument)?;
        let image = kernel_core::elf::parse_user_image(file).map_err(|e| {
            rt::println!("init: {name}: {e}");
            Error::InvalidArgument
        })?;
        let ut = roots.take(alloc, SERVER_UNTYPED_BITS)?;
        let cnode: Cap<CNode> = retype(alloc, ut, ObjectType::CNode, radix)?;
        let tcb: Cap<Tcb> = retype(alloc, ut, ObjectType::Tcb, 0)?;
        let mut space = Space::new(retype(alloc, ut, ObjectType::VSpace, 0)?, ut);
        cnode.copy(SLOT_VSPACE, CNODE, space.vspace.cptr(), CapRights::ALL)?;
        cnode.copy(SLOT_CNODE, CNODE, cnode.cptr(), CapRights::ALL)?;
        cnode.copy(
            SERVER_CONSOLE_SLOT,
            CNODE,
            init_slots::CONSOLE,
            CapRights::ALL,
        )?;

        for seg in &image.segments {
            load_segment(alloc, window, &mut space, ut, seg, file)?;
        }
        let stack: Cap<Frame> = retype(alloc, ut, ObjectType::Frame, STACK_BITS)?;
        let stack_size = 1u64 << STACK_BITS;
        space.map(
            alloc,
            stack,
            USER_STACK_TOP - stack_size,
            MapFlags::RW,
            0,
            stack_size / PAGE,
        )?;
        let ipc: Cap<Frame> = retype(alloc, ut, ObjectType::Frame, 12)?;
        space.map(alloc, ipc, USER_IPC_BUFFER, MapFlags::RW, 0, 1)?;

        // The heap: frames of up to 2 MiB from an untyped of its own.
        let heap_bits = u64::from(heap_size.max(PAGE).next_power_of_two().trailing_zeros());
        let heap_ut = roots.take(alloc, heap_bits)?;
        let frame_bits = heap_bits.min(21);
        for i in 0..(1u64 << (heap_bits - frame_bits)) {
            let frame: Cap<Frame> = retype(alloc, heap_ut, ObjectType::Frame, frame_bits)?;
            let pages = (1u64 << frame_bits) / PAGE;
            space.map(
                alloc,
                frame,
                SERVER_HEAP_BASE + (i << frame_bits),
                MapFlags::RW,
                0,
                pages,
            )?;
        }

        let mut startup = Startup::new(pid);
        startup.heap_base = SERVER_HEAP_BASE;
        startup.heap_size = 1 << heap_bits;
        startup.cnode_radix = radix;
        Ok(Self {
            name,
            cnode,
            tcb,
            space,
            ipc,
            startup,
            entry: image.entry,
        })
    }

    /// A copy of init's capability `src` with `rights` into the server's slot `dest`.
    fn copy_in(&self, dest: u64, src: u64, rights: CapRights) -> Result<(), Error> {
        self.cnode.copy(dest, CNODE, src, rights)
    }

    /// Moves init's capability `src` into the server's slot `dest`.
    fn move_in(&self, alloc: &mut Alloc, dest: u64, src: u64) -> Result<(), Error> {
        self.cnode.move_cap(dest, CNODE, src)?;
        alloc.free_slot(src);
        Ok(())
    }

    /// Writes and maps the startup page, configures the thread (its faults go to init's
    /// endpoint `faults`, badged with the pid and `FAULT_BADGE`, so that init learns when a
    /// server dies) and starts it.
    fn start(
        mut self,
        alloc: &mut Alloc,
        window: &mut Window,
        priority: u64,
        faults: Cap<Endpoint>,
    ) -> Result<Cap<Tcb>, Error> {
        let ut = self.space.untyped();
        let page: Cap<Frame> = retype(alloc, ut, ObjectType::Frame, 12)?;
        let startup = self.startup;
        window.with(page, 0, 1, |bytes| {
            let ptr = bytes.as_mut_ptr().cast::<Startup>();
            // SAFETY: `bytes` is a whole mapped, writable page, page aligned, and a
            // `Startup` fits in it (checked in proto); `write` needs no initialised target.
            unsafe { ptr.write(startup) };
        })?;
        self.space
            .map(alloc, page, STARTUP_VADDR, MapFlags::READ, 0, 1)?;
        let fault = alloc.slot()?;
        let configured = CNODE
            .mint(
                fault,
                CNODE,
                faults.cptr(),
                CapRights::WRITE,
                self.startup.pid | pid::FAULT_BADGE,
            )
            .and_then(|()| {
                self.tcb.configure(
                    self.cnode,
                    self.space.vspace,
                    Some((self.ipc, USER_IPC_BUFFER)),
                    Some(Cap::from_cptr(fault)),
                    priority,
                )
            });
        let _ = CNODE.delete(fault);
        alloc.free_slot(fault);
        configured?;
        self.tcb.start(self.entry, USER_STACK_TOP, STARTUP_VADDR)?;
        rt::println!("init: started {} (pid {})", self.name, self.startup.pid);
        Ok(self.tcb)
    }
}

/// Maps one ELF segment into `space`: a frame per page from `ut`, its bytes copied from
/// `file` through the window, with the segment's rights.
fn load_segment(
    alloc: &mut Alloc,
    window: &mut Window,
    space: &mut Space,
    ut: Cap<Untyped>,
    seg: &kernel_core::elf::Segment,
    file: &[u8],
) -> Result<(), Error> {
    let mut flags = MapFlags::READ.0;
    if seg.writable {
        flags |= MapFlags::WRITE.0;
    }
    if seg.executable {
        flags |= MapFlags::EXECUTE.0;
    }
    let (start, end) = seg.page_range();
    let data_end = seg.vaddr + seg.file_size;
    for page in (start..end).step_by(PAGE as usize) {
        let frame: Cap<Frame> = retype(alloc, ut, ObjectType::Frame, 12)?;
        let lo = page.max(seg.vaddr);
        let hi = (page + PAGE).min(data_end);
        if lo < hi {
            // Offsets checked by `parse_user_image`: the file range lies inside `file`.
            let src = (seg.file_offset + (lo - seg.vaddr)) as usize;
            let len = (hi - lo) as usize;
            let dst = (lo - page) as usize;
            let bytes = file.get(src..src + len).ok_or(Error::RangeError)?;
            window.with(frame, 0, 1, |page| {
                page[dst..dst + len].copy_from_slice(bytes)
            })?;
        }
        space.map(alloc, frame, page, MapFlags(flags), 0, 1)?;
    }
    Ok(())
}
