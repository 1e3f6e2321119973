//! `build`: compiles the kernel and init, then writes the boot image and the initrd archives.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cprog;
use crate::disk::{self, DiskFile};
use crate::error::{Result, failed, io_failed};
use crate::image;
use crate::initrd::Initrd;

/// The kernel never touches FP/SIMD registers, so it builds soft-float (see rust-toolchain.toml).
pub const KERNEL_TARGET: &str = "aarch64-unknown-none-softfloat";
pub const USER_TARGET: &str = "aarch64-unknown-none";

/// Where everything is.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub kernel_elf: PathBuf,
    pub init_elf: PathBuf,
    /// `target/images/`: the Image and the initrd archives.
    pub images: PathBuf,
    pub image: PathBuf,
    /// The FAT disk image every boot gets as a virtio-blk device (`disk/` plus generated
    /// files, see `disk.rs`).
    pub disk: PathBuf,
    /// `target/images/run/`: per-scenario copies of the disk for scenarios that write to it.
    pub disk_copies: PathBuf,
    /// `target/bench/`: benchmark results.
    pub bench: PathBuf,
}

impl Paths {
    /// The workspace is this crate's parent; cargo's target directory may be moved by
    /// `CARGO_TARGET_DIR`.
    pub fn discover() -> Paths {
        let manifest = env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let root = manifest
            .parent()
            .map_or_else(|| manifest.clone(), Path::to_path_buf);
        let target = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => root.join(dir),
            _ => root.join("target"),
        };
        let images = target.join("images");
        Paths {
            kernel_elf: target.join(KERNEL_TARGET).join("release/kernel"),
            init_elf: target.join(USER_TARGET).join("release/init"),
            image: images.join("Image"),
            disk: images.join("disk.img"),
            disk_copies: images.join("run"),
            bench: target.join("bench"),
            images,
            root,
        }
    }

    /// Where cargo puts the user program `name`.
    pub fn user_elf(&self, name: &str) -> PathBuf {
        self.init_elf.with_file_name(name)
    }

    pub fn initrd(&self, kind: Initrd) -> Option<PathBuf> {
        kind.file_name().map(|name| self.images.join(name))
    }

    /// `path` relative to the workspace root when it is inside it (else as is).
    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }

    /// [`Paths::relative`], for messages.
    pub fn show<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        self.relative(path).to_string_lossy()
    }
}

/// Runs cargo (the one that runs us, if known) in the workspace root.
pub fn cargo(paths: &Paths, args: &[&str]) -> Result<()> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(&paths.root)
        .status()
        .map_err(|e| failed(format!("cannot run {}: {e}", cargo.to_string_lossy())))?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "`cargo {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// The user programs: each (package, binaries), built for the user target and packed into the
/// initrd under the binary's name, `init` first (the test root task `ktest` goes into its own
/// archive instead, `Initrd::Tests`). Add a server or demo here.
pub const USER_PROGRAMS: &[(&str, &[&str])] = &[
    ("init", &["init"]),
    ("ktest", &["ktest"]),
    ("vm", &["vm"]),
    ("zero", &["zero"]),
    ("file", &["file"]),
    ("shm", &["shm-server"]),
    ("console", &["console"]),
    (
        "demos",
        &[
            "hello",
            "vmtest",
            "proctest",
            "vmbench",
            "nop",
            "anon",
            "fork-cow",
            "vaspace",
            "mmaptest",
            "bustest",
            "tour",
            "fileread",
            "filetest",
            "shm",
            "shmpeer",
            "mmapfile",
            "filebench",
            "mmap-file",
            "mapping-kinds",
            "kinds-peer",
            "fileio",
            "writeback",
            "writeback-check",
            "exectest",
            "attack-faults",
            "attack-power",
            "server-stop",
            "srvfuzz",
            "wbstress",
            "filetail",
            "fatattack",
            "diskcheck",
            "attack-handles",
            "limits",
            "vmposix",
            "attack-review",
            "review-exec",
            "fragtest",
            "server-restart",
            "restart-limit",
            "attack-review2",
            "latbench",
            "fileasync",
            "soak",
            "soak-long",
            "soak-exec",
            "pagerwait",
            "inithang",
            "initshmhang",
            "dirtest",
            "fastio",
            "argtest",
            "demoargs",
            "fatcrash",
            "directio",
            "growio",
            "regionbench",
            "conread",
            "conlines",
            "fatcut",
            "pipetest",
            "shcheck",
        ],
    ),
    // The shell (user/sh) and the small programs a student uses beside it.
    ("sh", &["sh", "loop", "wc", "yes"]),
];

