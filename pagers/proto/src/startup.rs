//! The startup page init maps into each server it starts (at `STARTUP_VADDR`, read-only):
//! which slots of the server's CNode hold what, and where its heap is.

/// `Startup::magic`.
pub const STARTUP_MAGIC: u64 = u64::from_le_bytes(*b"MKSTART1");
/// Capacity of `Startup::slots` and `Startup::initrd_frames`.
pub const STARTUP_SLOTS: usize = 16;
pub const STARTUP_FRAMES: usize = 32;

/// One read-only frame of the initrd as a server sees it: its slot, its physical base (for
/// offsets into the initrd), and log2 of its size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct InitrdFrame {
    pub slot: u64,
    pub base: u64,
    pub size_bits: u64,
}

/// The startup page.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Startup {
    pub magic: u64,
    pub pid: u64,
    /// The server's heap: already mapped, read-write.
    pub heap_base: u64,
    pub heap_size: u64,
    /// Server-specific slots; the meaning of each index is in that server's `slots` module.
    pub slots: [u64; STARTUP_SLOTS],
    /// log2 of the number of slots of the server's CNode, and the first free one.
    pub cnode_radix: u64,
    pub first_free_slot: u64,
    /// Untyped budget capabilities: first slot and count (consecutive slots).
    pub untyped_first: u64,
    pub untyped_count: u64,
    /// The initrd (vm): physical start and size, and its frames.
    pub initrd_base: u64,
    pub initrd_size: u64,
    pub initrd_frame_count: u64,
    pub initrd_frames: [InitrdFrame; STARTUP_FRAMES],
    /// The file server: bytes of virtio-mmio registers mapped (device memory) at
    /// [`FILE_MMIO_WINDOW`], [`VIRTIO_SLOT_SIZE`] per transport, and bytes of DMA memory
    /// (one physically contiguous frame) mapped at [`FILE_DMA_WINDOW`].
    pub mmio_size: u64,
    pub dma_size: u64,
    /// The file server: the most 64 KiB page-cache blocks it may hold (frames retyped from
    /// its untyped budget as needed, mapped at [`FILE_CACHE_WINDOW`]); bootarg `file.cache=`.
    pub cache_blocks: u64,
    /// A test hook (bootarg `<server>.stop=N`): the server stops, as if it had crashed,
    /// when its `N`th request arrives, before answering it; 0 = never.
    pub stop_at: u64,
    /// A test hook (bootarg `<server>.hang=N`): the server stops answering, but stays
    /// alive, when its `N`th request arrives; 0 = never.
    pub hang_at: u64,
    /// Test hooks (bootargs `<server>.stop.block=B`, `<server>.hang.block=B`): the server
    /// stops (as `stop_at`) or stops answering (as `hang_at`) when vm asks it for block `B`
    /// of any object (`ObjectPage`); 0 = never (block 0 cannot be chosen).
    pub stop_block: u64,
    pub hang_block: u64,
    /// vm: how long (milliseconds) a pager may take to answer one request before vm gives
    /// up on it (bootarg `vm.deadline=`); 0 = vm's default.
    pub deadline_ms: u64,
    /// The console server: where the UART's registers start in its page (mapped at
    /// [`CONSOLE_MMIO_WINDOW`], `mmio_size` bytes).
    pub mmio_offset: u64,
}

const _: () = assert!(core::mem::size_of::<Startup>() <= 4096);

impl Startup {
    pub const fn new(pid: u64) -> Self {
        Self {
            magic: STARTUP_MAGIC,
            pid,
            heap_base: 0,
            heap_size: 0,
            slots: [0; STARTUP_SLOTS],
            cnode_radix: 0,
            first_free_slot: 0,
            untyped_first: 0,
            untyped_count: 0,
            initrd_base: 0,
            initrd_size: 0,
            initrd_frame_count: 0,
            initrd_frames: [InitrdFrame {
                slot: 0,
                base: 0,
                size_bits: 0,
            }; STARTUP_FRAMES],
            mmio_size: 0,
            dma_size: 0,
            cache_blocks: 0,
            stop_at: 0,
            hang_at: 0,
            stop_block: 0,
            hang_block: 0,
            deadline_ms: 0,
            mmio_offset: 0,
        }
    }

    /// The initrd frames (count clamped to the capacity).
    pub fn initrd_frames(&self) -> &[InitrdFrame] {
        let n = usize::try_from(self.initrd_frame_count)
            .map_or(STARTUP_FRAMES, |n| n.min(STARTUP_FRAMES));
        &self.initrd_frames[..n]
    }
}

