//! C programs (`docs/c.md`): each `user/c/<name>.c` is compiled with Debian's AArch64 GCC
//! against picolibc and the C layer (`user/crt`: its static library, built by cargo as a
//! user crate, and `c/crt.c`) into `target/c/<name>`, which goes on the disk as
//! `bin/<name>` beside the Rust programs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Result, failed, io_failed};
use crate::images::Paths;

/// The cross compiler (Debian's `gcc-aarch64-linux-gnu`; the Makefile installs it).
pub const CC: &str = "aarch64-linux-gnu-gcc";
/// picolibc's GCC specs file (Debian's `picolibc-aarch64-linux-gnu`).
const SPECS: &str = "picolibc.specs";

/// The folder of the programs' sources.
fn sources(paths: &Paths) -> PathBuf {
    paths.root.join("user/c")
}

/// Where the compiled programs go.
fn out_dir(paths: &Paths) -> PathBuf {
    paths.images.with_file_name("c")
}

/// The C programs: the names of `user/c/*.c`, sorted.
pub fn names(paths: &Paths) -> Result<Vec<String>> {
    let dir = sources(paths);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| io_failed("read the folder", &dir, e))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            (path.extension()? == "c").then_some(stem)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Compiles every `user/c/*.c`; (name, ELF bytes) of each, sorted by name.
pub fn build(paths: &Paths) -> Result<Vec<(String, Vec<u8>)>> {
    let dir = sources(paths);
    let names = names(paths)?;
    let out = out_dir(paths);
    fs::create_dir_all(&out).map_err(|e| io_failed("create", &out, e))?;
    let crt = paths.root.join("user/crt");
    let lib = paths
        .init_elf
        .with_file_name("libcrt.a")
        .to_string_lossy()
        .into_owned();
    let mut programs = Vec::new();
    for name in names {
        let elf = out.join(&name);
        compile(
            &paths.root,
            &dir.join(format!("{name}.c")),
            &crt,
            &lib,
            &elf,
        )?;
        let bytes = fs::read(&elf).map_err(|e| io_failed("read", &elf, e))?;
        programs.push((name, bytes));
    }
    Ok(programs)
}

/// One program: `gcc -specs=picolibc.specs` with the layer's headers first, its linker
/// script (`user/crt/link.ld`) instead of picolibc's start files, and no PIE (init loads
/// `ET_EXEC` programs).
fn compile(root: &Path, source: &Path, crt: &Path, lib: &str, elf: &Path) -> Result<()> {
    let mut cmd = Command::new(CC);
    cmd.current_dir(root)
        .arg(format!("-specs={SPECS}"))
        .args([
            "-O2",
            "-g0",
            "-Wall",
            "-Werror=implicit-function-declaration",
        ])
        .args(["-static", "-no-pie", "-fno-pie", "-nostartfiles"])
        .args(["-Wl,-z,max-page-size=4096", "-Wl,--build-id=none"])
        // `exit` flushes the streams `fopen` opened (`c/crt.c` keeps the list).
        .args(["-Wl,--wrap=fopen", "-Wl,--wrap=fclose"])
        .arg("-T")
        .arg(crt.join("link.ld"))
        .arg("-I")
        .arg(crt.join("include"))
        .arg("-o")
        .arg(elf)
        .arg(source)
        .arg(crt.join("c/crt.c"))
        .arg(lib);
    let status = cmd.status().map_err(|e| {
        failed(format!(
            "cannot run {CC} ({e}): install the C compiler and picolibc with `make ccompiler` \
             (Debian's gcc-aarch64-linux-gnu and picolibc-aarch64-linux-gnu)"
        ))
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "{CC} failed on {} ({status})",
            source.display()
        )))
    }
}
