//! `cargo xtask lint`: formatting and clippy, for the host crates and for both AArch64
//! targets, with warnings as errors (docs/design.md §8: lints live in one place, the workspace's
//! `[workspace.lints]`; this runs them everywhere). `cargo xtask test` runs it first.
//!
//! It also checks that the README and `docs/` stand alone ([`doc_links`]): every link and
//! every `*.md` they name is a file of the repository, so that a person who cloned it finds
//! what they are pointed at.

use crate::error::{Result, failed};
use crate::images::Paths;
use crate::images::cargo;
use std::path::{Component, Path, PathBuf};

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
    ("crt", "aarch64-unknown-none"),
    ("sh", "aarch64-unknown-none"),
];

pub fn run(paths: &Paths) -> Result<()> {
    println!("== lint: links of README.md and docs/ stay inside the repository");
    let problems = doc_links(&paths.root);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        return Err(failed(format!(
            "{} link(s) in README.md or docs/ point outside the repository",
            problems.len()
        )));
    }
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

/// The Markdown files a reader of the repository reads: `README.md` and `docs/*.md`.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    if let Ok(dir) = std::fs::read_dir(root.join("docs")) {
        let mut docs: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        docs.sort();
        files.extend(docs);
    }
    files
}

/// Every problem with the links of the README and `docs/` (empty: none): a link (`[text](to)`
/// or `[label]: to`) that is not a web or mail address and does not name a file or folder
/// inside `root` (an absolute path, one that climbs out with `..`, one that does not exist),
/// and a `*.md` file named in the text that is no file of the repository (a design page kept
/// elsewhere, say). Each problem is `file:line: what`.
pub fn doc_links(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for file in doc_files(root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            problems.push(format!("{}: cannot be read", file.display()));
            continue;
        };
        let dir = file.parent().unwrap_or(root);
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            let at = |what: String| format!("{shown}:{}: {what}", n + 1);
            for to in link_targets(line) {
                if let Err(why) = check_target(root, dir, &to) {
                    problems.push(at(format!("link to {to:?}: {why}")));
                }
            }
            for name in md_names(line) {
                let found = [dir, root, &root.join("docs")]
                    .iter()
                    .any(|base| check_target(root, base, &name).is_ok());
                if !found {
                    problems.push(at(format!(
                        "names {name:?}, which is not in the repository"
                    )));
                }
            }
        }
    }
    problems
}

/// The targets of the links on `line`: `](to)` and a reference definition `[label]: to`.
fn link_targets(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        found.push(rest[..end].trim().to_string());
        rest = &rest[end..];
    }
    let t = line.trim_start();
    if t.starts_with('[')
        && let Some(i) = t.find("]: ")
    {
        found.push(t[i + 3..].trim().to_string());
    }
    found
}

/// The `*.md` file names on `line` (words of letters, digits, `_`, `-`, `.` and `/` ending in
/// `.md`), web addresses left out.
fn md_names(line: &str) -> Vec<String> {
    let text: Vec<&str> = line
        .split_whitespace()
        .filter(|w| !w.contains("://"))
        .collect();
    text.join(" ")
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_-./".contains(c)))
        .filter(|w| w.ends_with(".md") && w.len() > 3)
        .map(|w| w.trim_start_matches("./").to_string())
        .collect()
}

/// Whether link target `to`, read from a file in `dir`, is a web or mail address or a file
/// or folder inside `root`.
fn check_target(root: &Path, dir: &Path, to: &str) -> std::result::Result<(), &'static str> {
    let to = to.split_whitespace().next().unwrap_or("");
    if to.is_empty() {
        return Err("empty");
    }
    if ["http://", "https://", "mailto:"]
        .iter()
        .any(|p| to.starts_with(p))
        || to.starts_with('#')
    {
        return Ok(());
    }
    let path = to.split('#').next().unwrap_or(to);
    if path.starts_with('/') || path.contains("://") {
        return Err("an absolute path, outside the repository");
    }
    // Resolve `.` and `..` by hand: the path must never climb above the root.
    let mut inside: Vec<Component> = dir
        .strip_prefix(root)
        .map_err(|_| "the file is not in the repository")?
        .components()
        .collect();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(_) => inside.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                inside.pop().ok_or("climbs out of the repository")?;
            }
            _ => return Err("an absolute path, outside the repository"),
        }
    }
    let full: PathBuf = root.join(inside.iter().collect::<PathBuf>());
    if full.exists() {
        Ok(())
    } else {
        Err("no such file in the repository")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository in a temporary folder: `files` (path, text).
    fn repo(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("doclinks-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        root
    }

    #[test]
    fn links_inside_pass() {
        let root = repo(
            "good",
            &[
                (
                    "README.md",
                    "See [the design](docs/design.md#1-the-idea), [code](src/lib.rs), \
                     [web](https://example.org/x.md), [me](#top), `docs/kernel.md`.\n\
                     [ref]: docs/kernel.md\n",
                ),
                (
                    "docs/design.md",
                    "[kernel](kernel.md) and [home](../README.md); pagers.md\n",
                ),
                ("docs/kernel.md", "kernel\n"),
                ("docs/pagers.md", "pagers\n"),
                ("src/lib.rs", ""),
            ],
        );
        assert_eq!(doc_links(&root), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn links_outside_fail() {
        let root = repo(
            "bad",
            &[
                (
                    "README.md",
                    "[notes](../shared/seeds/notes.txt) [abs](/work/shared/design/ARCHITECTURE.md)\n\
                     [gone](docs/missing.md)\n",
                ),
                (
                    "docs/a.md",
                    "[up](../../outside.md) as ARCHITECTURE.md says (§5)\n[x]: ../../y\n",
                ),
            ],
        );
        let problems = doc_links(&root);
        let has = |s: &str| problems.iter().any(|p| p.contains(s));
        assert!(
            has("README.md:1: link to \"../shared/seeds/notes.txt\": climbs out"),
            "{problems:?}"
        );
        assert!(has(
            "README.md:1: link to \"/work/shared/design/ARCHITECTURE.md\": an absolute"
        ));
        assert!(has(
            "README.md:2: link to \"docs/missing.md\": no such file"
        ));
        assert!(has("docs/a.md:1: link to \"../../outside.md\": climbs out"));
        assert!(has("docs/a.md:1: names \"ARCHITECTURE.md\""));
        assert!(has("docs/a.md:2: link to \"../../y\""));
        let _ = std::fs::remove_dir_all(&root);
    }

    /// The repository itself: what `make test` checks.
    #[test]
    fn this_repository_stands_alone() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let root = root.canonicalize().unwrap();
        assert_eq!(doc_links(&root), Vec::<String>::new());
    }
}
