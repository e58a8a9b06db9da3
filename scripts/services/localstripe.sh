# Sourced by scripts/run-services.sh (from scripts/run.sh): start localstripe, the local
# stand-in for Stripe's API, point the app at it and register the app's webhook with it.
# Expects: the bash array "pids", PORT (the web app's port). Exports STRIPE_API_BASE.
LOCALSTRIPE_PORT="${LOCALSTRIPE_PORT:-8420}"
mkdir -p var/log
# localstripe keeps its objects in a file of its own across restarts; a fresh app database
# starts it from scratch too, so the two never disagree about which payments exist.
_ls_args=()
[ -e "${SQLITE_PATH:-var/aiqrecon.sqlite3}" ] || [ -n "${DATABASE_URL:-}" ] || _ls_args=(--from-scratch)
.venv/bin/localstripe --port "$LOCALSTRIPE_PORT" "${_ls_args[@]}" >var/log/localstripe.log 2>&1 &
pids+=($!)
export STRIPE_API_BASE="http://127.0.0.1:${LOCALSTRIPE_PORT}"
for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null -u sk_test_localstripe: "$STRIPE_API_BASE/v1/balance" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
# The first secret of STRIPE_WEBHOOK_SECRETS signs deliveries (the app accepts all of them).
_whsec="${STRIPE_WEBHOOK_SECRETS:-whsec_localstripe_dev}"
_whsec="${_whsec%%,*}"
if curl -fsS -o /dev/null -X POST "$STRIPE_API_BASE/_config/webhooks/aiqrecon" \
  --data-urlencode "url=http://127.0.0.1:${PORT:-8000}/webhooks/stripe/" \
  --data-urlencode "secret=${_whsec}"; then
  echo "localstripe: $STRIPE_API_BASE (webhooks -> http://127.0.0.1:${PORT:-8000}/webhooks/stripe/)"
else
  echo "localstripe did not answer on $STRIPE_API_BASE; see var/log/localstripe.log" >&2
fi
unset _whsec
