//! The shell's pure part, host-tested (`cargo test -p sh`): the command-line parser
//! ([`parse`]). The shell itself (`main.rs`: the prompt,
//! the built-ins, running programs) runs only on the target.
//!
//! A line is pipelines separated by `;` or `&` (`&` runs the one before it in the
//! background); a pipeline is commands joined by `|`; a command is words and redirections
//! (`< file`, `> file`, `>> file`). Words split at blanks; `'...'` keeps everything
//! literally, `"..."` keeps blanks and expands `$?`, `$$` and `$!`; `\` takes the next
//! character literally; `#` at the start of a word begins a comment. The parser never
//! panics and bounds what it builds ([`MAX_WORDS`], [`MAX_COMMANDS`]).
//!
//! Variables expand when their pipeline is about to run (`false; echo $?` prints the
//! status of `false`): the shell checks the whole line with [`parse`] first, then cuts it
//! into its pipelines' texts ([`pipelines`]) and parses each again just before it runs.
#![no_std]

extern crate alloc;

#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Words of one command, at most (the runtime passes at most 256 strings to a program).
pub const MAX_WORDS: usize = 64;
/// Commands on one line (over all its pipelines), at most.
pub const MAX_COMMANDS: usize = 16;

/// One program or built-in to run, with its redirections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The name first; never empty.
    pub argv: Vec<String>,
    /// `< file`.
    pub input: Option<String>,
    /// `> file` or `>> file`.
    pub output: Option<Output>,
}

/// Where `>` or `>>` sends a command's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub path: String,
    /// `>>`: at the end of the file instead of replacing it.
    pub append: bool,
}

/// Commands joined by `|`, run together, each one's output the next one's input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pipeline {
    /// Never empty.
    pub commands: Vec<Command>,
    /// Ended by `&`: the shell does not wait for it.
    pub background: bool,
}

/// What `$?`, `$$` and `$!` expand to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    /// `$?`: the last foreground pipeline's exit status.
    pub status: i32,
    /// `$$`: the shell's pid.
    pub pid: u64,
    /// `$!`: the last background task's pid (empty if none).
    pub last_background: Option<u64>,
}

/// Why a line could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A `'` or `"` without its end.
    UnterminatedQuote,
    /// A `\` at the end of the line.
    TrailingBackslash,
    /// An operator where a command should be (`| x`, `x ||`, `;;`, `&&`).
    Unexpected(&'static str),
    /// `<`, `>` or `>>` without a file name after it.
    MissingFile(&'static str),
    /// More than [`MAX_WORDS`] words in a command.
    TooManyWords,
    /// More than [`MAX_COMMANDS`] commands on the line.
    TooManyCommands,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnterminatedQuote => f.write_str("unterminated quote"),
            ParseError::TrailingBackslash => f.write_str("\\ at the end of the line"),
            ParseError::Unexpected(op) => write!(f, "syntax error near `{op}`"),
            ParseError::MissingFile(op) => write!(f, "no file name after `{op}`"),
            ParseError::TooManyWords => write!(f, "more than {MAX_WORDS} words in a command"),
            ParseError::TooManyCommands => {
                write!(f, "more than {MAX_COMMANDS} commands on a line")
            }
        }
    }
}

/// A piece of the line: a word or an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Pipe,
    Amp,
    Semi,
    Less,
    Great,
    GreatGreat,
}

impl Token {
    fn text(&self) -> &'static str {
        match self {
            Token::Word(_) => "word",
            Token::Pipe => "|",
            Token::Amp => "&",
            Token::Semi => ";",
            Token::Less => "<",
            Token::Great => ">",
            Token::GreatGreat => ">>",
        }
    }
}

/// Splits `line` into words and operators, expanding the variables.
fn tokens(line: &str, vars: &Vars) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    // The word being built; `Some` once it has begun (an empty `''` is a word too).
    let mut word: Option<String> = None;
    let finish = |word: &mut Option<String>, out: &mut Vec<Token>| {
        if let Some(w) = word.take() {
            out.push(Token::Word(w));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => finish(&mut word, &mut out),
            '#' if word.is_none() => break,
            '|' | '&' | ';' | '<' => {
                finish(&mut word, &mut out);
                out.push(match c {
                    '|' => Token::Pipe,
                    '&' => Token::Amp,
                    ';' => Token::Semi,
                    _ => Token::Less,
                });
            }
            '>' => {
                finish(&mut word, &mut out);
                if chars.peek() == Some(&'>') {
                    chars.next();
                    out.push(Token::GreatGreat);
                } else {
                    out.push(Token::Great);
                }
            }
            '\\' => {
                let next = chars.next().ok_or(ParseError::TrailingBackslash)?;
                word.get_or_insert_with(String::new).push(next);
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(ParseError::UnterminatedQuote),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\' | '$')) => {
                            if let Some(c) = chars.next() {
                                w.push(c);
                            }
                        }
                        Some('$') => expand(&mut chars, vars, w),
                        Some(c) => w.push(c),
                        None => return Err(ParseError::UnterminatedQuote),
                    }
                }
            }
            '$' => expand(&mut chars, vars, word.get_or_insert_with(String::new)),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    finish(&mut word, &mut out);
    Ok(out)
}