/// What `Startup::slots[i]` holds for the vm server.
pub mod vm_slots {
    /// vm's endpoint (it receives faults and requests on it).
    pub const ENDPOINT: usize = 0;
    /// zero's endpoint (badged, WRITE|GRANT: vm calls `GetChunk`).
    pub const ZERO: usize = 1;
    /// init's notification (vm signals it when kill records are waiting).
    pub const INIT_NOTIFY: usize = 2;
    /// vm's own VSpace (it maps its chunks and page tables into itself).
    pub const VSPACE: usize = 3;
    /// vm's own CNode.
    pub const CNODE: usize = 4;
    /// The file server's endpoint (badged `pid::VM`, WRITE|GRANT: replies carry block
    /// frame capabilities); 0 when there is no file server.
    pub const FILE: usize = 5;
    /// The shm server's endpoint (likewise).
    pub const SHM: usize = 6;
    /// A kernel timer of vm's own (`Cap<Timer>`: `TimerArm`, `TimerDisarm`), for the
    /// deadlines of the requests it waits on; disarmed at start.
    pub const TIMER: usize = 7;
    /// A notification (READ|WRITE) bound to vm's thread: a signal on it (from the timer
    /// above, armed with this notification) ends vm's `Recv` on its endpoint with label
    /// `abi::message::NOTIFICATION_LABEL`, length 0, and the notification's word (the bits
    /// given to `TimerArm`, OR-ed with any other signals since) in place of the badge. A
    /// client may send that label too (with its own badge in `x8`): take it as a hint to
    /// compare the deadlines with `DebugTicks` (docs/kernel.md, Timers).
    pub const NOTIFY: usize = 8;
}

/// What `Startup::slots[i]` holds for the zero server.
pub mod zero_slots {
    /// zero's endpoint.
    pub const ENDPOINT: usize = 0;
    pub const VSPACE: usize = 3;
    pub const CNODE: usize = 4;
}

/// What `Startup::slots[i]` holds for the shm server.
pub mod shm_slots {
    /// shm's endpoint.
    pub const ENDPOINT: usize = 0;
    pub const VSPACE: usize = 3;
    pub const CNODE: usize = 4;
}

/// What `Startup::slots[i]` holds for the file server.
pub mod file_slots {
    /// The file server's endpoint.
    pub const ENDPOINT: usize = 0;
    /// A notification (READ) the interrupt handlers signal, with badge `1 << transport`.
    pub const IRQ_NOTIFY: usize = 1;
    /// The DMA frame (its physical address comes from `FramePhysAddr`).
    pub const DMA_FRAME: usize = 2;
    pub const VSPACE: usize = 3;
    pub const CNODE: usize = 4;
    /// The first of the interrupt handlers, one per virtio-mmio transport in address order
    /// (transport `i`'s in slot `slots[IRQ_FIRST] + i`), already pointed at the notification.
    pub const IRQ_FIRST: usize = 5;
}

/// What `Startup::slots[i]` holds for the console server.
pub mod console_slots {
    /// The console server's endpoint.
    pub const ENDPOINT: usize = 0;
    /// A notification (READ) bound to its thread, which the UART's interrupt handler
    /// signals.
    pub const IRQ_NOTIFY: usize = 1;
    /// The UART's interrupt handler (already pointed at the notification); 0 without one
    /// (then nothing can be typed).
    pub const IRQ: usize = 2;
    pub const VSPACE: usize = 3;
    pub const CNODE: usize = 4;
    /// init's endpoint, badged `pid::CONSOLE`: for `Kill` of the foreground task (Ctrl-C).
    pub const PROC: usize = 5;
}

/// Where the console server finds the UART's page (device memory).
pub const CONSOLE_MMIO_WINDOW: u64 = 0x0000_0032_0000_0000;
pub const CONSOLE_HEAP_SIZE: u64 = 1 << 20;

/// The registers of one virtio-mmio transport.
pub const VIRTIO_SLOT_SIZE: u64 = 0x200;
/// Where every server finds its `Console` capability (the right to print).
pub const SERVER_CONSOLE_SLOT: u64 = 8;