/// Builds the kernel and the user programs and writes `Image` and every initrd variant.
pub fn build(paths: &Paths) -> Result<()> {
    cargo(
        paths,
        &[
            "build",
            "--release",
            "-p",
            "kernel",
            "--target",
            KERNEL_TARGET,
        ],
    )?;
    let mut args = vec!["build", "--release", "--target", USER_TARGET];
    for (package, _) in USER_PROGRAMS {
        args.extend(["-p", package]);
    }
    // The C layer, a static library the C programs link (`cprog`).
    args.extend(["-p", "crt"]);
    cargo(paths, &args)?;
    fs::create_dir_all(&paths.images).map_err(|e| io_failed("create", &paths.images, e))?;

    let elf = read(&paths.kernel_elf)?;
    let image = image::from_elf(&elf)
        .map_err(|e| failed(format!("{}: {e}", paths.show(&paths.kernel_elf))))?;
    if image.image_size < image.mem_span {
        // The boot protocol's image_size covers bss; a loader may place the DTB or initrd there.
        eprintln!(
            "warning: the boot header's image_size ({:#x}) is less than the kernel's size with bss ({:#x})",
            image.image_size, image.mem_span
        );
    }
    write(&paths.image, &image.bytes)?;
    println!(
        "{}: {} bytes (image_size {:#x})",
        paths.show(&paths.image),
        image.bytes.len(),
        image.image_size
    );

    let mut programs = Vec::new();
    for name in USER_PROGRAMS.iter().flat_map(|(_, bins)| bins.iter()) {
        programs.push((*name, read(&paths.user_elf(name))?));
    }
    for kind in Initrd::ALL {
        let contents = kind.contents(&programs).map_err(failed)?;
        if let (Some(path), Some(bytes)) = (paths.initrd(kind), contents) {
            write(&path, &bytes)?;
            if kind == Initrd::Normal {
                println!("{}: {} bytes", paths.show(&path), bytes.len());
            }
        }
    }
    let c_programs = cprog::build(paths)?;
    write_disk(paths, &programs, &c_programs)
}

/// The packages whose programs go on the disk (under `bin/`).
pub const DISK_PROGRAMS_PACKAGES: &[&str] = &["demos", "sh"];

/// Programs of that package kept off the disk, so that init runs them from the initrd:
/// `wbstress` (scenario `proc-wbstress`) wants its page cache of two blocks for file data
/// alone; its own text, paged in from the cache, would make every task wait for it in turn.
/// `server-restart` (scenario `server-restart`) must not run from the page cache of the
/// file server that dies under it.
const INITRD_ONLY: &[&str] = &[
    "wbstress",
    "server-restart",
    "restart-limit",
    "pagerwait",
    "inithang",
    "fatcrash",
];

/// Writes `disk.img`: the repository's `disk/` folder, the 16 MiB test file, the demo
/// programs and the C programs (`cprog`), each under `bin/`.
fn write_disk(
    paths: &Paths,
    programs: &[(&str, Vec<u8>)],
    c_programs: &[(String, Vec<u8>)],
) -> Result<()> {
    let folder = paths.root.join("disk");
    let mut files =
        disk::files_of_folder(&folder).map_err(|e| io_failed("read the folder", &folder, e))?;
    files.push(DiskFile {
        path: disk::BIG_FILE.into(),
        bytes: disk::big_file_bytes(disk::BIG_FILE_BYTES),
    });
    let demos = USER_PROGRAMS
        .iter()
        .filter(|(package, _)| DISK_PROGRAMS_PACKAGES.contains(package))
        .flat_map(|(_, bins)| bins.iter())
        .filter(|name| !INITRD_ONLY.contains(name));
    for name in demos {
        if let Some((_, bytes)) = programs.iter().find(|(n, _)| n == name) {
            files.push(DiskFile {
                path: format!("{}/{name}", disk::BIN_DIR),
                bytes: bytes.clone(),
            });
        }
    }
    for (name, bytes) in c_programs {
        let path = format!("{}/{name}", disk::BIN_DIR);
        if files.iter().any(|f| f.path == path) {
            return Err(failed(format!(
                "user/c/{name}.c: a program named {name} is on the disk already"
            )));
        }
        files.push(DiskFile {
            path,
            bytes: bytes.clone(),
        });
    }
    disk::write_image(&paths.disk, &files).map_err(|e| io_failed("write", &paths.disk, e))?;
    println!("{}: {} files", paths.show(&paths.disk), files.len());
    Ok(())
}

/// A fresh copy of the disk image for one run that may write to it (parallel runs must not
/// share a writable image); its path.
pub fn disk_copy(paths: &Paths, name: &str) -> Result<PathBuf> {
    fs::create_dir_all(&paths.disk_copies)
        .map_err(|e| io_failed("create", &paths.disk_copies, e))?;
    let copy = paths.disk_copies.join(format!("{name}.img"));
    fs::copy(&paths.disk, &copy).map_err(|e| io_failed("copy the disk to", &copy, e))?;
    Ok(copy)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| io_failed("read", path, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| io_failed("write", path, e))
}
