#!/usr/bin/env bash
# The project's Python environment: LibTorch (the PyPI torch wheel) for the C++ build and the live
# oracles of the tests (python/requirements.txt, every version pinned), plus pyarrow, whose Arrow
# C++ library reads Parquet datasets (python/requirements-data.txt).
#
#   scripts/pyenv.sh           creates it when missing, then prints its folder
#   scripts/pyenv.sh --path    prints the folder it lives in (created or not)
#
# It lives outside the checkout, in $GRPO_PYENV_ROOT (default ~/.cache/grpo), in a folder named
# after the hash of python/requirements.txt: every clone on the machine shares it, and a change of
# a pin makes a new one. It is built in a temporary folder and renamed when complete, so a killed
# install leaves nothing half-made; a lock keeps two builds from racing. requirements-data.txt is
# installed into that folder afterwards (marked by .data-<its hash>), so changing it does not
# download LibTorch again.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
req=$here/python/requirements.txt
root=${GRPO_PYENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/grpo}
hash=$(sha256sum "$req" | cut -c1-12)
dir=$root/pyenv-$hash
if [ "${1:-}" = "--path" ]; then echo "$dir"; exit 0; fi
data_req=$here/python/requirements-data.txt
data_mark=$dir/.data-$(sha256sum "$data_req" | cut -c1-12)
[ -f "$dir/.complete" ] && [ -f "$data_mark" ] && { echo "$dir"; exit 0; }

mkdir -p "$root"
exec 9>"$root/.lock-$hash"
flock 9
# pip install -r FILE into the environment at $1, naming what could not be installed.
install() {
  "$1/bin/python" -m pip install --disable-pip-version-check --retries 1 --timeout 30 -r "$2" >&2 && return 0
  missing=$(grep -Ev '^\s*(#|$)' "$2" | while read -r r; do
    name=${r%%[=\[<>]*}; "$1/bin/python" -m pip show -q "$name" >/dev/null 2>&1 || echo -n "$r "; done)
  echo "scripts/pyenv.sh: could not install from the package index (${PIP_INDEX_URL:-$("$1/bin/python" -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}): ${missing:-see the pip output above}" >&2
  return 1
}
if [ -f "$dir/.complete" ]; then
  [ -f "$data_mark" ] || { install "$dir" "$data_req" || exit 1; touch "$data_mark"; }
  echo "$dir"; exit 0
fi
py=${GRPO_PYTHON3:-python3}
command -v "$py" >/dev/null || { echo "scripts/pyenv.sh: $py not found (apt-get install python3 python3-venv)" >&2; exit 1; }
tmp=$dir.partial
rm -rf "$tmp"
echo "scripts/pyenv.sh: creating $dir from python/requirements.txt (about 4 GB, a few minutes)" >&2
"$py" -m venv "$tmp" >&2 || { echo "scripts/pyenv.sh: '$py -m venv' failed (apt-get install python3-venv)" >&2; exit 1; }
start=$(date +%s)
if ! install "$tmp" "$req" || ! install "$tmp" "$data_req"; then
  rm -rf "$tmp"
  exit 1
fi
touch "$tmp/.complete"
mv "$tmp" "$dir"
touch "$data_mark"
echo "scripts/pyenv.sh: $dir ready in $(( $(date +%s) - start )) s, $(du -sh "$dir" | cut -f1)" >&2
echo "$dir"