/// Where the file server finds the virtio-mmio transports and its DMA memory.
pub const FILE_MMIO_WINDOW: u64 = 0x0000_0032_0000_0000;
pub const FILE_DMA_WINDOW: u64 = 0x0000_0033_0000_0000;
pub const FILE_HEAP_SIZE: u64 = 4 << 20;
/// log2 of the file server's DMA frame (1 MiB).
pub const FILE_DMA_BITS: u64 = 20;
/// Where the file server maps its page-cache blocks (block slot i at + i * 64 KiB).
pub const FILE_CACHE_WINDOW: u64 = 0x0000_0034_0000_0000;
/// Page-cache blocks the file server gets without a `file.cache=` bootarg (24 MiB: the
/// 16 MiB `big.dat` with room for the programs and files read beside it, so that a pass
/// over it finds it cached; with exactly 16 MiB the program's own block takes a slot, and
/// every least-recently-used scan of the file misses every block), and the most it may get.
pub const FILE_CACHE_BLOCKS: u64 = 384;
pub const FILE_CACHE_MAX_BLOCKS: u64 = 512;

/// Where the shm server maps each of its blocks in its own address space (to zero them
/// when they are reused or cut by `ftruncate`), block frame `i` at `SHM_BLOCK_WINDOW + i *
/// 64 KiB`.
pub const SHM_BLOCK_WINDOW: u64 = 0x0000_0034_0000_0000;
pub const SHM_HEAP_SIZE: u64 = 1 << 20;

/// Where servers keep their heap (mapped by init, read-write) and how big.
pub const SERVER_HEAP_BASE: u64 = 0x0000_0031_0000_0000;
pub const VM_HEAP_SIZE: u64 = 32 << 20;
pub const ZERO_HEAP_SIZE: u64 = 1 << 20;

/// The RAM from which the servers get their full budgets (the constants above); a smaller
/// machine gets smaller ones ([`Budgets::for_ram`]).
pub const FULL_BUDGET_RAM: u64 = 512 << 20;

/// What init gives the servers, sized to the machine's RAM (`BootInfo::ram_total`): on
/// [`FULL_BUDGET_RAM`] or more the fixed figures above, below it proportionally less, but
/// never less than what the lecture's demos need (the tour runs on 128 MiB: a page cache
/// that holds the 16 MiB `big.dat` with room beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// vm's heap (region maps, page maps of every task) and log2 of its untyped for the
    /// page tables of tasks' address spaces.
    pub vm_heap: u64,
    pub vm_tables_bits: u64,
    /// The file server's heap and its page cache's default size in 64 KiB blocks (a
    /// `file.cache=` bootarg may ask for up to [`Budgets::file_cache_max`]).
    pub file_heap: u64,
    pub file_cache_blocks: u64,
    pub file_cache_max: u64,
    /// The shm server's heap and log2 of its untyped (block frames and their tables).
    pub shm_heap: u64,
    pub shm_bits: u64,
}

impl Budgets {
    pub fn for_ram(ram: u64) -> Self {
        // `full` scaled by ram / FULL_BUDGET_RAM, at least `min`, at most `full`.
        let scaled = |full: u64, min: u64| {
            let ram_mib = (ram >> 20).min(FULL_BUDGET_RAM >> 20);
            (full / (FULL_BUDGET_RAM >> 20) * ram_mib).clamp(min, full)
        };
        let log2 = |x: u64| u64::from(63 - x.max(1).leading_zeros());
        // The page cache may take a fifth of RAM (24 MiB of 128 MiB), never more than the
        // full figure.
        let fifth = ram / 5 / crate::object::BLOCK_SIZE;
        Self {
            vm_heap: scaled(VM_HEAP_SIZE, 8 << 20),
            vm_tables_bits: log2(scaled(32 << 20, 4 << 20)),
            file_heap: FILE_HEAP_SIZE,
            file_cache_blocks: FILE_CACHE_BLOCKS.min(fifth).max(16),
            file_cache_max: FILE_CACHE_MAX_BLOCKS.min(fifth * 2).max(16),
            shm_heap: SHM_HEAP_SIZE,
            shm_bits: log2(scaled(32 << 20, 4 << 20)),
        }
    }
}
/// Where vm maps the chunks it manages in its own address space (chunk i at
/// `VM_CHUNK_WINDOW + i * 2 MiB`) and the initrd (read-only).
pub const VM_CHUNK_WINDOW: u64 = 0x0000_0100_0000_0000;
pub const VM_INITRD_WINDOW: u64 = 0x0000_00f0_0000_0000;
