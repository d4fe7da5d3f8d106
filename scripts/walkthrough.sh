#!/usr/bin/env bash
# Re-runs the README's walkthrough exactly as written, in a fresh copy of the repository, on the
# tiny model it uses. The walkthrough is every ```sh block between the lines
# `<!-- walkthrough -->` and `<!-- /walkthrough -->` of README.md, run in order by one
# `bash -euo pipefail` (so a command that fails, or a block that no longer matches the binary,
# fails the run and names the line).
#
#   scripts/walkthrough.sh BUILD_DIR [WORK_DIR]
#
# The copy holds what a fresh `git clone` would (tracked files as they are in the working tree,
# plus untracked files git does not ignore), with `build` a link to BUILD_DIR so the README's
# `build/apps/grpo` is the binary just built. WORK_DIR (default: a new temporary directory,
# removed on success) keeps the copy and its runs/ for a look afterwards.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [WORK_DIR]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
[ -x "$build/apps/grpo" ] || { echo "$0: $build/apps/grpo not found: build first (make build)" >&2; exit 2; }
if [ $# -ge 2 ]; then
  work=$2
  rm -rf "$work" && mkdir -p "$work"
  keep=1
else
  work=$(mktemp -d /tmp/grpo-walkthrough.XXXXXX)
  keep=0
fi
work=$(cd "$work" && pwd)

# The walkthrough's script: the sh blocks between the markers.
script=$work.walkthrough.sh
awk '
  /^<!-- walkthrough -->/ { inside = 1; next }
  /^<!-- \/walkthrough -->/ { inside = 0; next }
  inside && /^```sh/ { code = 1; next }
  inside && /^```/ { code = 0; next }
  code { print }
' "$src/README.md" > "$script"
[ -s "$script" ] || { echo "$0: README.md has no \`\`\`sh block between <!-- walkthrough --> and <!-- /walkthrough -->" >&2; exit 1; }

# The fresh copy.
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar -cf - --null -T -) | tar -xf - -C "$work"
else
  (cd "$src" && tar -cf - --exclude=./build --exclude=./runs .) | tar -xf - -C "$work"
fi
rm -rf "$work/build" "$work/runs"
ln -s "$build" "$work/build"

echo "== the README's walkthrough ($(wc -l < "$script") lines) in $work"
start=$(date +%s)
(cd "$work" && PS4='+ walkthrough line $LINENO: ' bash -euxo pipefail "$script")
echo "== walkthrough passed in $(( $(date +%s) - start )) s"
rm -f "$script"
[ "$keep" = 1 ] || rm -rf "$work"
