//! `bench`: boots each benchmark under the deterministic QEMU command (docs/design.md §7),
//! collects its `BENCH <name> <value> <unit> [key=value ...]` lines, and reports medians.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use crate::config::Settings;
use crate::error::{Result, io_failed};
use crate::images::{self, Paths};
use crate::initrd::Initrd;
use crate::judge::{self, Ending, MARKERS, SYSTEM_OFF};
use crate::qemu::{self, Launch};
use crate::scenarios::{BENCH_MACHINE, BENCHES, Bench};

/// Runs at once; icount makes each run's figures independent of the host's load.
const JOBS: usize = 2;

/// Benchmarks that write to the disk (`files`: the `fileio_write*` figures write new files),
/// each run on its own copy of the image.
const WRITES_DISK: &[&str] = &["files", "cfiles"];

/// One `BENCH` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub extra: Vec<(String, String)>,
}

/// Parses a console line; `None` if it is not a `BENCH` line at all.
pub fn parse_line(line: &str) -> Option<std::result::Result<Sample, String>> {
    let rest = line.strip_prefix("BENCH ")?;
    let mut words = rest.split_whitespace();
    let (Some(name), Some(value), Some(unit)) = (words.next(), words.next(), words.next()) else {
        return Some(Err(format!(
            "malformed BENCH line (want BENCH <name> <value> <unit>): {line:?}"
        )));
    };
    let Some(value) = number(value) else {
        return Some(Err(format!("BENCH {name}: {value:?} is not a number")));
    };
    let mut extra = Vec::new();
    for word in words {
        match word.split_once('=') {
            Some((key, val)) if !key.is_empty() => extra.push((key.to_string(), val.to_string())),
            _ => return Some(Err(format!("BENCH {name}: {word:?} is not key=value"))),
        }
    }
    Some(Ok(Sample {
        name: name.to_string(),
        value,
        unit: unit.to_string(),
        extra,
    }))
}

/// A finite decimal number, written as JSON would accept it after re-formatting.
fn number(text: &str) -> Option<f64> {
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    text.parse::<f64>()
        .ok()
        .filter(|value| plain && value.is_finite())
}

/// The median; the mean of the middle two for an even count.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

/// An extra value: numbers get a median like the main value; text keeps the first run's.
#[derive(Debug, Clone, PartialEq)]
pub enum Extra {
    Number(f64),
    Text(String),
}

/// One benchmark figure over all runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub name: String,
    pub unit: String,
    pub value: f64,
    pub runs: Vec<f64>,
    pub extra: Vec<(String, Extra)>,
}

impl Summary {
    pub fn spread(&self) -> f64 {
        let max = self.runs.iter().copied().fold(f64::MIN, f64::max);
        let min = self.runs.iter().copied().fold(f64::MAX, f64::min);
        max - min
    }
}

