# Sourced by scripts/run-services.sh (from scripts/run.sh): start the AIQ sandbox, the local
# stand-in for AccountsIQ's SOAP API (sandbox/README.md), seeded with the demo company on
# first run. Expects the bash array "pids". Exports AIQ_SANDBOX_URL and the demo credentials
# (sandbox-only defaults unless already set in the environment).
AIQ_SANDBOX_PORT="${AIQ_SANDBOX_PORT:-8765}"
AIQ_SANDBOX_DB="${AIQ_SANDBOX_DB:-var/aiq-sandbox.sqlite3}"
mkdir -p var/log "$(dirname "$AIQ_SANDBOX_DB")"
# The seed stores these keys; the app reads the same ones (settings: AIQ_<KEY>_...).
eval "$(.venv/bin/python -c 'import shlex; from sandbox.seed import credentials
for k, v in credentials().items(): print(f"export {k}={shlex.quote(v)}")')"
if [ ! -e "$AIQ_SANDBOX_DB" ]; then
  .venv/bin/python -m sandbox seed --db "$AIQ_SANDBOX_DB"
fi
# each demo company's Stripe clearing bank account (added to a database seeded before them)
.venv/bin/python -m sandbox demo-clearing --db "$AIQ_SANDBOX_DB" >/dev/null
.venv/bin/python -m sandbox serve --port "$AIQ_SANDBOX_PORT" --db "$AIQ_SANDBOX_DB" \
  >var/log/aiq-sandbox.log 2>&1 &
pids+=($!)
export AIQ_SANDBOX_URL="http://127.0.0.1:${AIQ_SANDBOX_PORT}"
_aiq_up=""
for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null "$AIQ_SANDBOX_URL/_sandbox/health" 2>/dev/null; then
    _aiq_up=1
    break
  fi
  sleep 0.2
done
if [ -n "$_aiq_up" ]; then
  echo "AIQ sandbox: $AIQ_SANDBOX_URL (books in $AIQ_SANDBOX_DB, log var/log/aiq-sandbox.log)"
else
  echo "AIQ sandbox did not answer on $AIQ_SANDBOX_URL; see var/log/aiq-sandbox.log" >&2
fi
unset _aiq_up
