//! Judging a boot: does the console show every expected line, in order, and nothing it must not?

use std::time::Duration;

/// Line prefixes of the kernel's failure reports; each report ends with `system off`.
pub const MARKERS: [&str; 3] = ["FATAL: ", "KERNEL PANIC: ", "UNHANDLED EXCEPTION: "];
/// The kernel's last line, just before PSCI SYSTEM_OFF.
pub const SYSTEM_OFF: &str = "system off";
const PASS: &str = "PASS ";
const FAIL: &str = "FAIL ";

/// What a boot must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Substrings to find in order: each on the line of the previous one (after it) or later.
    /// Failure markers listed here are allowed on the console; any other marker fails the boot.
    pub lines: Vec<String>,
    /// The fewest `PASS` lines a good boot prints.
    pub min_pass: usize,
}

/// How the QEMU process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    /// Killed by a signal we did not send.
    Signalled,
    /// Still running at the deadline, so killed.
    TimedOut(Duration),
}

/// One counted result: a `PASS`/`FAIL` line of the guest or a condition the judge checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub what: String,
}

impl Check {
    pub fn ok(what: impl Into<String>) -> Check {
        Check {
            ok: true,
            what: what.into(),
        }
    }

    pub fn fail(what: impl Into<String>) -> Check {
        Check {
            ok: false,
            what: what.into(),
        }
    }
}

/// The console split into lines, without `\r`.
pub fn lines(console: &str) -> Vec<&str> {
    console
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect()
}

/// Judges one boot. Returns every check in console order, then the judge's own failures;
/// the boot is good when all are ok.
pub fn judge(expect: &Expectation, console: &str, ending: Ending) -> Vec<Check> {
    let lines = lines(console);
    let mut checks = Vec::new();
    let allowed: Vec<&str> = expect
        .lines
        .iter()
        .map(String::as_str)
        .filter(|line| MARKERS.iter().any(|marker| line.starts_with(marker)))
        .collect();

    let mut passes = 0;
    for line in &lines {
        if let Some(id) = line.strip_prefix(PASS) {
            passes += 1;
            checks.push(Check::ok(id.trim()));
        } else if let Some(why) = line.strip_prefix(FAIL) {
            checks.push(Check::fail(why.trim()));
        } else if MARKERS.iter().any(|marker| line.starts_with(marker))
            && !allowed.iter().any(|allowed| line.contains(allowed))
        {
            checks.push(Check::fail(format!("unexpected: {line}")));
        }
    }

    // The position just after the last match: (line, byte offset in that line).
    let mut cursor = (0, 0);
    for wanted in &expect.lines {
        match find_from(&lines, cursor, wanted) {
            Some(found) => cursor = found,
            None => checks.push(Check::fail(format!("missing expected line: {wanted:?}"))),
        }
    }

    if passes < expect.min_pass {
        checks.push(Check::fail(format!(
            "expected at least {} PASS lines, got {passes}",
            expect.min_pass
        )));
    }
    // Nothing may run after the kernel says it is powering off.
    let last = lines.iter().rposition(|line| !line.trim().is_empty());
    if let (Some(off), Some(last)) = (
        lines.iter().rposition(|line| line.contains(SYSTEM_OFF)),
        last,
    ) && off != last
    {
        checks.push(Check::fail(format!(
            "output after {SYSTEM_OFF:?}: {:?}",
            lines[off + 1..=last].join("\n")
        )));
    }
    match ending {
        Ending::Exited(0) => {}
        Ending::Exited(code) => checks.push(Check::fail(format!("QEMU exited with status {code}"))),
        Ending::Signalled => checks.push(Check::fail("QEMU was killed by a signal")),
        Ending::TimedOut(after) => checks.push(Check::fail(format!(
            "timed out after {} s",
            after.as_secs()
        ))),
    }
    checks
}

