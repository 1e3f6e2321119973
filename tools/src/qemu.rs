//! Running QEMU: its command line, interactive runs, and captured runs with a timeout.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, failed};
use crate::judge::Ending;
use crate::machine::{Gic, Machine};

pub const QEMU: &str = "qemu-system-aarch64";
const INSTALL_HINT: &str = "apt-get install -y --no-install-recommends qemu-system-arm";
/// How often a captured run checks whether QEMU has exited.
const POLL: Duration = Duration::from_millis(20);

/// One QEMU invocation.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// QEMU's working directory (the workspace root), so the paths below can be short.
    pub dir: &'a Path,
    pub machine: &'a Machine,
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    /// The disk image attached as a virtio-blk device.
    pub disk: Option<Disk<'a>>,
    pub bootargs: &'a str,
    /// The repeatable setup of docs/design.md §7: one guest instruction per virtual ns, fixed
    /// device tree and clock.
    pub deterministic: bool,
    /// Stop before the first instruction and serve gdb on :1234.
    pub gdb: bool,
}

/// A disk image and how the guest may use it.
#[derive(Debug, Clone, Copy)]
pub struct Disk<'a> {
    pub path: &'a Path,
    /// Attach it read-only: runs that only read may then share one image.
    pub read_only: bool,
    /// A QEMU `blkdebug` configuration: the disk is attached through it, so that the
    /// rules there make chosen disk requests fail (a scenario's injected I/O errors).
    pub faults: Option<&'a Path>,
}

impl Disk<'_> {
    /// `-drive` and `-device`: a virtio-blk device on a virtio-mmio transport.
    fn args(&self) -> [OsString; 4] {
        let mut drive = OsString::from("if=none,format=raw,id=hd0,");
        if self.read_only {
            drive.push("readonly=on,");
        }
        drive.push("file=");
        if let Some(config) = self.faults {
            drive.push("blkdebug:");
            drive.push(config);
            drive.push(":");
        }
        drive.push(self.path);
        [
            "-drive".into(),
            drive,
            "-device".into(),
            "virtio-blk-device,drive=hd0".into(),
        ]
    }
}

impl Launch<'_> {
    pub fn args(&self) -> Vec<OsString> {
        let mut board = String::from("virt");
        if self.deterministic {
            board.push_str(",dtb-randomness=off");
        }
        if self.machine.gic == Gic::V3 {
            board.push_str(",gic-version=3");
        }
        if self.machine.el2 {
            board.push_str(",virtualization=on");
        }
        let mut args: Vec<OsString> = Vec::new();
        let push = |args: &mut Vec<OsString>, items: &[&str]| {
            args.extend(items.iter().map(OsString::from))
        };
        push(&mut args, &["-M", &board, "-cpu", self.machine.cpu.qemu]);
        push(
            &mut args,
            &[
                "-m",
                &self.machine.mem.to_string(),
                "-smp",
                &self.machine.smp.to_string(),
            ],
        );
        // `-nic none`: otherwise QEMU looks for efi-virtio.rom, which Debian's package may lack.
        push(
            &mut args,
            &[
                "-nographic",
                "-monitor",
                "none",
                "-nic",
                "none",
                "-no-reboot",
            ],
        );
        if self.deterministic {
            push(
                &mut args,
                &[
                    "-icount",
                    "shift=0,sleep=off",
                    "-rtc",
                    "base=2024-01-01T00:00:00,clock=vm",
                ],
            );
        }
        if self.gdb {
            push(&mut args, &["-s", "-S"]);
        }
        args.push("-kernel".into());
        args.push(self.kernel.into());
        if let Some(initrd) = self.initrd {
            args.push("-initrd".into());
            args.push(initrd.into());
        }
        if let Some(disk) = &self.disk {
            args.extend(disk.args());
        }
        push(&mut args, &["-append", self.bootargs]);
        args
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(QEMU);
        command.current_dir(self.dir).args(self.args());
        command
    }

    /// The command as a shell line, for people to read and paste.
    pub fn shell_line(&self) -> String {
        let mut line = String::from(QEMU);
        for arg in self.args() {
            let arg = arg.to_string_lossy();
            line.push(' ');
            if !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=.,:/+@".contains(&b))
            {
                line.push_str(&arg);
            } else {
                line.push('\'');
                line.push_str(&arg.replace('\'', r"'\''"));
                line.push('\'');
            }
        }
        line
    }
}

/// Runs QEMU on the terminal and returns its exit status.
pub fn run_interactive(launch: &Launch<'_>) -> Result<u8> {
    let status = launch.command().status().map_err(spawn_error)?;
    Ok(exit_code(status))
}

/// A finished captured run.
#[derive(Debug)]
pub struct Captured {
    /// The serial console (lossily decoded: the guest may print anything).
    pub console: String,
    /// QEMU's own complaints.
    pub stderr: String,
    pub ending: Ending,
    pub elapsed: Duration,
}

