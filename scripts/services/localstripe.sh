# Sourced by scripts/run-services.sh (from scripts/run.sh): start localstripe, the local
# stand-in for Stripe's API, twice: one Stripe account per demo company (Demo Trading Ltd, GBP;
# Demo Trading Ireland, EUR), each with its own key, address and webhook secret, which the
# app reads from the environment (STRIPE_UK_* / STRIPE_IE_*: each company's ProviderAccount
# names them; manage.py seed_demo_accounts makes the accounts and points each localstripe's
# webhooks at its account's own address). The UK one is also the installation's default
# (STRIPE_API_BASE), delivering to the default address until its account exists.
# Expects: the bash array "pids", PORT (the web app's port). Exports STRIPE_API_BASE and the
# accounts' variables.
LOCALSTRIPE_PORT="${LOCALSTRIPE_PORT:-8420}"
LOCALSTRIPE_IE_PORT="${LOCALSTRIPE_IE_PORT:-$((LOCALSTRIPE_PORT + 1))}"
mkdir -p var/log
# Each keeps its objects in a file of its own across restarts (scripts/localstripe_instance.py);
# a fresh app database starts them from scratch too, so they never disagree about which
# payments exist.
_ls_args=()
[ -e "${SQLITE_PATH:-var/aiqrecon.sqlite3}" ] || [ -n "${DATABASE_URL:-}" ] || _ls_args=(--from-scratch)
.venv/bin/python scripts/localstripe_instance.py var/localstripe-uk.pickle \
  --port "$LOCALSTRIPE_PORT" "${_ls_args[@]}" >var/log/localstripe.log 2>&1 &
pids+=($!)
.venv/bin/python scripts/localstripe_instance.py var/localstripe-ie.pickle \
  --port "$LOCALSTRIPE_IE_PORT" "${_ls_args[@]}" >var/log/localstripe-ie.log 2>&1 &
pids+=($!)
export STRIPE_API_BASE="http://127.0.0.1:${LOCALSTRIPE_PORT}"
export STRIPE_UK_API_BASE="$STRIPE_API_BASE"
export STRIPE_UK_API_KEY="${STRIPE_UK_API_KEY:-sk_test_demo_uk}"
export STRIPE_UK_WEBHOOK_SECRET="${STRIPE_UK_WEBHOOK_SECRET:-whsec_demo_uk_localstripe}"
export STRIPE_IE_API_BASE="http://127.0.0.1:${LOCALSTRIPE_IE_PORT}"
export STRIPE_IE_API_KEY="${STRIPE_IE_API_KEY:-sk_test_demo_ie}"
export STRIPE_IE_WEBHOOK_SECRET="${STRIPE_IE_WEBHOOK_SECRET:-whsec_demo_ie_localstripe}"
for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null -u sk_test_localstripe: "$STRIPE_API_BASE/v1/balance" 2>/dev/null \
    && curl -fsS -o /dev/null -u sk_test_localstripe: "$STRIPE_IE_API_BASE/v1/balance" 2>/dev/null; then
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
  echo "localstripe: $STRIPE_API_BASE (Demo Trading Ltd), $STRIPE_IE_API_BASE (Demo Trading Ireland)"
else
  echo "localstripe did not answer on $STRIPE_API_BASE; see var/log/localstripe.log" >&2
fi
unset _whsec
