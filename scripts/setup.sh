#!/usr/bin/env bash
# Set up a fresh machine for imageprograms: a virtual environment with the package and its
# test tools. Idempotent and quick when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
# git: the git crawl source runs it, and its tests make repositories with it; a fresh Debian has none.
if ! command -v git >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends git ca-certificates >/dev/null
fi
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
