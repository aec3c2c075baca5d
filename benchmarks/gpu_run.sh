#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md, as taken on a lent GPU machine (no network there):
# Debian's EGL/GL loader packages unpacked from .gl/ and the Python wheels the image lacks from
# .whl/ (both prepared beforehand on a machine with the registries; see the device notes), then
# render info, the render benchmark, validation of the bundled examples and a short training run
# whose images/s say whether rendering or the model bounds training on a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m render.cli info --json | tee "$OUT/render_info.json"
timeout 150 python3 benchmarks/bench_render.py --sizes 64,128,256 --frames 30 --repeats 3 2>&1 | tee "$OUT/bench_render.txt" | tail -25
timeout 120 python3 benchmarks/bench_validate.py --workers 8 --samples-limit 0 2>&1 | tee "$OUT/bench_validate.txt" | tail -15
rm -rf /tmp/run
timeout 150 python3 -m pretrain.cli train --snapshot demo/snapshot --method simclr --arch resnet18 --size 64 \
  --batch-size 256 --steps 60 --workers 8 --out /tmp/run --json 2>&1 | tee "$OUT/train_gpu.json" | tail -3
