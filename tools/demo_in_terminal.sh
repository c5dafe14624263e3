#!/usr/bin/env bash
# Run `resontinex demo` in a real terminal (a detached tmux session, 120x50) and save what a
# person would see there: the screen captured with its whole scrollback, plus the exit code.
# Why: captured pipes hide what a terminal shows (progress bars drawn with \r, colours, chatter
# that only appears on a TTY). Usage: tools/demo_in_terminal.sh [OUT_DIR] (default demo-output).
set -euo pipefail

out="${1:-demo-output}"
bin="${RESONTINEX_BIN:-$(dirname "$0")/../.venv/bin/resontinex}"
session="resontinex-demo-$$"
screen="$out/terminal.txt"
mkdir -p "$out"
rm -f "$out/.exit-code"

command -v tmux >/dev/null || { echo "tmux is not installed" >&2; exit 2; }
[ -x "$bin" ] || { echo "no resontinex console script at $bin (run make install)" >&2; exit 2; }

# a private tmux server (-L): it inherits this shell's environment and touches no other session
tmx() { tmux -L "$session" "$@"; }
# the scrollback limit must be set before the pane exists, or the pane keeps tmux's default
tmx -f /dev/null start-server \; set-option -g history-limit 20000 \; \
    new-session -d -s "$session" -x 120 -y 50
trap 'tmx kill-server 2>/dev/null || true' EXIT
tmx send-keys -t "$session" \
    "OMP_NUM_THREADS=1 '$bin' demo --out '$out'; echo \$? > '$out/.exit-code'" Enter

# the demo takes minutes; wait for its exit code (at most 15 minutes)
for _ in $(seq 1 900); do
    [ -s "$out/.exit-code" ] && break
    sleep 1
done
[ -s "$out/.exit-code" ] || { echo "the demo did not finish in 15 minutes" >&2; exit 2; }

tmx capture-pane -t "$session" -p -S - > "$screen"
code="$(cat "$out/.exit-code")"
rm -f "$out/.exit-code"
echo "exit code $code; the terminal as a person saw it: $screen ($(wc -l < "$screen") lines)"
exit "$code"
