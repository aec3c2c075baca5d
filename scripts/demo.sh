#!/usr/bin/env bash
# The main job end to end, offline, on the bundled examples: import every dump format, detect
# licences, de-duplicate, validate and vet every program headless (OpenGL on the CPU, or a GPU),
# snapshot the vetted ones and export. Everything it writes goes under demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
rm -rf demo && mkdir demo
export IMAGEPROGRAMS_DB=demo/catalogue.db
set -x
harvest import examples/shaders21k examples/shadertoys.jsonl examples/glslsandbox.jsonl \
  examples/gl-transitions.json examples/repo
corpus dedup
corpus index
corpus stats
render info
render validate --deadline 10
render vet
render sheet --vetted --out demo/vetted.png
corpus ls --limit 0
corpus snapshot create demo --vetted
corpus snapshot create demo-nc --vetted --allow noncommercial
corpus snapshot export demo demo/snapshot
corpus snapshot verify demo/snapshot
{ set +x; } 2>/dev/null
echo "done: the catalogue is demo/catalogue.db, a contact sheet of the vetted programs demo/vetted.png"
echo "      (its credits demo/vetted.credits.md), the exported snapshot demo/snapshot (see ATTRIBUTION.md)"
