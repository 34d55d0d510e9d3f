#!/usr/bin/env bash
# c2c-web GPU kit (docs/gpu-kit.md): runs the WGSL fuser bench with no network, no Node and no root.
# Usage: run.sh [OUT_DIR] [bench flags: --layers N --tokens N --reps N --warmup N --check-tokens N --dtypes f16,f32,int8]
# OUT_DIR defaults to $OUT, else ./gpu-kit-out. VK_ICD_FILENAMES (or VK_DRIVER_FILES) overrides the NVIDIA ICD.
# C2C_KIT_TIMEOUT (s, default 450) bounds the bench so the whole run fits in 8 minutes.
set -euo pipefail
KIT=$(cd "$(dirname "$0")" && pwd)
if [[ $# -gt 0 && $1 != -* ]]; then OUT_DIR=$1; shift; else OUT_DIR=${OUT:-$PWD/gpu-kit-out}; fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/c2c-gpu-kit.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT_DIR/gpu-kit.log"
say() { echo "[run.sh] $*" | tee -a "$LOG"; }
: >"$LOG"
t0=$(date +%s)

# xz, else Python's lzma (both are on the GPU image; one is enough).
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
unxz_to "$KIT/node.xz" "$WORK/node" && chmod +x "$WORK/node"
unxz_to "$KIT/dawn.node.xz" "$WORK/dawn.node"

# The Vulkan loader from the .debs, into $WORK/root (never /): dpkg-deb, else ar + tar, else Python.
deb_x() {
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$2"; return; fi
  if command -v ar >/dev/null; then
    local d; d=$(mktemp -d "$WORK/deb.XXXX")
    (cd "$d" && ar x "$1" && tar -xf data.tar.* -C "$2"); return
  fi
  python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'!<arch>\n'
i = 8
while i < len(data):
    name, size = data[i:i + 16].decode().strip().rstrip('/'), int(data[i + 48:i + 58])
    if name.startswith('data.tar'):
        tarfile.open(fileobj=io.BytesIO(data[i + 60:i + 60 + size])).extractall(sys.argv[2])
    i += 60 + size + (size & 1)
PY
}
mkdir -p "$WORK/root"
for f in "$KIT"/debs/*.deb; do deb_x "$f" "$WORK/root"; done
export LD_LIBRARY_PATH="$WORK/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The driver's own libraries (the ICD's libGLX_nvidia.so.0), where the image keeps them.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do if [[ -d $d ]]; then LD_LIBRARY_PATH+=":$d"; fi; done

# The Vulkan driver: NVIDIA's ICD (device README path first) unless one is given.
if [[ -z ${VK_ICD_FILENAMES:-} && -z ${VK_DRIVER_FILES:-} ]]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
    /etc/vulkan/icd.d/nvidia_icd.json; do
    if [[ -f $icd ]]; then export VK_ICD_FILENAMES=$icd; break; fi
  done
  [[ -n ${VK_ICD_FILENAMES:-} ]] || say "no NVIDIA Vulkan ICD found; the Vulkan loader will search its default paths"
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}
[[ -n $VK_DRIVER_FILES ]] || unset VK_DRIVER_FILES
mkdir -m 0700 "$WORK/xdg" && export XDG_RUNTIME_DIR="$WORK/xdg"

say "unpacked in $(( $(date +%s) - t0 )) s; ICD ${VK_ICD_FILENAMES:-${VK_DRIVER_FILES:-default}}"
[[ -n ${VK_ICD_FILENAMES:-} && -f ${VK_ICD_FILENAMES:-} ]] && tr -d '\n' <"$VK_ICD_FILENAMES" | tee -a "$LOG" && echo | tee -a "$LOG"
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | tee -a "$LOG" || true

set +e
timeout "${C2C_KIT_TIMEOUT:-450}" "$WORK/node" "$KIT/bench.mjs" --dawn "$WORK/dawn.node" --out "$OUT_DIR" "$@" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
set -e
say "bench exit code $rc after $(( $(date +%s) - t0 )) s; JSON and log in $OUT_DIR"
exit "$rc"
