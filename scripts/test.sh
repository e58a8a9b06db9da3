#!/usr/bin/env bash
# Run the whole test suite. Works with no PostgreSQL/Redis (those tests skip, saying why).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/pytest "$@"
