//! `cargo xtask lint`: formatting and clippy, for the host crates and for both AArch64
//! targets, with warnings as errors (STYLE.md: lints live in one place, the workspace's
//! `[workspace.lints]`; this runs them everywhere). `cargo xtask test` runs it first.

use crate::error::Result;
use crate::images::Paths;
use crate::images::cargo;

/// The target-only crates and the target each is built for.
const TARGET_CRATES: &[(&str, &str)] = &[
    ("kernel", "aarch64-unknown-none-softfloat"),
    ("init", "aarch64-unknown-none"),
    ("vm", "aarch64-unknown-none"),
    ("zero", "aarch64-unknown-none"),
    ("shm", "aarch64-unknown-none"),
    ("file", "aarch64-unknown-none"),
    ("console", "aarch64-unknown-none"),
    ("serve", "aarch64-unknown-none"),
    ("demos", "aarch64-unknown-none"),
];

pub fn run(paths: &Paths) -> Result<()> {
    println!("== lint: rustfmt, clippy (host and AArch64)");
    cargo(paths, &["fmt", "--all", "--check"])?;
    cargo(
        paths,
        &["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"],
    )?;
    for (krate, target) in TARGET_CRATES {
        cargo(
            paths,
            &[
                "clippy",
                "--quiet",
                "--release",
                "-p",
                krate,
                "--target",
                target,
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    Ok(())
}
