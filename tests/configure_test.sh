#!/usr/bin/env bash
# The configure step's answers to a wrong platform (ctest -R configure), on the real CMakeLists:
#  1. a torch other than the pinned one is an error naming the found and the expected versions;
#  2. GRPO_SYSTEM_TORCH=ON takes it knowingly, with a warning;
#  3. without nvcc the CUDA parts are skipped with one line saying why, and GRPO_CUDA=ON refuses.
# The other torch is a stand-in package (only its version and paths are read at configure time).
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/grpo_configure_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pinned=$(sed -n 's/^torch==//p' "$src/python/requirements.txt")
mkdir -p "$tmp/fake/torch"
cat > "$tmp/fake/torch/__init__.py" <<'PY'
__version__ = "2.9.0+cpu"
class version:
    cuda = None
class _C:
    _GLIBCXX_USE_CXX11_ABI = True
PY
printf '#!/bin/sh\nPYTHONPATH=%s exec python3 "$@"\n' "$tmp/fake" > "$tmp/python-fake"
chmod +x "$tmp/python-fake"
fails=0
check() {  # check NAME EXPECTED_STATUS PATTERN... -- CMAKE_ARGS...
  local name=$1 want=$2; shift 2
  local patterns=()
  while [ "$1" != "--" ]; do patterns+=("$1"); shift; done
  shift
  local out rc
  out=$(cmake -S "$src" -B "$tmp/b-$name" -DGRPO_SERVICES=OFF "$@" 2>&1); rc=$?
  if { [ "$want" = ok ] && [ $rc -ne 0 ]; } || { [ "$want" = error ] && [ $rc -eq 0 ]; }; then
    echo "FAIL $name: configure exited $rc, expected $want"; echo "$out" | tail -20; fails=$((fails + 1)); return
  fi
  for p in "${patterns[@]}"; do
    if ! grep -qF -- "$p" <<<"$out"; then
      echo "FAIL $name: configure output lacks: $p"; echo "$out" | tail -20; fails=$((fails + 1)); return
    fi
  done
  echo "ok   $name: $(grep -F -- "${patterns[0]}" <<<"$out" | head -1 | sed 's/^ *//' | cut -c1-200)"
}
check other-torch error "found torch 2.9.0+cpu" "expected $pinned" "GRPO_SYSTEM_TORCH=ON" -- -DGRPO_PYTHON="$tmp/python-fake"
check system-torch ok "building against torch 2.9.0+cpu" "CUDA parts: skipped (torch 2.9.0+cpu is a CPU-only build)" \
  -- -DGRPO_PYTHON="$tmp/python-fake" -DGRPO_SYSTEM_TORCH=ON
# No nvcc: neither on PATH nor where the toolkit installs it (GRPO_NVCC, the cached search result).
PATH=/usr/bin:/bin check no-nvcc ok "CUDA parts: skipped (no nvcc found" -- -DGRPO_NVCC="$tmp/no/nvcc"
PATH=/usr/bin:/bin check cuda-required error "GRPO_CUDA=ON but the CUDA parts cannot be built: no nvcc found" \
  -- -DGRPO_NVCC="$tmp/no/nvcc" -DGRPO_CUDA=ON
check cuda-off ok "CUDA parts: skipped (GRPO_CUDA=OFF)" -- -DGRPO_CUDA=OFF
[ $fails -eq 0 ] && echo "all configure checks passed" || { echo "$fails configure check(s) failed"; exit 1; }
