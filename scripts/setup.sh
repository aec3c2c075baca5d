#!/usr/bin/env bash
# Set up a fresh machine for imageprograms: a virtual environment with the package and its
# test tools. Idempotent and quick when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: git (the git crawl source runs it, its tests make repositories), Mesa's EGL
# and DRI drivers (headless OpenGL: llvmpipe on the CPU, or a GPU's driver where there is one).
missing=()
command -v git >/dev/null || missing+=(git ca-certificates)
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1 ' || missing+=(libegl1)
[ -n "$(ls /usr/lib/*/dri/swrast_dri.so /usr/lib/dri/swrast_dri.so 2>/dev/null)" ] || missing+=(libgl1-mesa-dri)
# Fashion-MNIST for the linear probe (pretrain probe --dataset fashion-mnist) and its tests.
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
# PostgreSQL's server (the scale-out catalogue): the tests start throwaway clusters of their own.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages: ${missing[*]}" >&2
  fi
fi
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch==2.13.0 (the [pretrain] extra) is the CPU wheel already on this machine's disk.
  .venv/bin/python -m pip install --quiet -e '.[dev,render,pretrain,postgres]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
