//! Settings from environment variables, parsed and checked before any work starts.

use std::collections::HashMap;
use std::env::{self, VarError};

use crate::error::{Error, Result};
use crate::machine::{CPUS, Cpu, DEFAULT_MACHINE, Gic, Machine, Mem};
use crate::scenarios::{self, BENCHES, Bench, SCENARIOS, Scenario};

/// Every variable the tool reads and what it does (printed by `help`).
pub const VARS: &[(&str, &str)] = &[
    (
        "CPU",
        "run/gdb: QEMU CPU model: cortex-a53 (default), cortex-a57, cortex-a72, max",
    ),
    ("MEM", "run/gdb: guest RAM, e.g. 512M (default), 2G"),
    (
        "SMP",
        "run/gdb: number of CPUs (default 1; at most 8 with GIC=2)",
    ),
    ("GIC", "run/gdb: GIC version, 2 (default) or 3"),
    (
        "EL2",
        "run/gdb: 1 starts the kernel at EL2 (virtualization=on); 0 (default)",
    ),
    (
        "ARGS",
        "run/gdb: kernel command line (bootargs), default empty",
    ),
    (
        "DEMO",
        "run/gdb: run this one program of user/demos instead of the tour, with its arguments if given (DEMO=\"anon 128\": bootargs run=anon,128, then ARGS)",
    ),
    (
        "TEST",
        "test: run only this scenario; run/gdb: boot exactly its machine, initrd and bootargs",
    ),
    ("BENCH", "bench: run only this benchmark"),
    ("RUNS", "bench: runs per benchmark (default 3)"),
];

const DEFAULT_RUNS: usize = 3;
const MAX_RUNS: usize = 100;

/// What the environment asked for.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The machine for `run`/`gdb` without `TEST`.
    pub machine: Machine,
    pub bootargs: String,
    pub scenario: Option<&'static Scenario>,
    pub bench: Option<&'static Bench>,
    pub runs: usize,
    /// Whether any of CPU, MEM, SMP, GIC, EL2, ARGS was set (`TEST` overrides them all).
    pub machine_overridden: bool,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings> {
        let mut vars = HashMap::new();
        for (name, _) in VARS {
            match env::var(name) {
                Ok(value) => {
                    vars.insert(*name, value);
                }
                Err(VarError::NotPresent) => {}
                Err(VarError::NotUnicode(_)) => {
                    return Err(bad(name, "the value is not valid UTF-8"));
                }
            }
        }
        Settings::parse(|name| vars.get(name).map(String::as_str))
    }

    /// Parses the variables `get` returns; an empty value counts as unset.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Settings> {
        let var = |name: &str| get(name).filter(|value| !value.is_empty());
        let mut machine = DEFAULT_MACHINE;
        if let Some(cpu) = var("CPU") {
            let known: Vec<&str> = CPUS.iter().map(|cpu| cpu.qemu).collect();
            machine.cpu = Cpu::from_qemu_name(cpu).ok_or_else(|| {
                bad(
                    "CPU",
                    &format!("unknown CPU {cpu:?}; known: {}", known.join(", ")),
                )
            })?;
        }
        if let Some(mem) = var("MEM") {
            machine.mem = Mem::parse(mem).map_err(|e| bad("MEM", &e))?;
        }
        if let Some(gic) = var("GIC") {
            machine.gic = match gic {
                "2" => Gic::V2,
                "3" => Gic::V3,
                _ => return Err(bad("GIC", &format!("{gic:?} is not 2 or 3"))),
            };
        }
        if let Some(smp) = var("SMP") {
            let max = machine.gic.max_cpus();
            machine.smp = smp
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    bad(
                        "SMP",
                        &format!(
                            "{smp:?} is not a CPU count from 1 to {max} (GICv{})",
                            machine.gic.version()
                        ),
                    )
                })?;
        }
        if let Some(el2) = var("EL2") {
            machine.el2 = match el2 {
                "0" => false,
                "1" => true,
                _ => return Err(bad("EL2", &format!("{el2:?} is not 0 or 1"))),
            };
        }
        let args = get("ARGS").unwrap_or_default();
        let bootargs = match var("DEMO") {
            None => args.to_string(),
            Some(line) => {
                // The program, then its arguments: init's `run=` separates them by commas.
                let words: Vec<&str> = line.split_whitespace().collect();
                let demo = words.first().copied().unwrap_or_default();
                let known = demo_programs();
                if !known.iter().any(|k| k == demo) {
                    return Err(bad(
                        "DEMO",
                        &format!("no program {demo:?}; known: {}", known.join(", ")),
                    ));
                }
                if words.iter().any(|w| w.contains(',')) {
                    return Err(bad(
                        "DEMO",
                        &format!("{line:?}: an argument cannot hold a comma"),
                    ));
                }
                let run = format!("run={}", words.join(","));
                if args.is_empty() {
                    run
                } else {
                    format!("{run} {args}")
                }
            }
        };
        let machine_overridden = ["CPU", "MEM", "SMP", "GIC", "EL2", "ARGS", "DEMO"]
            .iter()
            .any(|name| var(name).is_some());

        let scenario = match var("TEST") {
            None => None,
            Some(name) => Some(scenarios::find(name).ok_or_else(|| {
                let known: Vec<&str> = SCENARIOS
                    .iter()
                    .chain(scenarios::OPT_IN_SCENARIOS)
                    .map(|s| s.name)
                    .collect();
                bad(
                    "TEST",
                    &format!("no scenario {name:?}; known: {}", known.join(", ")),
                )
            })?),
        };
        let bench = match var("BENCH") {
            None => None,
            Some(name) => Some(scenarios::find_bench(name).ok_or_else(|| {
                let known: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
                bad(
                    "BENCH",
                    &format!("no benchmark {name:?}; known: {}", known.join(", ")),
                )
            })?),
        };
        let runs = match var("RUNS") {
            None => DEFAULT_RUNS,
            Some(runs) => runs
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_RUNS).contains(n))
                .ok_or_else(|| {
                    bad(
                        "RUNS",
                        &format!("{runs:?} is not a number from 1 to {MAX_RUNS}"),
                    )
                })?,
        };
        Ok(Settings {
            machine,
            bootargs,
            scenario,
            bench,
            runs,
            machine_overridden,
        })
    }
}

