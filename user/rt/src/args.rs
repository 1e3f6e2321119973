//! A task's arguments and environment (`proto::args`): [`args`], [`env`], [`environ`] read
//! the area init mapped read-only at `proto::USER_ARGS` (written before the program
//! started: by `spawn` or `exec`, or a fork parent's); [`put`] fills the outgoing area at
//! `proto::USER_ARGS_OUT` for a `spawn` or `exec` with arguments.

use proto::args::{AREA_BYTES, Args};
use proto::{Errno, USER_ARGS, USER_ARGS_OUT};

/// This task's argument area (`None` for init and the servers, which have none, and for an
/// area that does not hold valid arguments).
fn own() -> Option<Args<'static>> {
    if !crate::is_task() {
        return None;
    }
    // SAFETY: init maps a user task's argument area read-only at `USER_ARGS` before the
    // task starts and for its whole life (a fixed frame: `exec` keeps it, and init writes
    // it only while the task is stopped); no part of the runtime writes it.
    let area = unsafe { core::slice::from_raw_parts(USER_ARGS as *const u8, AREA_BYTES) };
    Args::decode(area).ok()
}

/// The program's arguments, `argv[0]` (its name, by custom) first, as `main(args)`
/// receives them.
pub fn args() -> impl Iterator<Item = &'static str> + Clone {
    own().into_iter().flat_map(|a| a.argv())
}

/// The environment's `NAME=value` strings.
pub fn environ() -> impl Iterator<Item = &'static str> + Clone {
    own().into_iter().flat_map(|a| a.envp())
}

/// The value of environment variable `name`.
pub fn env(name: &str) -> Option<&'static str> {
    own().and_then(|a| a.env(name))
}

/// Puts `argv` and `envp` in the outgoing argument area, for init to read with the next
/// `SpawnArgs` or `ExecArgs`. `E2BIG` past `proto::args::ARG_MAX` bytes or `MAX_ARGS`
/// strings, `EINVAL` for an empty argv, a string holding a NUL or an environment string
/// that is not `NAME=value`.
pub(crate) fn put<'a, 'e>(
    argv: impl Iterator<Item = &'a str> + Clone,
    envp: impl Iterator<Item = &'e str> + Clone,
) -> Result<(), Errno> {
    if !crate::is_task() {
        return Err(Errno::ENOSYS);
    }
    // SAFETY: init maps the outgoing area read-write at `USER_ARGS_OUT` for a user task's
    // whole life; only this function touches it, and the task runs one thread, so no other
    // reference to it is live. The strings written come from elsewhere (the caller's or
    // the read-only area at `USER_ARGS`).
    let out = unsafe { core::slice::from_raw_parts_mut(USER_ARGS_OUT as *mut u8, AREA_BYTES) };
    proto::args::encode(argv, envp, out).map(|_| ())
}
