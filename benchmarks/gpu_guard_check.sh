#!/usr/bin/env bash
# GPU-safe validation, checked in one go on a lent GPU machine (issue 11, item 7). Not run yet:
# no GPU was lent to the session that wrote it, so RESULTS.md has no figures from it.
#
# What it shows, each step under its own time limit (about 9 minutes in all):
#  1. render info: the GPU, and the loop guard on (the renderer string ends in "| loop guard");
#  2. the bundled examples imported and validated through the real command with the guard on,
#     the endless-loop example shadertoy:ipEx09 included (before the guard it hung an H200 and
#     everything after it): its status and log, and validation programs/s on this GPU;
#  3. no hang after it: nvidia-smi's utilisation, then a batch rendered in this process
#     (render bench on the programs that validated ok) must finish within its limit;
#  4. ours/bare images/s (benchmarks/bench_render.py, ours with the guard on, as a GPU runs it)
#     with the picture drawn upside down, and the read cost both ways (benchmarks/bench_readback.py);
#  5. guarded against unguarded pictures and frame times of the examples that validated ok with
#     the guard on (benchmarks/bench_loopguard.py --examples; its unguarded side only draws
#     programs whose guarded loops ended).
#
# Setup as benchmarks/gpu_run.sh: Debian's EGL/GL loader packages unpacked from .gl/ and the
# Python wheels the machine lacks from .whl/ (moderngl, glcontext, sqlalchemy, typer, … for
# Python 3.12), both prepared beforehand on a machine with the registries (see the device notes;
# both folders ignored through .git/info/exclude); either may be absent where the machine has
# them. Results land in $OUT (7 files: nvidia_smi.txt, render_info.json, validate.json,
# statuses.txt, bench_batch.json, bench_render.txt, bench_readback.txt).
#
# Run, from the repository root, on the GPU machine:  bash benchmarks/gpu_guard_check.sh
# (through the device tool: command "bash benchmarks/gpu_guard_check.sh", carry [".gl", ".whl"],
# timeout_s 600). Pass: step 1 prints "loop_guard": true, step 2 stores shadertoy:ipEx09 as timeout
# (its log "loop guard tripped …", or the frame deadline if even the capped run of its heavy body
# is slower), and finishes; step 3 exits 0 well within its limit; step 5 reports no compile
# failure the guard introduced and no differing picture.
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".gl/*.deb" >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 IMAGEPROGRAMS_LOOP_GUARD=on
OUT=${OUT:-/tmp/gpu-guard-out}
DB=/tmp/gpu-guard.db
mkdir -p "$OUT"
rm -f "$DB"
py() { python3 "$@"; }

echo "== 1. device"
nvidia-smi --query-gpu=name,driver_version,utilization.gpu --format=csv,noheader | tee "$OUT/nvidia_smi.txt"
timeout 60 py -m render.cli info --json | tee "$OUT/render_info.json" || { echo "no GL context: stop"; exit 1; }

echo "== 2. validate the bundled examples with the guard on (ipEx09 included)"
timeout 60 py -m harvest.cli import examples/shaders21k examples/shadertoys.jsonl examples/glslsandbox.jsonl \
  examples/gl-transitions.json examples/repo --db "$DB" >/dev/null || exit 1
started=$(date +%s)
timeout 180 py -m render.cli validate --db "$DB" --workers 8 --deadline 20 --frame-deadline 10 \
  --loop-guard on --json | tee "$OUT/validate.json"
echo "validate exit $? after $(( $(date +%s) - started )) s"
timeout 60 py - "$DB" <<'EOF' | tee "$OUT/statuses.txt"
import sys
from collections import Counter
from corpus.db import open_catalogue
from corpus.programs import find_program
from corpus.validations import latest_program_validation
cat = open_catalogue(sys.argv[1])
with cat.session() as s:
    v = latest_program_validation(s, find_program(s, "shadertoy:ipEx09"))
print("shadertoy:ipEx09:", v and v["status"], "|", v and v["log"])
print("renderer:", v and v["renderer"])
EOF

echo "== 3. no hang: the GPU is idle and a batch renders after the endless loop"
sleep 2
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | tee -a "$OUT/nvidia_smi.txt"
started=$(date +%s)
timeout 90 py -m render.cli bench --db "$DB" --sizes 64,256 --frames 30 --json > "$OUT/bench_batch.json"
echo "render bench exit $? after $(( $(date +%s) - started )) s (124 = it hung until the limit)" | tee -a "$OUT/nvidia_smi.txt"

echo "== 4. ours/bare with the picture drawn upside down, and the read cost both ways"
timeout 150 py benchmarks/bench_render.py --sizes 64,128,256 --frames 30 --repeats 3 2>&1 | tee "$OUT/bench_render.txt" | tail -16
timeout 60 py benchmarks/bench_readback.py --sizes 64,256 --reads 200 --frames 30 --repeats 3 2>&1 | tee "$OUT/bench_readback.txt" | tail -4

echo "== 5. guarded vs unguarded pictures and frame times on the GPU"
timeout 90 py benchmarks/bench_loopguard.py --examples --workers 8 --deadline 20 --size 256x256 2>&1 \
  | tee -a "$OUT/bench_render.txt" | tail -12
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | tee -a "$OUT/nvidia_smi.txt"