/// Groups samples by name (sorted); every sample of a name must use the same unit.
pub fn summarize(samples: &[Sample]) -> std::result::Result<Vec<Summary>, String> {
    let mut by_name: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for sample in samples {
        by_name.entry(&sample.name).or_default().push(sample);
    }
    let mut summaries = Vec::new();
    for (name, group) in by_name {
        let unit = &group[0].unit;
        if let Some(other) = group.iter().find(|s| &s.unit != unit) {
            return Err(format!(
                "BENCH {name}: unit {unit:?} in one run, {:?} in another",
                other.unit
            ));
        }
        let runs: Vec<f64> = group.iter().map(|s| s.value).collect();
        let mut keys: Vec<&str> = Vec::new();
        for (key, _) in group.iter().flat_map(|s| &s.extra) {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
        let extra = keys
            .into_iter()
            .map(|key| {
                let values: Vec<&str> = group
                    .iter()
                    .flat_map(|s| {
                        s.extra
                            .iter()
                            .filter(|(k, _)| k == key)
                            .map(|(_, v)| v.as_str())
                    })
                    .collect();
                let numbers: Option<Vec<f64>> = values.iter().map(|v| number(v)).collect();
                let value = match numbers.as_deref().and_then(median) {
                    Some(mid) => Extra::Number(mid),
                    None => Extra::Text(values[0].to_string()),
                };
                (key.to_string(), value)
            })
            .collect();
        let value = median(&runs).unwrap_or_default();
        summaries.push(Summary {
            name: name.to_string(),
            unit: unit.clone(),
            value,
            runs,
            extra,
        });
    }
    Ok(summaries)
}

/// Integers print without a fraction; other values in Rust's shortest round-trip form, which
/// never uses an exponent and so is valid JSON.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{"<name>": {"value": .., "unit": "..", "runs": [..], "extra": {..}}, ...}`, one benchmark per line.
pub fn to_json(summaries: &[Summary]) -> String {
    let entries: Vec<String> = summaries
        .iter()
        .map(|s| {
            let runs: Vec<String> = s.runs.iter().copied().map(format_number).collect();
            let extra: Vec<String> = s
                .extra
                .iter()
                .map(|(key, value)| {
                    let value = match value {
                        Extra::Number(n) => format_number(*n),
                        Extra::Text(t) => json_string(t),
                    };
                    format!("{}: {value}", json_string(key))
                })
                .collect();
            format!(
                "  {}: {{\"value\": {}, \"unit\": {}, \"runs\": [{}], \"extra\": {{{}}}}}",
                json_string(&s.name),
                format_number(s.value),
                json_string(&s.unit),
                runs.join(", "),
                extra.join(", ")
            )
        })
        .collect();
    if entries.is_empty() {
        "{}\n".to_string()
    } else {
        format!("{{\n{}\n}}\n", entries.join(",\n"))
    }
}

/// The human-readable table.
pub fn table(summaries: &[Summary]) -> String {
    let header = ["benchmark", "median", "unit", "runs", "spread", "extra"];
    let rows: Vec<[String; 6]> = summaries
        .iter()
        .map(|s| {
            let extra: Vec<String> = s
                .extra
                .iter()
                .map(|(key, value)| match value {
                    Extra::Number(n) => format!("{key}={}", format_number(*n)),
                    Extra::Text(t) => format!("{key}={t}"),
                })
                .collect();
            [
                s.name.clone(),
                format_number(s.value),
                s.unit.clone(),
                s.runs.len().to_string(),
                format_number(s.spread()),
                extra.join(" "),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 6]| {
        let [name, median, unit, runs, spread, extra] = cells;
        let text = format!(
            "{name:<w0$}  {median:>w1$}  {unit:<w2$}  {runs:>w3$}  {spread:>w4$}  {extra}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
    }
    out
}

/// One boot's samples, or why it cannot be trusted.
fn samples_of(console: &str, ending: Ending) -> std::result::Result<Vec<Sample>, String> {
    match ending {
        Ending::Exited(0) => {}
        Ending::Exited(code) => return Err(format!("QEMU exited with status {code}")),
        Ending::Signalled => return Err("QEMU was killed by a signal".into()),
        Ending::TimedOut(after) => return Err(format!("timed out after {} s", after.as_secs())),
    }
    let lines = judge::lines(console);
    if let Some(bad) = lines
        .iter()
        .find(|l| l.starts_with("FAIL ") || MARKERS.iter().any(|m| l.starts_with(m)))
    {
        return Err(format!("the run failed: {bad}"));
    }
    if !lines.iter().any(|l| l.contains(SYSTEM_OFF)) {
        return Err(format!("no {SYSTEM_OFF:?} line"));
    }
    // A figure's line that other output broke into (it does not start the line) would
    // otherwise be lost without a word.
    if let Some(mixed) = lines
        .iter()
        .find(|l| l.contains("BENCH ") && !l.starts_with("BENCH "))
    {
        return Err(format!("a BENCH line mixed with other output: {mixed:?}"));
    }
    let samples = lines
        .iter()
        .filter_map(|l| parse_line(l))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if samples.is_empty() {
        return Err("no BENCH lines".into());
    }
    Ok(samples)
}

pub fn run(paths: &Paths, settings: &Settings) -> Result<u8> {
    images::build(paths)?;

    let benches: Vec<&Bench> = match settings.bench {
        Some(bench) => vec![bench],
        None => BENCHES.iter().collect(),
    };
    let jobs: Vec<(&Bench, usize)> = benches
        .iter()
        .flat_map(|bench| (1..=settings.runs).map(move |run| (*bench, run)))
        .collect();
    println!(
        "== benchmarks: {} × {} run(s) on {BENCH_MACHINE} under -icount",
        benches.len(),
        settings.runs
    );

    let results = qemu::parallel_map(&jobs, JOBS, |(bench, run)| {
        // A benchmark that writes files gets its own copy of the disk (written, then thrown
        // away); the others share the built image, read-only.
        let writes = WRITES_DISK.contains(&bench.name);
        let disk = if writes {
            match images::disk_copy(paths, &format!("bench-{}-{run}", bench.name)) {
                Ok(copy) => copy,
                Err(e) => {
                    return (String::new(), Err((e.to_string(), String::new())));
                }
            }
        } else {
            paths.disk.clone()
        };
        // `bench=kernel` runs under the test root task, the others under init.
        let initrd = paths.initrd(Initrd::for_bootargs(bench.bootargs));
        let launch = Launch {
            dir: &paths.root,
            machine: &BENCH_MACHINE,
            kernel: paths.relative(&paths.image),
            initrd: initrd.as_deref().map(|path| paths.relative(path)),
            disk: Some(qemu::Disk {
                path: paths.relative(&disk),
                read_only: !writes,
                faults: None,
            }),
            bootargs: bench.bootargs,
            deterministic: true,
            gdb: false,
        };
        let result = qemu::run_captured(&launch, Duration::from_secs(bench.timeout_secs), &[])
            .map_err(|e| (e.to_string(), String::new()))
            .and_then(|captured| {
                // Every run's console stays beside the results, to read when a figure looks odd.
                let log = paths.bench.join(format!("{}-{run}.log", bench.name));
                let _ = fs::create_dir_all(&paths.bench);
                let _ = fs::write(&log, &captured.console);
                samples_of(&captured.console, captured.ending)
                    .map_err(|why| (why, format!("{}{}", captured.console, captured.stderr)))
            });
        println!(
            "{:<5} {} run {run}",
            if result.is_ok() { "ok" } else { "FAIL" },
            bench.name
        );
        (launch.shell_line(), result)
    });

    let mut samples = Vec::new();
    let mut failures = 0;
    for ((bench, run), (command, result)) in jobs.iter().zip(results) {
        match result {
            Ok(found) => samples.extend(found),
            Err((why, console)) => {
                failures += 1;
                println!(
                    "==== {} run {run} failed: {why}\n$ {command}\n{console}==== end",
                    bench.name
                );
            }
        }
    }
    let summaries = summarize(&samples).map_err(crate::error::failed)?;
    print!("{}", table(&summaries));
    for s in summaries.iter().filter(|s| s.spread() != 0.0) {
        let runs: Vec<String> = s.runs.iter().copied().map(format_number).collect();
        println!(
            "note: {} differs between runs: {} (spread {})",
            s.name,
            runs.join(", "),
            format_number(s.spread())
        );
    }
    fs::create_dir_all(&paths.bench).map_err(|e| io_failed("create", &paths.bench, e))?;
    let out = paths.bench.join("results.json");
    fs::write(&out, to_json(&summaries)).map_err(|e| io_failed("write", &out, e))?;
    println!("wrote {}", paths.show(&out));
    let chart = paths.bench.join("chart.svg");
    let svg = crate::chart::svg(&crate::chart::rows(&summaries)).map_err(crate::error::failed)?;
    fs::write(&chart, svg).map_err(|e| io_failed("write", &chart, e))?;
    println!("wrote {}", paths.show(&chart));
    Ok(if failures > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, value: f64, extra: &[(&str, &str)]) -> Sample {
        let extra = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Sample {
            name: name.into(),
            value,
            unit: "instructions".into(),
            extra,
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn parses_bench_lines() {
        assert_eq!(parse_line("init: done"), None);
        assert_eq!(
            parse_line(
                "BENCH boot_to_init_instructions 123456 instructions kernel_entries=3 mode=fast"
            ),
            Some(Ok(sample(
                "boot_to_init_instructions",
                123456.0,
                &[("kernel_entries", "3"), ("mode", "fast")]
            )))
        );
        for bad in [
            "BENCH x",
            "BENCH x 12",
            "BENCH x twelve units",
            "BENCH x NaN u",
            "BENCH x inf u",
            "BENCH x 1 u novalue",
        ] {
            assert!(matches!(parse_line(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn summaries_and_json() {
        let samples = [
            sample("b", 10.0, &[("entries", "3"), ("path", "fast")]),
            sample("a", 7.0, &[]),
            sample("b", 12.0, &[("entries", "5"), ("path", "slow")]),
            sample("b", 11.0, &[("entries", "4"), ("path", "fast")]),
        ];
        let summaries = summarize(&samples).unwrap();
        assert_eq!(
            summaries
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        let b = &summaries[1];
        assert_eq!(
            (b.value, b.spread(), b.runs.clone()),
            (11.0, 2.0, vec![10.0, 12.0, 11.0])
        );
        assert_eq!(
            b.extra,
            [
                ("entries".to_string(), Extra::Number(4.0)),
                ("path".to_string(), Extra::Text("fast".into()))
            ]
        );
        assert_eq!(
            to_json(&summaries),
            "{\n  \"a\": {\"value\": 7, \"unit\": \"instructions\", \"runs\": [7], \"extra\": {}},\n  \
             \"b\": {\"value\": 11, \"unit\": \"instructions\", \"runs\": [10, 12, 11], \
             \"extra\": {\"entries\": 4, \"path\": \"fast\"}}\n}\n"
        );
        assert_eq!(to_json(&[]), "{}\n");
        let table = table(&summaries);
        assert_eq!(
            table.lines().nth(2),
            Some("b              11  instructions     3       2  entries=4 path=fast"),
            "{table}"
        );
    }

    #[test]
    fn json_escapes_and_fractions() {
        let odd = Summary {
            name: "q\"\\\n".into(),
            unit: "ns".into(),
            value: 2.5,
            runs: vec![2.0, 3.0],
            extra: vec![],
        };
        assert_eq!(
            to_json(&[odd]),
            "{\n  \"q\\\"\\\\\\u000a\": {\"value\": 2.5, \"unit\": \"ns\", \"runs\": [2, 3], \"extra\": {}}\n}\n"
        );
        let units = [
            sample("a", 1.0, &[]),
            Sample {
                unit: "ns".into(),
                ..sample("a", 1.0, &[])
            },
        ];
        assert!(summarize(&units).is_err());
    }

    #[test]
    fn runs_that_cannot_be_trusted() {
        let good = "microkernel\nBENCH boot_to_init_instructions 42 instructions\nsystem off\n";
        assert_eq!(samples_of(good, Ending::Exited(0)).unwrap().len(), 1);
        assert!(samples_of(good, Ending::Exited(1)).is_err());
        assert!(samples_of(good, Ending::TimedOut(Duration::from_secs(1))).is_err());
        assert!(
            samples_of(
                "BENCH a 1 u\nKERNEL PANIC: x\nsystem off\n",
                Ending::Exited(0)
            )
            .is_err()
        );
        assert!(samples_of("BENCH a 1 u\n", Ending::Exited(0)).is_err());
        assert!(samples_of("system off\n", Ending::Exited(0)).is_err());
        // Another task's output broke into a figure's line.
        assert!(
            samples_of(
                "BENCH a 1 u\nfile: hiBENCH b 2 u\nsystem off\n",
                Ending::Exited(0)
            )
            .is_err()
        );
    }
}
