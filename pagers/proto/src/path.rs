//! A task's working directory (`rt::cwd`): how a relative path becomes the path the file
//! protocol carries ([`join`]), the rule the runtime and the shell's `cd` share.

use alloc::string::String;
use alloc::vec::Vec;

/// `path` taken from directory `cwd` (absolute, `/` for the root), as an absolute path with
/// no `.`, `..` or empty parts: `join("/bin", "../disk")` is `/disk`, `join("/bin", "/")`
/// is `/`. `..` at the root stays at the root, as in POSIX.
pub fn join(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let start = if path.starts_with('/') { "" } else { cwd };
    for part in start.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    let mut out = String::with_capacity(path.len() + cwd.len() + 1);
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn joins() {
        assert_eq!(join("/", "bin"), "/bin");
        assert_eq!(join("/bin", "hello"), "/bin/hello");
        assert_eq!(join("/bin", ".."), "/");
        assert_eq!(join("/bin", "../../.."), "/");
        assert_eq!(join("/bin", "/"), "/");
        assert_eq!(join("/a/b", "./c//d/../e/"), "/a/b/c/e");
        assert_eq!(join("/a", "/x/./y"), "/x/y");
        assert_eq!(join("/", ""), "/");
        assert_eq!(join("/a", ""), "/a");
        // Hostile input: long runs, odd characters.
        assert_eq!(join("/", &"../".repeat(10_000)), "/");
        assert_eq!(join("/a", "\u{0}/é"), "/a/\u{0}/é");
    }
}
