//! The parser and the path rule, with the lines a person types and the ones an attacker
//! would, and a fuzzer: no line makes the parser panic.

extern crate std;

use super::*;
use alloc::string::ToString;
use alloc::vec;
use std::format;

const VARS: Vars = Vars {
    status: 130,
    pid: 11,
    last_background: Some(12),
};

fn words(c: &Command) -> Vec<&str> {
    c.argv.iter().map(String::as_str).collect()
}

fn one(line: &str) -> Command {
    let mut p = parse(line, &VARS).expect("parses");
    assert_eq!(p.len(), 1, "{line:?}");
    let mut p = p.remove(0);
    assert_eq!(p.commands.len(), 1, "{line:?}");
    p.commands.remove(0)
}

#[test]
fn words_and_quotes() {
    assert_eq!(words(&one("echo  a\tb ")), ["echo", "a", "b"]);
    assert_eq!(words(&one("echo 'a  b' \"c d\"")), ["echo", "a  b", "c d"]);
    assert_eq!(words(&one("echo x'y'\"z\"")), ["echo", "xyz"]);
    assert_eq!(words(&one("echo '' \"\"")), ["echo", "", ""]);
    assert_eq!(words(&one("echo a\\ b \\|")), ["echo", "a b", "|"]);
    assert_eq!(words(&one("echo '|;&<>' \"#\"")), ["echo", "|;&<>", "#"]);
    assert_eq!(words(&one("echo \"a\\\"b\\$?\"")), ["echo", "a\"b$?"]);
}

#[test]
fn variables() {
    assert_eq!(
        words(&one("echo $? $$ $! $ $x a$?b")),
        ["echo", "130", "11", "12", "$", "$x", "a130b"]
    );
    assert_eq!(
        words(&one("echo \"s=$?\" 's=$?'")),
        ["echo", "s=130", "s=$?"]
    );
    let none = Vars {
        last_background: None,
        ..VARS
    };
    let p = parse("echo $!", &none).unwrap();
    assert_eq!(words(&p[0].commands[0]), ["echo", ""]);
}

#[test]
fn comments_and_empty() {
    assert_eq!(parse("", &VARS), Ok(vec![]));
    assert_eq!(parse("   \t ", &VARS), Ok(vec![]));
    assert_eq!(parse("# all of it", &VARS), Ok(vec![]));
    assert_eq!(words(&one("echo a#b # c")), ["echo", "a#b"]);
}

#[test]
fn pipelines_and_lists() {
    let p = parse("a x | b | c y; d & e &", &VARS).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].commands.len(), 3);
    assert!(!p[0].background);
    assert_eq!(words(&p[0].commands[2]), ["c", "y"]);
    assert!(p[1].background);
    assert_eq!(words(&p[1].commands[0]), ["d"]);
    assert!(p[2].background);
    let p = parse("loop&", &VARS).unwrap();
    assert!(p[0].background);
}

#[test]
fn pipeline_texts() {
    assert_eq!(pipelines("a; b & c"), ["a;", " b &", " c"]);
    assert_eq!(
        pipelines("a 'x;y' \"p&q\" r\\;s # t; u"),
        ["a 'x;y' \"p&q\" r\\;s "]
    );
    assert_eq!(pipelines("a;  "), ["a;"]);
    assert_eq!(pipelines(""), Vec::<&str>::new());
    assert_eq!(pipelines("#x;y"), Vec::<&str>::new());
    assert_eq!(pipelines("a#b;c"), ["a#b;", "c"]);
}

#[test]
fn redirections() {
    let c = one("cat < in.txt > out.txt");
    assert_eq!(c.input.as_deref(), Some("in.txt"));
    assert_eq!(
        c.output,
        Some(Output {
            path: "out.txt".to_string(),
            append: false
        })
    );
    let c = one(">>log echo hi");
    assert_eq!(words(&c), ["echo", "hi"]);
    assert!(c.output.unwrap().append);
    let c = one("echo a>b");
    assert_eq!(words(&c), ["echo", "a"]);
    assert_eq!(c.output.unwrap().path, "b");
}

