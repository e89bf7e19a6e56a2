#!/usr/bin/env bash
# Screenshots of the Dagster UI for docs/: runs `v2v demo -n 4` in a temp V2V_HOME, serves that instance with
# dagster-webserver on a free 127.0.0.1 port, and captures the vector_svg asset page with headless Chromium.
#   scripts/screenshot_ui.sh            (needs Chromium: apt-get install -y chromium)
# Writes docs/ui-asset-vector_svg.png (Partitions tab: one image's metadata, preview and checks) and
# docs/ui-asset-checks.png (Checks tab: the svg_valid check's per-partition results).
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[[ -n $CHROMIUM ]] || { echo "screenshot_ui: Chromium not found; apt-get install -y chromium" >&2; exit 1; }
WINDOW=${WINDOW:-1600,1200}
BUDGET_MS=${BUDGET_MS:-20000}   # virtual time for the single-page app to load its GraphQL data

TMP=$(mktemp -d)
export V2V_HOME=$TMP/v2v DAGSTER_HOME=$TMP/v2v/dagster_home
WEB_PID=""
cleanup() {
  # The webserver runs in its own session (setsid): stop it and the code server it started, then wait.
  if [[ -n $WEB_PID ]]; then
    kill -TERM -- "-$WEB_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$WEB_PID" 2>/dev/null || break; sleep 1; done
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

.venv/bin/v2v demo -n 4

PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
setsid .venv/bin/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p "$PORT" >"$TMP/webserver.log" 2>&1 &
WEB_PID=$!
for _ in $(seq 120); do
  curl -fsS "$BASE/server_info" >/dev/null 2>&1 && break
  kill -0 "$WEB_PID" 2>/dev/null || { cat "$TMP/webserver.log" >&2; exit 1; }
  sleep 1
done
curl -fsS "$BASE/server_info" >/dev/null || { echo "screenshot_ui: webserver did not come up" >&2; exit 1; }
# The code location loads in the background; the pages are empty until it has.
for _ in $(seq 120); do
  curl -fsS "$BASE/graphql" -H 'Content-Type: application/json' \
    -d '{"query":"{ assetNodes { id } }"}' 2>/dev/null | grep -q vector_svg && break
  sleep 1
done

# Dismiss the "Join the Dagster community" dialog (shown on localhost until dismissed) as its Skip button does.
curl -fsS "$BASE/graphql" -H 'Content-Type: application/json' -d '{"query":"mutation { setNuxSeen }"}' >/dev/null

KEY=$(ls "$V2V_HOME/storage/vector_svg" | head -n 1)
shot() {  # shot FILE PATH: one page, rendered after BUDGET_MS of virtual time
  "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --window-size="$WINDOW" --virtual-time-budget="$BUDGET_MS" --screenshot="$1" "$BASE$2" 2>/dev/null
  echo "screenshot_ui: $1 ($(du -k "$1" | cut -f1) KB) <- $2"
}
mkdir -p docs
shot docs/ui-asset-vector_svg.png "/assets/vector_svg?view=partitions&partition=$KEY"
shot docs/ui-asset-checks.png "/assets/vector_svg?view=checks&checkDetail=svg_valid"
