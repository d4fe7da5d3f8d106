#!/usr/bin/env bash
# The Python environment of the llama.cpp comparison (bench/llamacpp/compare.sh): PyPI's `gguf`
# and `llama-cpp-python`, every version pinned in bench/llamacpp/requirements.txt.
#
#   bench/llamacpp/env.sh          creates it when missing, then prints its folder
#   bench/llamacpp/env.sh --path   prints the folder it lives in (created or not)
#
# It lives in ${GRPO_PYENV_ROOT:-~/.cache/grpo}/llamacpp-<first 12 hex of the requirements' sha256>.
# llama-cpp-python builds llama.cpp from source while it installs: CMAKE_ARGS makes that a CPU-only
# build for this machine's CPU (GGML_NATIVE, no BLAS, no GPU backend), two compile jobs; it takes
# minutes, once. The environment is built in a temporary folder and renamed when complete, so a
# killed install leaves nothing half-made; a lock keeps two builds from racing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
req=$here/requirements.txt
root=${GRPO_PYENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/grpo}
dir=$root/llamacpp-$(sha256sum "$req" | cut -c1-12)
if [ "${1:-}" = "--path" ]; then echo "$dir"; exit 0; fi
[ -f "$dir/.complete" ] && { echo "$dir"; exit 0; }

mkdir -p "$root"
exec 9>"$dir.lock"
flock 9
[ -f "$dir/.complete" ] && { echo "$dir"; exit 0; }   # another process built it while we waited
py=${GRPO_PYTHON3:-python3}
tmp=$dir.partial
rm -rf "$tmp"
echo "bench/llamacpp/env.sh: creating $dir (llama.cpp compiles from source: several minutes)" >&2
"$py" -m venv "$tmp" >&2 || { echo "bench/llamacpp/env.sh: '$py -m venv' failed" >&2; exit 1; }
start=$(date +%s)
# CPU-only llama.cpp tuned for this CPU; no BLAS (ggml's own kernels), no server/examples/tests.
export CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF \
-DGGML_VULKAN=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF -DLLAMA_CURL=OFF"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
export PIP_CONSTRAINT=$req   # also pins the isolated build environment (scikit-build-core)
if ! "$tmp/bin/python" -m pip install --disable-pip-version-check --no-cache-dir --no-binary llama-cpp-python \
    --retries 1 --timeout 60 -r "$req" >&2; then
  echo "bench/llamacpp/env.sh: pip install -r $req failed (see above)" >&2
  rm -rf "$tmp"
  exit 1
fi
touch "$tmp/.complete"
mv "$tmp" "$dir"
echo "bench/llamacpp/env.sh: $dir ready in $(( $(date +%s) - start )) s" >&2
echo "$dir"