/// After a `$`: `?`, `$` or `!` expand; any other `$` stays as it is.
fn expand(chars: &mut core::iter::Peekable<core::str::Chars<'_>>, vars: &Vars, w: &mut String) {
    use core::fmt::Write;
    let _ = match chars.peek() {
        Some('?') => write!(w, "{}", vars.status),
        Some('$') => write!(w, "{}", vars.pid),
        Some('!') => match vars.last_background {
            Some(pid) => write!(w, "{pid}"),
            None => Ok(()),
        },
        _ => {
            w.push('$');
            return;
        }
    };
    chars.next();
}

/// Parses one command line (empty or a comment: no pipelines).
pub fn parse(line: &str, vars: &Vars) -> Result<Vec<Pipeline>, ParseError> {
    let mut pipelines = Vec::new();
    let mut pipeline = Pipeline::default();
    let mut command = Command::default();
    let mut commands = 0usize;
    let mut tokens = tokens(line, vars)?.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(w) => {
                if command.argv.len() == MAX_WORDS {
                    return Err(ParseError::TooManyWords);
                }
                command.argv.push(w);
            }
            Token::Less | Token::Great | Token::GreatGreat => {
                let op = token.text();
                let Some(Token::Word(file)) = tokens.next() else {
                    return Err(ParseError::MissingFile(op));
                };
                match token {
                    Token::Less => command.input = Some(file),
                    _ => {
                        command.output = Some(Output {
                            path: file,
                            append: token == Token::GreatGreat,
                        })
                    }
                }
            }
            Token::Pipe | Token::Amp | Token::Semi => {
                if command.argv.is_empty() {
                    return Err(ParseError::Unexpected(token.text()));
                }
                commands += 1;
                if commands > MAX_COMMANDS {
                    return Err(ParseError::TooManyCommands);
                }
                pipeline.commands.push(core::mem::take(&mut command));
                if token == Token::Pipe {
                    if tokens.peek().is_none() {
                        return Err(ParseError::Unexpected("|"));
                    }
                    continue;
                }
                pipeline.background = token == Token::Amp;
                pipelines.push(core::mem::take(&mut pipeline));
            }
        }
    }
    if !command.argv.is_empty() {
        commands += 1;
        if commands > MAX_COMMANDS {
            return Err(ParseError::TooManyCommands);
        }
        pipeline.commands.push(command);
        pipelines.push(pipeline);
    } else if command.input.is_some() || command.output.is_some() {
        // `> file` alone: a redirection without a command.
        return Err(ParseError::Unexpected("newline"));
    }
    Ok(pipelines)
}

/// The text of each pipeline of `line`, its `;` or `&` included (a comment is left out):
/// [`parse`] of each gives the pipelines [`parse`] of the line gives, one at a time, so
/// that the variables of each expand when it runs. Splits only where the parser would
/// (not inside quotes, not after `\\`).
pub fn pipelines(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = line.char_indices().peekable();
    // Whether the next character would begin a word (a `#` there begins a comment).
    let mut word_start = true;
    while let Some((at, c)) = chars.next() {
        let mut starts_word = false;
        match c {
            ' ' | '\t' | '\r' | '\n' | '|' | '<' | '>' => starts_word = true,
            '#' if word_start => {
                out.push(&line[start..at]);
                return finish_pieces(out);
            }
            ';' | '&' => {
                let end = at + c.len_utf8();
                out.push(&line[start..end]);
                start = end;
                starts_word = true;
            }
            '\\' => {
                chars.next();
            }
            '\'' => {
                for (_, c) in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
            }
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            chars.next_if(|(_, c)| matches!(c, '"' | '\\' | '$'));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        word_start = starts_word;
    }
    out.push(&line[start..]);
    finish_pieces(out)
}

/// Drops the pieces that hold no command (blanks after the last `;`).
fn finish_pieces(mut pieces: Vec<&str>) -> Vec<&str> {
    pieces.retain(|p| !p.trim().is_empty());
    pieces
}