/// Runs QEMU with its output captured, killing it at `timeout`.
pub fn run_captured(launch: &Launch<'_>, timeout: Duration, input: &[Input]) -> Result<Captured> {
    let started = Instant::now();
    let stdin = if input.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    };
    let mut child = launch
        .command()
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    // Readers drain both pipes meanwhile so QEMU never blocks on a full pipe; the console's
    // reader also types the scenario's input when its markers appear.
    let stdout = drain_typing(child.stdout.take(), child.stdin.take(), input.to_vec());
    let stderr = drain(child.stderr.take());
    let ending = wait_until(&mut child, started + timeout)
        .map_err(|e| failed(format!("waiting for QEMU: {e}")))?;
    let ending = match ending {
        Some(status) => match status.code() {
            Some(code) => Ending::Exited(code),
            None => Ending::Signalled,
        },
        None => Ending::TimedOut(timeout),
    };
    let text = |reader: thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned()
    };
    Ok(Captured {
        console: text(stdout),
        stderr: text(stderr),
        ending,
        elapsed: started.elapsed(),
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error ends the capture early; what was read so far is still worth judging.
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Bytes typed on the serial line (QEMU's standard input) once the console has shown
/// `after` (after the previous input's marker): a scenario's keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    pub after: &'static str,
    pub bytes: &'static [u8],
}

/// Reads the console as [`drain`] does, and types each of `input` on `stdin` as soon as
/// its marker appears (in order: the next marker is looked for after the last one).
fn drain_typing(
    pipe: Option<impl Read + Send + 'static>,
    mut stdin: Option<ChildStdin>,
    input: Vec<Input>,
) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let Some(mut pipe) = pipe else {
            return bytes;
        };
        let mut chunk = [0u8; 4096];
        let (mut next, mut searched) = (0, 0);
        loop {
            let n = match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            bytes.extend_from_slice(&chunk[..n]);
            while let Some(typed) = input.get(next) {
                let marker = typed.after.as_bytes();
                let Some(at) = bytes[searched..]
                    .windows(marker.len().max(1))
                    .position(|w| w == marker)
                else {
                    break;
                };
                searched += at + marker.len();
                if let Some(s) = stdin.as_mut() {
                    // A guest that stopped reading (it powered off) ends the pipe: no matter.
                    let _ = s.write_all(typed.bytes).and_then(|()| s.flush());
                }
                next += 1;
            }
        }
        drop(stdin);
        bytes
    })
}

/// Waits for the child until `deadline`; past it, kills it and returns `None`.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        thread::sleep(POLL);
    }
}

fn spawn_error(err: std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        failed(format!(
            "{QEMU} not found; install it with `{INSTALL_HINT}`"
        ))
    } else {
        failed(format!("cannot start {QEMU}: {err}"))
    }
}

/// A process exit status as our own: signals become 1.
pub fn exit_code(status: ExitStatus) -> u8 {
    status
        .code()
        .map_or(1, |code| u8::try_from(code).unwrap_or(1))
}

/// Applies `work` to every item, `jobs` at a time, and returns the results in item order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = Mutex::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut next = next.lock().unwrap_or_else(|poison| poison.into_inner());
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(item) = items.get(index) else { break };
                    let result = work(item);
                    results.lock().unwrap_or_else(|poison| poison.into_inner())[index] =
                        Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{CORTEX_A72, DEFAULT_MACHINE, Mem};

    fn strings(launch: &Launch<'_>) -> Vec<String> {
        launch
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn default_command() {
        let launch = Launch {
            dir: Path::new("."),
            machine: &DEFAULT_MACHINE,
            kernel: Path::new("target/images/Image"),
            initrd: Some(Path::new("target/images/initrd.cpio")),
            disk: None,
            bootargs: "test=boot",
            deterministic: false,
            gdb: false,
        };
        assert_eq!(
            launch.shell_line(),
            "qemu-system-aarch64 -M virt -cpu cortex-a53 -m 512M -smp 1 -nographic -monitor none -nic none \
             -no-reboot -kernel target/images/Image -initrd target/images/initrd.cpio -append test=boot"
        );
        let no_initrd = Launch {
            initrd: None,
            bootargs: "",
            ..launch
        };
        assert!(!strings(&no_initrd).contains(&"-initrd".to_string()));
        assert!(no_initrd.shell_line().ends_with("-append ''"));
    }

    #[test]
    fn machine_options() {
        let machine = Machine {
            cpu: CORTEX_A72,
            mem: Mem::gib(1),
            smp: 4,
            gic: Gic::V3,
            el2: true,
        };
        let launch = Launch {
            dir: Path::new("."),
            machine: &machine,
            kernel: Path::new("Image"),
            initrd: None,
            disk: Some(Disk {
                path: Path::new("target/images/disk.img"),
                read_only: true,
                faults: None,
            }),
            bootargs: "a b",
            deterministic: true,
            gdb: true,
        };
        let args = strings(&launch);
        assert_eq!(
            args[..2],
            [
                "-M",
                "virt,dtb-randomness=off,gic-version=3,virtualization=on"
            ]
        );
        for pair in [
            ["-m", "1G"],
            ["-smp", "4"],
            ["-icount", "shift=0,sleep=off"],
            ["-append", "a b"],
            [
                "-drive",
                "if=none,format=raw,id=hd0,readonly=on,file=target/images/disk.img",
            ],
            ["-device", "virtio-blk-device,drive=hd0"],
        ] {
            assert!(
                args.windows(2).any(|w| w == pair),
                "{pair:?} missing from {args:?}"
            );
        }
        assert!(args.contains(&"-S".to_string()) && args.contains(&"-s".to_string()));
        assert!(launch.shell_line().ends_with("-append 'a b'"));
    }

    #[test]
    fn disk_through_blkdebug() {
        let disk = Disk {
            path: Path::new("run/x.img"),
            read_only: false,
            faults: Some(Path::new("run/x.blkdebug")),
        };
        assert_eq!(
            disk.args()[1],
            "if=none,format=raw,id=hd0,file=blkdebug:run/x.blkdebug:run/x.img"
        );
    }

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(
            parallel_map(&items, 2, |n| n * n),
            items.iter().map(|n| n * n).collect::<Vec<_>>()
        );
        assert!(parallel_map(&[] as &[u32], 2, |n| *n).is_empty());
    }
}
