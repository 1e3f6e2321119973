//! `test`: the host unit tests, then every boot scenario under QEMU (two at a time), judged.

use std::fs;
use std::time::Duration;

use crate::config::Settings;
use crate::error::{Result, failed};
use crate::images::{self, Paths};
use crate::judge::{self, Check};
use crate::qemu::{self, Launch};
use crate::scenarios::{SCENARIOS, Scenario};

/// QEMU processes at once: the build machine has two cores and TCG keeps one busy.
const JOBS: usize = 2;

/// A judged boot.
struct Outcome {
    scenario: &'static Scenario,
    /// Every check, the scenario's own last.
    checks: Vec<Check>,
    ok: bool,
    command: String,
    console: String,
    stderr: String,
    elapsed: Duration,
}

pub fn run(paths: &Paths, settings: &Settings) -> Result<u8> {
    if settings.scenario.is_none() {
        crate::lint::run(paths)?;
    }
    println!("== host unit tests");
    images::cargo(paths, &["test"]).map_err(|e| failed(format!("host unit tests failed: {e}")))?;
    println!("== build");
    images::build(paths)?;

    let selected: Vec<&'static Scenario> = match settings.scenario {
        Some(scenario) => vec![scenario],
        None => SCENARIOS.iter().collect(),
    };
    println!(
        "== boot tests: {} scenario(s), {} at a time",
        selected.len(),
        JOBS.min(selected.len())
    );
    let outcomes = qemu::parallel_map(&selected, JOBS, |scenario| {
        let outcome = boot(paths, scenario);
        println!(
            "{:<5} {} ({:.1} s)",
            verdict(outcome.ok),
            scenario.name,
            outcome.elapsed.as_secs_f64()
        );
        outcome
    });

    for outcome in outcomes.iter().filter(|outcome| !outcome.ok) {
        print_console(outcome);
    }
    println!("== summary");
    let (mut passed, mut failed) = (0, 0);
    for outcome in &outcomes {
        println!(
            "{:<5} {} ({:.1} s)",
            verdict(outcome.ok),
            outcome.scenario.name,
            outcome.elapsed.as_secs_f64()
        );
        for check in &outcome.checks {
            println!("        {:<5} {}", verdict(check.ok), check.what);
            if check.ok {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    let all_ok = outcomes.iter().all(|outcome| outcome.ok);
    Ok(if failed > 0 || !all_ok { 1 } else { 0 })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "FAIL" }
}

/// Boots one scenario and judges it; a boot that cannot even start is a failed check. A
/// scenario with a follow-up (`Scenario::then`) boots it next on the same disk copy.
fn boot(paths: &Paths, scenario: &'static Scenario) -> Outcome {
    // Runs that only read share the built image (read-only); a run that writes gets a copy.
    let disk_copy = if scenario.writes_disk {
        images::disk_copy(paths, scenario.name).and_then(|copy| match scenario.disk_prep {
            // What a preparation added with `fatfs` is tidied as the built image was.
            Some(prep) => prep(&copy)
                .and_then(|()| crate::disk::tidy(&copy).or(Ok(())))
                .map(|()| copy)
                .map_err(|e| crate::error::failed(format!("preparing the disk copy: {e}"))),
            None => Ok(copy),
        })
    } else {
        Ok(paths.disk.clone())
    };
    let mut outcome = Outcome {
        scenario,
        checks: Vec::new(),
        ok: false,
        command: String::new(),
        console: String::new(),
        stderr: String::new(),
        elapsed: Duration::ZERO,
    };
    match &disk_copy {
        Ok(disk) => {
            let mut next = Some(scenario);
            let mut number = 1;
            while let Some(run) = next {
                let label = (number > 1).then(|| format!("boot {number} ({}): ", run.name));
                let boot = boot_on(paths, run, disk, !scenario.writes_disk);
                match &label {
                    None => {
                        outcome.command = boot.command;
                        outcome.console = boot.console;
                        outcome.stderr = boot.stderr;
                    }
                    Some(label) => {
                        outcome.command = format!("{}\n$ {}", outcome.command, boot.command);
                        outcome.console = format!(
                            "{}\n---- {label}after power-off, on the same disk\n{}",
                            outcome.console, boot.console
                        );
                        outcome.stderr.push_str(&boot.stderr);
                    }
                }
                outcome.elapsed += boot.elapsed;
                let all_ok = boot.checks.iter().all(|check| check.ok);
                outcome
                    .checks
                    .extend(boot.checks.into_iter().map(|check| Check {
                        what: format!("{}{}", label.as_deref().unwrap_or(""), check.what),
                        ..check
                    }));
                // A follow-up needs the first boot to have ended as expected.
                next = run.then.filter(|_| all_ok);
                number += 1;
            }
        }
        Err(e) => outcome.checks.push(Check::fail(e.to_string())),
    }
    outcome.ok = outcome.checks.iter().all(|check| check.ok);
    outcome.checks.push(Check {
        ok: outcome.ok,
        what: format!("scenario {}", scenario.name),
    });
    outcome
}

/// One judged boot of `scenario` on the disk image `disk`.
struct Boot {
    checks: Vec<Check>,
    command: String,
    console: String,
    stderr: String,
    elapsed: Duration,
}

/// Boots `scenario` on `disk` and judges the console, then the files it must have left.
fn boot_on(paths: &Paths, scenario: &Scenario, disk: &std::path::Path, read_only: bool) -> Boot {
    let initrd = paths.initrd(scenario.initrd);
    // A disk copy's preparation may leave injected I/O errors beside it (`disk::prep`).
    let faults_path = disk.with_extension("blkdebug");
    let faults = faults_path.exists().then(|| paths.relative(&faults_path));
    let launch = Launch {
        dir: &paths.root,
        machine: &scenario.machine,
        kernel: paths.relative(&paths.image),
        initrd: initrd.as_deref().map(|path| paths.relative(path)),
        disk: Some(qemu::Disk {
            path: paths.relative(disk),
            read_only,
            faults,
        }),
        bootargs: scenario.bootargs,
        deterministic: false,
        gdb: false,
    };
    let mut boot = Boot {
        checks: Vec::new(),
        command: launch.shell_line(),
        console: String::new(),
        stderr: String::new(),
        elapsed: Duration::ZERO,
    };
    // The kernel reports the initrd's size; expect exactly the file's.
    let initrd_bytes = match &initrd {
        None => Ok(None),
        Some(path) => fs::metadata(path)
            .map(|meta| Some(meta.len()))
            .map_err(|e| format!("cannot read {}: {e}", paths.show(path))),
    };
    // A volume consistent before the boot must be after it (a damaged one is left alone).
    let consistent_before =
        !read_only && scenario.fsck && crate::disk::fsck(disk).is_ok_and(|p| p.is_empty());
    let captured = initrd_bytes.and_then(|bytes| {
        let timeout = Duration::from_secs(scenario.timeout_secs);
        qemu::run_captured(&launch, timeout, scenario.input)
            .map(|captured| (bytes, captured))
            .map_err(|e| e.to_string())
    });
    match captured {
        Ok((bytes, captured)) => {
            let expect = scenario.expectation(bytes);
            boot.checks = judge::judge(&expect, &captured.console, captured.ending);
            if let Some(check) = scenario.console_check {
                boot.checks.push(check(&judge::lines(&captured.console)));
            }
            if !read_only {
                boot.checks
                    .extend(scenario.disk_files.iter().map(|f| disk_check(disk, f)));
                boot.checks.extend(long_names_check(disk));
                if consistent_before {
                    boot.checks.push(fsck_check(disk));
                }
            }
            boot.console = captured.console;
            boot.stderr = captured.stderr;
            boot.elapsed = captured.elapsed;
        }
        Err(why) => boot.checks.push(Check::fail(why)),
    }
    boot
}

/// Reads `f.path` back out of the disk image the guest wrote and compares every byte.
fn disk_check(image: &std::path::Path, f: &crate::scenarios::DiskCheck) -> Check {
    let want = (f.bytes)();
    match crate::disk::read_file(image, f.path) {
        Ok(got) if got == want => Check::ok(format!(
            "disk: {} holds its {} bytes after power-off",
            f.path,
            want.len()
        )),
        Ok(got) => {
            let first = got.iter().zip(&want).position(|(a, b)| a != b);
            Check::fail(format!(
                "disk: {} differs after power-off: {} bytes (want {}), first difference at {:?}",
                f.path,
                got.len(),
                want.len(),
                first
            ))
        }
        Err(e) => Check::fail(format!("disk: cannot read {} back: {e}", f.path)),
    }
}

/// After a boot that could write: no long-name entry in the root directory is left without
/// its 8.3 entry (an `unlink` that forgot them). Nothing to say for an image whose volume
/// does not parse (a scenario that damaged it on purpose).
fn long_names_check(image: &std::path::Path) -> Option<Check> {
    match crate::disk::orphan_long_names(image) {
        Ok(Some(0)) => Some(Check::ok("disk: no orphaned long-name entries")),
        Ok(Some(n)) => Some(Check::fail(format!(
            "disk: {n} long-name entries without their 8.3 entry in the root directory"
        ))),
        Ok(None) => None,
        Err(e) => Some(Check::fail(format!(
            "disk: cannot read the root directory: {e}"
        ))),
    }
}

/// The volume needs no repair after the run (`disk::fsck`: chains, cross-links, lost
/// clusters, sizes, long names, the FAT copies, FAT32's free count; `fsck.fat -n` too when
/// the host has it).
fn fsck_check(image: &std::path::Path) -> Check {
    match crate::disk::fsck(image) {
        Ok(p) if p.is_empty() => Check::ok("disk: the FAT volume is consistent after power-off"),
        Ok(p) => Check::fail(format!(
            "disk: the FAT volume needs repair: {}",
            p.join("; ")
        )),
        Err(e) => Check::fail(format!("disk: cannot check the volume: {e}")),
    }
}

fn print_console(outcome: &Outcome) {
    let name = outcome.scenario.name;
    println!("==== console of failed scenario {name} (interactively: TEST={name} cargo xtask run)");
    println!("$ {}", outcome.command);
    for line in judge::lines(&outcome.console) {
        println!("{line}");
    }
    if !outcome.stderr.trim().is_empty() {
        println!("---- QEMU stderr");
        print!("{}", outcome.stderr);
        if !outcome.stderr.ends_with('\n') {
            println!();
        }
    }
    println!("==== end of {name}");
}
