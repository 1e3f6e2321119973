//! `cargo xtask <command>`: builds the boot images, runs QEMU, runs the boot tests and benchmarks.
//!
//! Exit status: 0 on success, 1 when something failed, 2 for a bad command or environment value.

#![forbid(unsafe_code)]

mod bench;
mod boot_test;
mod chart;
mod config;
mod cpio;
mod cprog;
mod disk;
mod elf64;
mod error;
mod image;
mod images;
mod initrd;
mod judge;
mod lint;
mod machine;
mod qemu;
mod scenarios;
mod toolchain;

use std::process::ExitCode;

use config::{Settings, VARS};
use error::{Error, Result};
use images::Paths;
use initrd::Initrd;
use qemu::Launch;

const COMMANDS: &[(&str, &str)] = &[
    (
        "build",
        "build kernel and init; write target/images/Image and the initrd archives",
    ),
    (
        "run",
        "build, then boot QEMU on this terminal (quit with Ctrl-A X)",
    ),
    ("gdb", "like run, but QEMU waits for gdb on localhost:1234"),
    (
        "test",
        "host unit tests, build, then the boot scenarios; ends with `N passed, M failed`",
    ),
    (
        "bench",
        "build, then the benchmarks under -icount; writes target/bench/results.json",
    ),
    (
        "lint",
        "rustfmt --check and clippy -D warnings, host and AArch64 (part of test)",
    ),
    ("help", "this text"),
];

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("xtask: {err}");
            if matches!(err, Error::Usage(_)) {
                eprintln!("(`cargo xtask help` lists the commands and variables)");
            }
            ExitCode::from(err.exit_code())
        }
    }
}

fn run() -> Result<u8> {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| Error::Usage(format!("argument {arg:?} is not valid UTF-8")))
        })
        .collect::<Result<_>>()?;
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            print_help();
            return Ok(2);
        }
    };
    if !rest.is_empty() {
        return Err(Error::Usage(format!(
            "`{command}` takes no arguments (got {rest:?}); options are environment variables"
        )));
    }
    let paths = Paths::discover();
    match command {
        "help" | "-h" | "--help" => {
            print_help();
            Ok(0)
        }
        "build" => images::build(&paths).map(|()| 0),
        "run" => boot(&paths, &Settings::from_env()?, false),
        "gdb" => boot(&paths, &Settings::from_env()?, true),
        "lint" => lint::run(&paths).map(|()| 0),
        "test" => boot_test::run(&paths, &Settings::from_env()?),
        "bench" => bench::run(&paths, &Settings::from_env()?),
        other => Err(Error::Usage(format!("unknown command {other:?}"))),
    }
}

/// `run` and `gdb`: boot the chosen machine on this terminal.
fn boot(paths: &Paths, settings: &Settings, gdb: bool) -> Result<u8> {
    // Check the environment before the slow build.
    let (machine, initrd, bootargs) = match settings.scenario {
        Some(scenario) => {
            if settings.machine_overridden {
                eprintln!(
                    "note: TEST={} boots the scenario's own machine and bootargs; CPU, MEM, SMP, GIC, EL2, ARGS and DEMO are ignored",
                    scenario.name
                );
            }
            (scenario.machine, scenario.initrd, scenario.bootargs)
        }
        None => (
            settings.machine,
            Initrd::for_bootargs(&settings.bootargs),
            settings.bootargs.as_str(),
        ),
    };
    images::build(paths)?;
    let initrd = paths.initrd(initrd);
    let launch = Launch {
        dir: &paths.root,
        machine: &machine,
        kernel: paths.relative(&paths.image),
        initrd: initrd.as_deref().map(|path| paths.relative(path)),
        // One interactive run: the built image itself, writable (the next build remakes it).
        disk: Some(qemu::Disk {
            path: paths.relative(&paths.disk),
            read_only: false,
            faults: None,
        }),
        bootargs,
        deterministic: false,
        gdb,
    };
    if gdb {
        println!("QEMU is stopped at the first instruction. Attach from another terminal with");
        println!(
            "    gdb-multiarch {} -ex 'target remote :1234'",
            paths.show(&paths.kernel_elf)
        );
        println!("(install it with `apt-get install gdb-multiarch`).");
    }
    println!("booting {machine}; quit with Ctrl-A X");
    println!("$ {}", launch.shell_line());
    qemu::run_interactive(&launch)
}

fn print_help() {
    println!("usage: cargo xtask <command>\n\ncommands:");
    for (name, what) in COMMANDS {
        println!("  {name:<7} {what}");
    }
    println!("\nenvironment variables:");
    for (name, what) in VARS {
        println!("  {name:<7} {what}");
    }
    let names: Vec<&str> = scenarios::SCENARIOS.iter().map(|s| s.name).collect();
    println!("\nboot scenarios (TEST=<name>): {}", names.join(", "));
    let opt_in: Vec<&str> = scenarios::OPT_IN_SCENARIOS.iter().map(|s| s.name).collect();
    println!(
        "run only when named (not by `make test`): {}",
        opt_in.join(", ")
    );
    let benches: Vec<&str> = scenarios::BENCHES.iter().map(|b| b.name).collect();
    println!("benchmarks (BENCH=<name>): {}", benches.join(", "));
}
