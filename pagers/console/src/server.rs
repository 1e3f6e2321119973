//! The console server's receive loop (docs/pagers.md, "The console"): the UART's interrupt
//! arrives as a message (init binds the handler's notification to the server's thread);
//! tasks' `Read`, `Write` and `Close` of descriptors 0..2 (the file protocol's messages,
//! badged with the task's pid), their [`ConsoleRequest`]s, and init's notices
//! ([`ServerControl`]: a task ended, power-off is near).
//!
//! **Readers.** A `Read` that finds no typed line waits: the server saves the caller's
//! reply (`SaveCaller`, one of [`READERS_MAX`] slots, one per task) and answers it when a
//! line is ready, with `EINTR` at Ctrl-C, or drops it when init says the task ended. A
//! reader that is gone when its line comes (its saved reply cannot be delivered) leaves
//! the line to the next reader.
//!
//! **Output.** Each `Write` goes to the UART before it is answered, a whole line at a time
//! (`console::Outbox`): when `write` returns, the bytes are in the UART, so nothing is
//! lost when a task exits or the machine powers off (init's `SyncAll` sends out every
//! unfinished line and waits until the UART is empty).
//!
//! **Ctrl-C** ends the foreground task (`ConsoleRequest::Foreground`) with a `Kill` to
//! init's process server (the only call the server makes: init never calls the console
//! server synchronously, its notices come from a proxy thread, so the two cannot wait for
//! each other).

use crate::uart::Uart;
use abi::message::{MAX_MRS, NOTIFICATION_LABEL, REGISTER_MRS};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use console::{Discipline, Key, Outbox, Taken};
use libmk::{CNode, Cap, Endpoint, IrqHandler, Message, Reply};
use proto::console::{READERS_MAX, owns_fd};
use proto::file::{READ_DATA_MR, READ_MAX, pack_data};
use proto::startup::{CONSOLE_MMIO_WINDOW, Startup, console_slots};
use proto::{
    ConsoleRequest, ConsoleStats, DescriptorCount, Errno, FileRequest, ProcRequest, ServerControl,
    pid,
};
use rt::ipc::Client;
use rt::println;
use serve::{Budget, ReplySlots, Serve, StopHook};

rt::server_entry!(main);

/// Echo bytes collected before they are written (typed bytes arrive faster than a loop of
/// one `send` each would like; a paste of any length keeps this bounded).
const ECHO_MAX: usize = 256;

fn main(st: &'static Startup) -> ! {
    // SAFETY: init mapped the heap read-write for the server's life; nothing else uses it.
    unsafe { rt::heap::init(st.heap_base, st.heap_size) };
    let ep: Cap<Endpoint> = Cap::from_cptr(st.slots[console_slots::ENDPOINT]);
    let cnode: Cap<CNode> = Cap::from_cptr(st.slots[console_slots::CNODE]);
    let mut budget = Budget::of(st, cnode);
    let slots = budget.reserve_slots(READERS_MAX as u64).unwrap_or(0..0);
    let Some(uart) = Uart::at(CONSOLE_MMIO_WINDOW + st.mmio_offset, st.mmio_size) else {
        println!("console: no UART mapped; stopping");
        rt::stop();
    };
    let irq = match st.slots[console_slots::IRQ] {
        0 => None,
        slot => Some(Cap::<IrqHandler>::from_cptr(slot)),
    };
    if irq.is_some() {
        uart.enable_receive();
    }
    let mut server = Server {
        uart,
        irq,
        cnode,
        proc: Client::at(st.slots[console_slots::PROC]),
        // No privileged client: every task holds at most one waiting read.
        saved: ReplySlots::new(slots, 0, 1, 0),
        readers: VecDeque::new(),
        discipline: Discipline::new(),
        outbox: Outbox::new(),
        foreground: 0,
        interrupts: 0,
    };
    serve::run(ep, "console", StopHook::of(st), &mut server)
}

/// A task waiting in `read`: its saved reply's slot and how many bytes it asked for.
struct Reader {
    pid: u64,
    slot: u64,
    max: usize,
}

struct Server {
    uart: Uart,
    irq: Option<Cap<IrqHandler>>,
    cnode: Cap<CNode>,
    /// init's endpoint (badged `pid::CONSOLE`).
    proc: Client,
    saved: ReplySlots,
    /// Waiting readers, first come first served.
    readers: VecDeque<Reader>,
    discipline: Discipline,
    outbox: Outbox,
    /// The task Ctrl-C ends (0: none).
    foreground: u64,
    interrupts: u64,
}

