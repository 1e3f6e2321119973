//! `shcheck`: the judge of the shell scenarios (tools/src/scenarios.rs, `shell-*`), run
//! from the shell itself. Each form prints `PASS <id>` or `FAIL <id>: <why>` and exits 0 or 1:
//! - `shcheck eq ID WANT GOT`: the two words are equal (`shcheck eq x 130 $?`);
//! - `shcheck file ID FILE WORD...`: a line of FILE holds every WORD as a whole word;
//! - `shcheck stdin ID WORD...`: a line of the input (a pipe) does;
//! - `shcheck none ID FILE WORD...`: no line of FILE holds every WORD.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use rt::println;

rt::entry!(main);

/// Reads descriptor `fd` to its end (at most 1 MiB).
fn slurp(fd: u64) -> Result<String, rt::Errno> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while all.len() < 1 << 20 {
        let n = rt::read(fd, &mut buf)?;
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n.min(buf.len())]);
    }
    Ok(String::from_utf8_lossy(&all).into_owned())
}

/// Whether a line of `text` holds every one of `words` as a whole word.
fn has_line(text: &str, words: &[&str]) -> bool {
    text.lines().any(|line| {
        words
            .iter()
            .all(|w| line.split_whitespace().any(|x| x == *w))
    })
}

fn file_text(name: &str) -> Result<String, String> {
    let fd = rt::open(name, rt::file::O_RDONLY).map_err(|e| alloc::format!("{name}: {e:?}"))?;
    let text = slurp(fd).map_err(|e| alloc::format!("{name}: {e:?}"));
    let _ = rt::close(fd);
    text
}

fn judge(args: &[&str]) -> Result<(), String> {
    match args {
        ["eq", _, want, got] if want == got => Ok(()),
        ["eq", _, want, got] => Err(alloc::format!("got {got:?}, want {want:?}")),
        ["file", _, name, words @ ..] if !words.is_empty() => {
            let text = file_text(name)?;
            if has_line(&text, words) {
                Ok(())
            } else {
                Err(alloc::format!(
                    "no line of {name} holds {words:?}; it holds {text:?}"
                ))
            }
        }
        ["none", _, name, words @ ..] if !words.is_empty() => {
            let text = file_text(name)?;
            if has_line(&text, words) {
                Err(alloc::format!("a line of {name} holds {words:?}: {text:?}"))
            } else {
                Ok(())
            }
        }
        ["stdin", _, words @ ..] if !words.is_empty() => {
            let text = slurp(0).map_err(|e| alloc::format!("input: {e:?}"))?;
            if has_line(&text, words) {
                Ok(())
            } else {
                Err(alloc::format!(
                    "no line of the input holds {words:?}; it holds {text:?}"
                ))
            }
        }
        _ => Err(String::from("usage: shcheck eq|file|none|stdin ID ...")),
    }
}

fn main(args: &[&str]) -> i32 {
    let rest = args.get(1..).unwrap_or(&[]);
    let id = rest.get(1).copied().unwrap_or("shcheck");
    match judge(rest) {
        Ok(()) => {
            println!("PASS {id}");
            0
        }
        Err(why) => {
            println!("FAIL {id}: {why}");
            1
        }
    }
}
