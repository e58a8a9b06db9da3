#!/usr/bin/env bash
# Run the product: web app, task workers, the AIQ sandbox and localstripe, with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
PY=.venv/bin/python
PORT="${PORT:-8000}"
# The demo has two companies (GBP and EUR), each with a Stripe account of its own (a
# localstripe each: scripts/services/localstripe.sh) delivering to its own webhook address.
# Money that arrives through no account of its own (the default address) is the UK company's
# (ledger/companies.py, docs/configuration.md).
export PAYMENTS_ENTITY="${PAYMENTS_ENTITY:-demo}"
mkdir -p var/log

pids=()
# Every process this script started, with their children (qcluster forks a sentinel, workers,
# a monitor and a pusher), found by parent pid.
# (each returns 0: this runs under set -e)
tree() { local pid; for pid in "$@"; do echo "$pid"; tree $(pgrep -P "$pid" || true); done; }
alive() { local pid; for pid in "$@"; do if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi; done; }
# Stop within seconds on Ctrl-C or SIGTERM (an IDE, systemd, docker stop). SIGTERM first:
# qcluster stops its idle workers at once, but waits for a worker in the middle of a task (a
# sync, an outbox drain) for as long as the task runs, and its workers ignore SIGINT. So what
# is still running after STOP_GRACE_SECONDS is killed. Nothing is lost: a task's writes are
# transactions, and an outbox command interrupted mid-call is read back from AIQ by the next
# worker once its lease ends (RELIABILITY.md), so it is never sent twice.
cleanup() {
  trap - EXIT INT TERM
  local all left
  all=$(tree "${pids[@]}")
  [ -n "$all" ] || exit 0
  kill -TERM ${pids[@]} 2>/dev/null || true
  for _ in $(seq 1 $(( ${STOP_GRACE_SECONDS:-5} * 5 ))); do
    left=$(alive $all); [ -n "$left" ] || break; sleep 0.2
  done
  left=$(alive $all)
  if [ -n "$left" ]; then
    echo "Still busy after ${STOP_GRACE_SECONDS:-5} s, stopped at once: $(echo $left)" >&2
    kill -KILL $left 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  exit 0
}
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

# qcluster under a watchdog: restarted when it exits or is wedged (due outbox rows and no
# progress for OUTBOX_STALL_SECONDS; ledger/outbox/health.py)
$PY manage.py outbox_watchdog >var/log/qcluster.log 2>&1 & pids+=($!)
echo "Task workers: logging to var/log/qcluster.log"
echo
echo "$logins"
echo "Open http://127.0.0.1:${PORT}/ and log in with one of the demo logins above."
echo
if [ -n "${STRIPE_API_BASE:-}" ]; then
  # off the start-up's path: each company's Stripe account (its clearing bank was pulled
  # above) with its localstripe's webhooks pointed at the account's address, then demo Stripe
  # payments in each once the web app answers, so the webhooks reach it
  ( $PY manage.py seed_demo_accounts --webhooks "http://127.0.0.1:${PORT}" >var/log/stripe-demo.log 2>&1
    for _ in $(seq 1 60); do curl -fs -o /dev/null "http://127.0.0.1:${PORT}/accounts/login/" && break; sleep 0.5; done
    $PY manage.py stripe_demo_payments --if-empty >>var/log/stripe-demo.log 2>&1 ) &
  pids+=($!)  # stopped with the rest
fi
# DEBUG is off (no URL list on a 404, no variables on an error page); --insecure serves static
$PY manage.py runserver "127.0.0.1:${PORT}" --noreload --insecure &
pids+=($!)
wait "${pids[-1]}"