impl Serve for Server {
    type Note = ();

    fn handle(&mut self, r: &Reply) -> Option<(Message, ())> {
        if r.info().label == NOTIFICATION_LABEL {
            // The UART's interrupt (or a task's message forged to look like it, which gets
            // an error; reading an empty FIFO is harmless).
            self.interrupt();
            return Some((serve::error(Errno::EINVAL), ()));
        }
        let len = r.info().length.min(REGISTER_MRS);
        let m = match Serves::decode(r.info().label, &r.mrs[..len]) {
            Ok(Serves::File(req)) => return self.file(r, req).map(|m| (m, ())),
            Ok(Serves::Console(req)) => self.console(r.badge, req),
            Ok(Serves::Control(req)) if req.init_only() && r.badge != pid::INIT => {
                serve::error(Errno::EPERM)
            }
            Ok(Serves::Control(req)) => self.control(req),
            Err(e) => serve::error(e.into()),
        };
        Some((m, ()))
    }
}

proto::requests! {
    /// What the console server answers: the file protocol for descriptors 0..2, its own
    /// requests, and init's notices.
    enum Serves {
        File(FileRequest),
        Console(ConsoleRequest),
        Control(ServerControl),
    }
}

impl Server {
    /// The file protocol on descriptors 0..2; `None` when the caller waits (a read).
    fn file(&mut self, r: &Reply, req: FileRequest) -> Option<Message> {
        let pid = r.badge;
        Some(match req {
            FileRequest::Write { fd, len, .. } if owns_fd(fd) => {
                let mut data = [0u8; READ_MAX];
                // `decode` checked len <= READ_MAX.
                let len = len as usize;
                match rt::ipc::write_data(r.info().length, len, &mut data) {
                    Ok(()) => {
                        let uart = &self.uart;
                        self.outbox
                            .write(pid, &data[..len], &mut |line| uart.send(line));
                        serve::answer(&Ok(len as u64))
                    }
                    Err(e) => serve::error(e),
                }
            }
            FileRequest::Read { fd, len, .. } if owns_fd(fd) => return self.read(pid, len),
            FileRequest::Close { fd } if owns_fd(fd) => serve::answer(&Ok(())),
            FileRequest::Lseek { fd, .. } if owns_fd(fd) => serve::error(Errno::ESPIPE),
            _ => serve::error(Errno::EBADF),
        })
    }

    /// A read of up to `len` bytes by `pid`: a typed line now, or the caller waits.
    fn read(&mut self, pid: u64, len: u64) -> Option<Message> {
        // A prompt the task printed shows before it waits for the answer.
        let uart = &self.uart;
        self.outbox.flush(pid, &mut |line| uart.send(line));
        let max = usize::try_from(len).unwrap_or(usize::MAX).min(READ_MAX);
        if self.readers.is_empty()
            && let Some(t) = self.discipline.take(max)
        {
            return Some(data_reply(&t));
        }
        let Some(slot) = self.saved.take(pid) else {
            // This task already waits in a read (another thread of it), or too many do.
            return Some(serve::error(Errno::EAGAIN));
        };
        if libmk::save_caller(slot).is_err() {
            self.saved.give(pid, slot);
            return Some(serve::error(Errno::EIO));
        }
        self.readers.push_back(Reader { pid, slot, max });
        self.serve_readers();
        None
    }

    /// Answers waiting readers while typed lines are ready.
    fn serve_readers(&mut self) {
        while !self.readers.is_empty() && self.discipline.has_input() {
            let Some(reader) = self.readers.pop_front() else {
                return;
            };
            let Some(t) = self.discipline.take(reader.max) else {
                self.readers.push_front(reader);
                return;
            };
            let m = data_reply(&t);
            let sent = serve::send_saved(self.cnode, reader.slot, &m);
            self.saved.give(reader.pid, reader.slot);
            if sent.is_err() {
                // Gone (killed while it waited): the next reader gets the line.
                self.discipline.untake(t);
            }
        }
    }