#[test]
fn errors() {
    let err = |line: &str| parse(line, &VARS).unwrap_err();
    assert_eq!(err("echo 'a"), ParseError::UnterminatedQuote);
    assert_eq!(err("echo \"a"), ParseError::UnterminatedQuote);
    assert_eq!(err("echo a\\"), ParseError::TrailingBackslash);
    assert_eq!(err("| a"), ParseError::Unexpected("|"));
    assert_eq!(err("a |"), ParseError::Unexpected("|"));
    assert_eq!(err("a || b"), ParseError::Unexpected("|"));
    assert_eq!(err("a && b"), ParseError::Unexpected("&"));
    assert_eq!(err(";"), ParseError::Unexpected(";"));
    assert_eq!(err("a ;; b"), ParseError::Unexpected(";"));
    assert_eq!(err("a | ; b"), ParseError::Unexpected(";"));
    assert_eq!(err("a >"), ParseError::MissingFile(">"));
    assert_eq!(err("a > | b"), ParseError::MissingFile(">"));
    assert_eq!(err("a <"), ParseError::MissingFile("<"));
    assert_eq!(err("> f"), ParseError::Unexpected("newline"));
    let many = "x ".repeat(MAX_WORDS + 1);
    assert_eq!(err(&many), ParseError::TooManyWords);
    assert!(parse(&"x ".repeat(MAX_WORDS), &VARS).is_ok());
    let long = "a|".repeat(MAX_COMMANDS) + "a";
    assert_eq!(err(&long), ParseError::TooManyCommands);
    let long = "a;".repeat(MAX_COMMANDS + 1);
    assert_eq!(err(&long), ParseError::TooManyCommands);
    assert!(parse(&"a;".repeat(MAX_COMMANDS), &VARS).is_ok());
    // Every error has a message.
    assert!(!format!("{}", ParseError::TooManyWords).is_empty());
}

/// A small generator (xorshift), so the fuzzer needs no crate and repeats itself.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Lines of the shell's own characters (quotes, operators, `$`, `\`, `#`), random bytes
/// and long runs: parsing returns, and what it returns keeps the parser's promises.
#[test]
fn fuzz_never_panics() {
    const ALPHABET: &[char] = &[
        'a', 'b', ' ', '\t', '|', '&', ';', '<', '>', '\'', '"', '\\', '$', '?', '!', '#', '\n',
        '\r', 'é', '\u{0}', '\u{7f}', '\u{3}',
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for round in 0..200_000 {
        let len = (rng.next() % 80) as usize;
        let line: String = (0..len)
            .map(|_| {
                if round % 7 == 0 {
                    char::from_u32((rng.next() % 0x800) as u32).unwrap_or('x')
                } else {
                    ALPHABET[(rng.next() as usize) % ALPHABET.len()]
                }
            })
            .collect();
        if let Ok(pipelines) = parse(&line, &VARS) {
            // Pipeline by pipeline, the same.
            let mut again = Vec::new();
            for piece in super::pipelines(&line) {
                again.extend(parse(piece, &VARS).expect("a piece of a good line parses"));
            }
            assert_eq!(again, pipelines, "{line:?}");
            let mut commands = 0;
            for p in &pipelines {
                assert!(!p.commands.is_empty(), "{line:?}");
                for c in &p.commands {
                    assert!(!c.argv.is_empty(), "{line:?}");
                    assert!(c.argv.len() <= MAX_WORDS);
                    commands += 1;
                }
            }
            assert!(commands <= MAX_COMMANDS, "{line:?}");
        }
    }
    // Long lines.
    for piece in ["a", "'", "\"", "|", "a|", "$?", "\\", ">", "x y ", "#"] {
        let _ = parse(&piece.repeat(10_000), &VARS);
    }
}
