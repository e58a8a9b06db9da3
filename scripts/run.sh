#!/usr/bin/env bash
# Run the product: web app, task workers, the AIQ sandbox and localstripe, with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
PY=.venv/bin/python
PORT="${PORT:-8000}"
mkdir -p var/log

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -f scripts/run-services.sh ]; then
  # starts the AIQ sandbox and localstripe in the background and exports their URLs
  source scripts/run-services.sh
fi

$PY manage.py migrate --noinput -v0
logins="$($PY manage.py create_demo_users)"
if $PY manage.py help seed_demo >/dev/null 2>&1; then $PY manage.py seed_demo; fi
$PY manage.py seed_demo_formats
# fill the mirror from AIQ (the sandbox's demo company) and create the sweeper/sync schedules
$PY manage.py aiq_sync || echo "AIQ pull did not complete; the scheduled pull will retry"
$PY manage.py setup_schedules

$PY manage.py qcluster >var/log/qcluster.log 2>&1 & pids+=($!)
echo "Task workers: logging to var/log/qcluster.log"
echo
echo "$logins"
echo "Open http://127.0.0.1:${PORT}/ and log in with one of the demo logins above."
echo
$PY manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)
if [ -n "${STRIPE_API_BASE:-}" ]; then
  # demo Stripe payments once the web app answers, so localstripe's webhooks reach it
  ( for _ in $(seq 1 60); do curl -fs -o /dev/null "http://127.0.0.1:${PORT}/accounts/login/" && break; sleep 0.5; done
    $PY manage.py stripe_demo_payments --if-empty >>var/log/localstripe.log 2>&1 ) &
fi
wait "${pids[-1]}"