    /// The UART's interrupt: every byte received goes through the line discipline. The
    /// interrupt is cleared before the FIFO is emptied, so that a byte arriving meanwhile
    /// raises it again rather than waiting unseen.
    fn interrupt(&mut self) {
        let mut echo = Vec::new();
        self.uart.clear_receive();
        while let Some(b) = self.uart.receive() {
            match self.discipline.key(b, &mut echo) {
                // A flood of typed bytes: the echo goes out as it grows, not all at the end.
                Key::Edited if echo.len() >= ECHO_MAX => {
                    self.uart.send(&echo);
                    echo.clear();
                }
                Key::Edited => {}
                Key::Ready => {
                    self.uart.send(&echo);
                    echo.clear();
                    self.serve_readers();
                }
                Key::Interrupt => {
                    self.uart.send(&echo);
                    echo.clear();
                    self.interrupted();
                }
            }
        }
        self.uart.send(&echo);
        if let Some(irq) = self.irq {
            let _ = irq.ack();
        }
    }

    /// Ctrl-C: every waiting reader gets `EINTR`, and the foreground task is ended.
    fn interrupted(&mut self) {
        self.interrupts += 1;
        while let Some(reader) = self.readers.pop_front() {
            let _ = serve::send_saved(self.cnode, reader.slot, &serve::error(Errno::EINTR));
            self.saved.give(reader.pid, reader.slot);
        }
        let fg = core::mem::take(&mut self.foreground);
        if fg != 0
            && let Err(e) = ProcRequest::kill(&self.proc, fg)
        {
            println!("console: Ctrl-C could not end task {fg}: {e}");
        }
    }

    fn console(&mut self, caller: u64, req: ConsoleRequest) -> Message {
        match req {
            ConsoleRequest::Foreground { pid } => {
                if self.foreground == 0 || self.foreground == caller {
                    self.foreground = pid;
                    serve::answer(&Ok(()))
                } else {
                    serve::error(Errno::EPERM)
                }
            }
            ConsoleRequest::Stats => {
                let (pending_tasks, pending_bytes) = self.outbox.pending();
                serve::answer(&Ok(ConsoleStats {
                    readers: self.readers.len() as u64,
                    pending_tasks: pending_tasks as u64,
                    pending_bytes: pending_bytes as u64,
                    input_bytes: self.discipline.input_bytes() as u64,
                    foreground: self.foreground,
                    interrupts: self.interrupts,
                }))
            }
        }
    }

    /// init's notices.
    fn control(&mut self, req: ServerControl) -> Message {
        let uart = &self.uart;
        match req {
            ServerControl::TaskExit { pid } => {
                self.outbox.flush(pid, &mut |line| uart.send(line));
                if self.foreground == pid {
                    self.foreground = 0;
                }
                // Its waiting read, if any: the saved reply goes (the caller is gone).
                let (gone, kept): (VecDeque<Reader>, VecDeque<Reader>) =
                    self.readers.drain(..).partition(|r| r.pid == pid);
                self.readers = kept;
                for r in gone {
                    let _ = self.cnode.delete(r.slot);
                    self.saved.give(r.pid, r.slot);
                }
                serve::answer(&Ok(()))
            }
            // Power-off is near: every unfinished line goes out, and the UART empties.
            ServerControl::SyncAll => {
                self.outbox.flush_all(&mut |line| uart.send(line));
                uart.drain();
                serve::answer(&Ok(()))
            }
            ServerControl::TaskFork { .. } | ServerControl::TaskExec { .. } => {
                serve::answer(&Ok(()))
            }
            ServerControl::Descriptors => {
                serve::answer(&Ok(DescriptorCount { fds: 0, objects: 0 }))
            }
        }
    }
}

/// `Read`'s reply: MR0 = 0, MR1 = the count, the bytes in MR6.. of the IPC buffer.
fn data_reply(t: &Taken) -> Message {
    let bytes: &[u8] = match t {
        Taken::Bytes(b) => b,
        Taken::End => &[],
    };
    let mut m = serve::answer(&Ok(bytes.len() as u64));
    if bytes.is_empty() {
        return m;
    }
    let Some(buf) = libmk::ipc_buffer() else {
        return serve::error(Errno::EIO);
    };
    let words = pack_data(bytes, &mut buf.mrs[READ_DATA_MR..MAX_MRS]);
    m.info.length = READ_DATA_MR + words;
    m
}
