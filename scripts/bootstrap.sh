#!/usr/bin/env bash
# Create .venv and install the project with its dev tools; quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip uv
  .venv/bin/uv pip install --python .venv/bin/python -q -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
if [ -x scripts/assets.sh ]; then scripts/assets.sh; fi