/// The programs `DEMO=` may name: those on the disk, of the demos and sh packages
/// (`images::USER_PROGRAMS`; `DEMO=sh` is `make shell`), and the C programs of `user/c`
/// (`cprog`).
pub fn demo_programs() -> Vec<String> {
    let c = crate::cprog::names(&crate::images::Paths::discover()).unwrap_or_default();
    crate::images::USER_PROGRAMS
        .iter()
        .filter(|(package, _)| crate::images::DISK_PROGRAMS_PACKAGES.contains(package))
        .flat_map(|(_, bins)| bins.iter().map(|b| b.to_string()))
        .chain(c)
        .collect()
}

fn bad(name: &str, why: &str) -> Error {
    Error::Usage(format!("environment variable {name}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{CORTEX_A72, MAX};

    fn parse(vars: &[(&str, &str)]) -> Result<Settings> {
        Settings::parse(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn defaults() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings.machine, DEFAULT_MACHINE);
        assert_eq!((settings.bootargs.as_str(), settings.runs), ("", 3));
        assert!(
            settings.scenario.is_none() && settings.bench.is_none() && !settings.machine_overridden
        );
        // Empty counts as unset.
        assert_eq!(
            parse(&[("CPU", ""), ("SMP", "")]).unwrap().machine,
            DEFAULT_MACHINE
        );
    }

    #[test]
    fn overrides() {
        let settings = parse(&[
            ("CPU", "max"),
            ("MEM", "2G"),
            ("SMP", "16"),
            ("GIC", "3"),
            ("EL2", "1"),
            ("ARGS", "test=boot x=\"y z\""),
            ("TEST", "smp4"),
            ("BENCH", "boot"),
            ("RUNS", "7"),
        ])
        .unwrap();
        assert_eq!(
            settings.machine,
            Machine {
                cpu: MAX,
                mem: Mem::gib(2),
                smp: 16,
                gic: Gic::V3,
                el2: true
            }
        );
        assert_eq!(settings.bootargs, "test=boot x=\"y z\"");
        assert_eq!(settings.scenario.map(|s| s.name), Some("smp4"));
        assert_eq!(settings.bench.map(|b| b.name), Some("boot"));
        assert_eq!(settings.runs, 7);
        assert!(settings.machine_overridden);
        assert_eq!(
            parse(&[("CPU", "cortex-a72")]).unwrap().machine.cpu,
            CORTEX_A72
        );
    }

    #[test]
    fn demo_runs_one_program() {
        let settings = parse(&[("DEMO", "fileio")]).unwrap();
        assert_eq!(settings.bootargs, "run=fileio");
        assert!(settings.machine_overridden);
        let settings = parse(&[("DEMO", "anon"), ("ARGS", "file.cache=8")]).unwrap();
        assert_eq!(settings.bootargs, "run=anon file.cache=8");
        // Arguments follow the program's name.
        let settings = parse(&[("DEMO", " mmap-file  hello.txt 2 ")]).unwrap();
        assert_eq!(settings.bootargs, "run=mmap-file,hello.txt,2");
        assert!(parse(&[("DEMO", "anon 1,2")]).is_err());
        // `make shell`: the shell and the programs beside it are on the disk too.
        assert_eq!(parse(&[("DEMO", "sh")]).unwrap().bootargs, "run=sh");
        assert_eq!(parse(&[("DEMO", "loop 3")]).unwrap().bootargs, "run=loop,3");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for vars in [
            [("CPU", "pentium")],
            [("MEM", "lots")],
            [("MEM", "0")],
            [("SMP", "0")],
            [("SMP", "9")],
            [("SMP", "-1")],
            [("GIC", "4")],
            [("EL2", "yes")],
            [("TEST", "nonesuch")],
            [("DEMO", "nonesuch")],
            [("BENCH", "nonesuch")],
            [("RUNS", "0")],
            [("RUNS", "many")],
        ] {
            let err = parse(&vars).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{vars:?}");
            assert!(err.to_string().contains(vars[0].0), "{err}");
        }
        // An unknown TEST lists the known scenarios.
        assert!(
            parse(&[("TEST", "x")])
                .unwrap_err()
                .to_string()
                .contains("initrd-missing")
        );
    }
}