/// Finds `wanted` at or after `from`; returns the position just past it.
fn find_from(lines: &[&str], from: (usize, usize), wanted: &str) -> Option<(usize, usize)> {
    let (first, column) = from;
    lines
        .iter()
        .enumerate()
        .skip(first)
        .find_map(|(index, line)| {
            let start = if index == first { column } else { 0 };
            let rest = line.get(start..)?;
            rest.find(wanted)
                .map(|at| (index, start + at + wanted.len()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(lines: &[&str], min_pass: usize) -> Expectation {
        Expectation {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            min_pass,
        }
    }

    fn failures(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.as_str())
            .collect()
    }

    const GOOD: &str = "microkernel 0.1.0 booting\r\n\
        cpu: Cortex-A53 (MIDR 0x410fd034), entered at EL1\r\n\
        init: hello from user space\n\
        PASS a\nPASS b\nPASS c\n\
        init: done\n\
        system off\n";

    fn normal() -> Expectation {
        expect(
            &[
                "microkernel 0.1.0 booting",
                "cpu: Cortex-A53 (MIDR 0x",
                "entered at EL1",
                "init: hello from user space",
                "init: done",
                SYSTEM_OFF,
            ],
            3,
        )
    }

    #[test]
    fn good_boot_passes() {
        let checks = judge(&normal(), GOOD, Ending::Exited(0));
        assert_eq!(failures(&checks), Vec::<&str>::new());
        let ids: Vec<&str> = checks.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn missing_line_is_named() {
        let console = GOOD.replace("init: done\n", "");
        let checks = judge(&normal(), &console, Ending::Exited(0));
        assert_eq!(failures(&checks), ["missing expected line: \"init: done\""]);
    }

    #[test]
    fn order_matters() {
        let console = "init: hello from user space\nmicrokernel 0.1.0 booting\nsystem off\n";
        let checks = judge(
            &expect(&["microkernel", "init: hello", SYSTEM_OFF], 0),
            console,
            Ending::Exited(0),
        );
        assert_eq!(
            failures(&checks),
            ["missing expected line: \"init: hello\""]
        );
        // The same line may hold two expectations, but only in order.
        let checks = judge(
            &expect(&["EL1", "cpu:", SYSTEM_OFF], 0),
            GOOD,
            Ending::Exited(0),
        );
        assert_eq!(failures(&checks), ["missing expected line: \"cpu:\""]);
    }

    #[test]
    fn fail_line_fails() {
        let console = GOOD.replace("PASS b", "FAIL b: wrong answer");
        let checks = judge(&normal(), &console, Ending::Exited(0));
        assert_eq!(
            failures(&checks),
            ["b: wrong answer", "expected at least 3 PASS lines, got 2"]
        );
    }

    #[test]
    fn unexpected_fatal_fails_expected_one_does_not() {
        let console = "microkernel 0.1.0 booting\nFATAL: no initrd\nsystem off\n";
        let checks = judge(&normal(), console, Ending::Exited(0));
        assert!(
            failures(&checks).contains(&"unexpected: FATAL: no initrd"),
            "{checks:?}"
        );
        let fatal = expect(&["microkernel", "FATAL: no initrd", SYSTEM_OFF], 0);
        assert_eq!(
            failures(&judge(&fatal, console, Ending::Exited(0))),
            Vec::<&str>::new()
        );
        // A different marker than the listed one is still unexpected.
        let panic = "microkernel\nKERNEL PANIC: at x.rs:1\nsystem off\n";
        assert_eq!(failures(&judge(&fatal, panic, Ending::Exited(0))).len(), 2);
    }

    #[test]
    fn timeout_and_exit_status_fail() {
        let checks = judge(&normal(), GOOD, Ending::TimedOut(Duration::from_secs(60)));
        assert_eq!(failures(&checks), ["timed out after 60 s"]);
        let checks = judge(&normal(), GOOD, Ending::Exited(1));
        assert_eq!(failures(&checks), ["QEMU exited with status 1"]);
        let cut = "microkernel 0.1.0 booting\n";
        let checks = judge(&normal(), cut, Ending::TimedOut(Duration::from_secs(5)));
        assert_eq!(failures(&checks).len(), 7);
    }

    #[test]
    fn output_after_system_off_fails() {
        let console = format!("{GOOD}PASS late\n");
        let checks = judge(&normal(), &console, Ending::Exited(0));
        assert_eq!(
            failures(&checks),
            ["output after \"system off\": \"PASS late\""]
        );
    }

    #[test]
    fn garbage_is_harmless() {
        let console = String::from_utf8_lossy(b"\xff\xfe\r\n\0PASS\nFAIL\n");
        let checks = judge(&normal(), &console, Ending::Exited(0));
        assert!(!failures(&checks).is_empty());
    }
}
