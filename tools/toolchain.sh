#!/bin/sh
# Makes sure the toolchain that rust-toolchain.toml pins is installed with the targets and
# components it lists, and installs what is missing (`make run`, `make test`, ... run this
# first). rustup installs those only when it installs the toolchain itself: a toolchain
# that was already there (installed by hand, or by `rustup toolchain install 1.95.0` for
# another project) keeps what it has, and the build then stops at "can't find crate for
# `core`" (no AArch64 target) or "no such command: clippy".
#
# rust-toolchain.toml is the one list: its `channel`, `targets` and `components` lines are
# read here (one line each, as that file writes them).
set -eu
cd "$(dirname "$0")/.."
file=rust-toolchain.toml

# The words of the `key = [...]` line (or the string of `key = "..."`).
value() {
    sed -n "s/^$1 *= *//p" "$file" | tr -d '[]",' | tr -s ' '
}
channel=$(value channel)
profile=$(value profile)
targets=$(value targets)
components=$(value components)
if [ -z "$channel" ]; then
    echo "toolchain: no channel in $file" >&2
    exit 1
fi
if ! command -v rustup >/dev/null 2>&1; then
    echo "toolchain: rustup not found; install Rust with rustup (see README.md), then run make again" >&2
    exit 1
fi

if ! rustup toolchain list | grep -q "^$channel-"; then
    echo "toolchain: installing Rust $channel with $targets and $components"
    # shellcheck disable=SC2086 # one word per target and component
    rustup toolchain install "$channel" --profile "${profile:-minimal}" \
        $(for t in $targets; do printf ' --target %s' "$t"; done) \
        $(for c in $components; do printf ' --component %s' "$c"; done)
fi

have=$(rustup target list --installed --toolchain "$channel")
missing=""
for t in $targets; do
    echo "$have" | grep -qx "$t" || missing="$missing $t"
done
if [ -n "$missing" ]; then
    echo "toolchain: Rust $channel lacks target(s)$missing: adding"
    # shellcheck disable=SC2086
    rustup target add --toolchain "$channel" $missing
fi

# Installed components are listed with their host triple (`clippy-x86_64-unknown-linux-gnu`).
have=$(rustup component list --installed --toolchain "$channel")
missing=""
for c in $components; do
    echo "$have" | grep -Eq "^$c(-[a-z0-9_]+-[a-z0-9_]+-.*)?$" || missing="$missing $c"
done
if [ -n "$missing" ]; then
    echo "toolchain: Rust $channel lacks component(s)$missing: adding"
    # shellcheck disable=SC2086
    rustup component add --toolchain "$channel" $missing
fi
