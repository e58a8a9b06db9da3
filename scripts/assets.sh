#!/usr/bin/env bash
# Install the browser assets (htmx, Chart.js) from the npm registry into static/vendor/.
# No CDN links: pages must work offline and under a strict content security policy.
# Versions are pinned; a re-run is quick when the pinned files are already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.11
CHARTJS_VERSION=4.6.1
dest=static/vendor
stamp="$dest/.versions"
want="htmx.org@${HTMX_VERSION} chart.js@${CHARTJS_VERSION}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && [ -s "$dest/htmx.min.js" ] && [ -s "$dest/chart.umd.min.js" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "scripts/assets.sh: npm is needed to fetch htmx and Chart.js (apt-get install -y npm)" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@${HTMX_VERSION}" "chart.js@${CHARTJS_VERSION}" >/dev/null)
mkdir -p "$dest"
tar -xzf "$tmp/htmx.org-${HTMX_VERSION}.tgz" -C "$tmp" package/dist/htmx.min.js
cp "$tmp/package/dist/htmx.min.js" "$dest/htmx.min.js"
rm -rf "$tmp/package"
tar -xzf "$tmp/chart.js-${CHARTJS_VERSION}.tgz" -C "$tmp" package/dist/chart.umd.min.js
cp "$tmp/package/dist/chart.umd.min.js" "$dest/chart.umd.min.js"
echo "$want" >"$stamp"
echo "assets: installed $want into $dest/"
