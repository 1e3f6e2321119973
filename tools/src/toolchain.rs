//! Tests of `tools/toolchain.sh`, which `make` runs first: against a stand-in `rustup` (a
//! shell script that answers from files and logs what it was asked), it must install the
//! pinned toolchain when it is missing, add the targets and components rust-toolchain.toml
//! lists when an installed toolchain lacks them, and do nothing when all is there.
#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The stand-in: `toolchain list`, `target list --installed` and `component list
/// --installed` print the files `toolchains`, `targets`, `components` of `$STATE`; every
/// call is logged in `$STATE/log`, one line each.
const FAKE_RUSTUP: &str = r#"#!/bin/sh
echo "$*" >> "$STATE/log"
case "$1 $2" in
    "toolchain list") cat "$STATE/toolchains" ;;
    "target list") cat "$STATE/targets" ;;
    "component list") cat "$STATE/components" ;;
esac
"#;

/// `rust-toolchain.toml`'s `key = ...` line, its words.
fn pinned(key: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = fs::read_to_string(root.join("rust-toolchain.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(key) && l[key.len()..].trim_start().starts_with('='))
        .unwrap();
    line.split_once('=')
        .unwrap()
        .1
        .split(|c: char| "[]\", ".contains(c))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Runs the script with the stand-in first on `PATH`, in a state made of `toolchains`,
/// `targets` and `components` (the listings' lines); the calls it made.
fn run(name: &str, toolchains: &str, targets: &str, components: &str) -> Vec<String> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("toolchain-test-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let rustup = bin.join("rustup");
    fs::write(&rustup, FAKE_RUSTUP).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&rustup)
        .status()
        .unwrap();
    fs::write(dir.join("toolchains"), toolchains).unwrap();
    fs::write(dir.join("targets"), targets).unwrap();
    fs::write(dir.join("components"), components).unwrap();
    fs::write(dir.join("log"), "").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("toolchain.sh");
    let out = Command::new("sh")
        .arg(&script)
        .env("PATH", path)
        .env("STATE", &dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = fs::read_to_string(dir.join("log")).unwrap();
    let _ = fs::remove_dir_all(&dir);
    log.lines()
        .filter(|l| !l.contains(" list"))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_installed_toolchain_gets_its_targets_and_components() {
    let channel = &pinned("channel")[0];
    let targets = pinned("targets");
    let components = pinned("components");
    assert!(targets.iter().any(|t| t == "aarch64-unknown-none"));
    // As `rustup toolchain install <channel>` leaves it: the host's target and no more.
    let calls = run(
        "bare",
        &format!("{channel}-x86_64-unknown-linux-gnu\nstable-x86_64-unknown-linux-gnu (default)\n"),
        "x86_64-unknown-linux-gnu\n",
        "cargo-x86_64-unknown-linux-gnu\nrustc-x86_64-unknown-linux-gnu\nrust-std-x86_64-unknown-linux-gnu\n",
    );
    assert_eq!(
        calls,
        [
            format!("target add --toolchain {channel} {}", targets.join(" ")),
            format!(
                "component add --toolchain {channel} {}",
                components.join(" ")
            ),
        ]
    );
    // One target and one component there already: only the others are added.
    let calls = run(
        "half",
        &format!("{channel}-x86_64-unknown-linux-gnu (active)\n"),
        &format!("{}\nx86_64-unknown-linux-gnu\n", targets[0]),
        &format!("{}-x86_64-unknown-linux-gnu\nrust-src\n", components[0]),
    );
    assert_eq!(
        calls,
        [
            format!(
                "target add --toolchain {channel} {}",
                targets[1..].join(" ")
            ),
            format!(
                "component add --toolchain {channel} {}",
                components[1..].join(" ")
            ),
        ]
    );
}

#[test]
fn a_complete_toolchain_is_left_alone() {
    let channel = &pinned("channel")[0];
    let targets = pinned("targets").join("\n");
    let components: String = pinned("components")
        .iter()
        .map(|c| format!("{c}-x86_64-unknown-linux-gnu\n"))
        .collect();
    let calls = run(
        "complete",
        &format!("{channel}-x86_64-unknown-linux-gnu (active)\n"),
        &format!("{targets}\nx86_64-unknown-linux-gnu\n"),
        &components,
    );
    assert!(calls.is_empty(), "{calls:?}");
}

#[test]
fn a_missing_toolchain_is_installed_with_everything() {
    let channel = &pinned("channel")[0];
    // Another version of the same number is no match (`1.95.0` is not `1.95.01`).
    let calls = run(
        "missing",
        &format!(
            "stable-x86_64-unknown-linux-gnu (default)\n{channel}1-x86_64-unknown-linux-gnu\n"
        ),
        "",
        "",
    );
    let mut install = format!("toolchain install {channel} --profile minimal");
    for t in pinned("targets") {
        install += &format!(" --target {t}");
    }
    for c in pinned("components") {
        install += &format!(" --component {c}");
    }
    assert_eq!(calls.first(), Some(&install));
}
