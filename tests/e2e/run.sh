#!/usr/bin/env bash
# Runs Switchyard's end-to-end tests: the Node suite (pusher-js + the Node `pusher` SDK) and
# the Python SDK suite, against the binary in $SWITCHYARD_BIN (default target/debug/switchyard).
# With SWITCHYARD_CLUSTER=1 they run against the running local cluster instead (see
# run-cluster.sh, which starts and stops it). It does not build the server. Exits non-zero if
# either suite fails.
set -uo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$E2E/../.." && pwd)"
export SWITCHYARD_BIN="${SWITCHYARD_BIN:-$REPO/target/debug/switchyard}"

if [[ "${SWITCHYARD_CLUSTER:-}" != 1 && ! -x "$SWITCHYARD_BIN" ]]; then
  echo "e2e: server binary not found or not executable: $SWITCHYARD_BIN" >&2
  exit 1
fi

# Node dependencies: reinstall when node_modules is missing or older than the lock file.
if [[ ! -d "$E2E/node_modules" || "$E2E/package-lock.json" -nt "$E2E/node_modules" ]]; then
  (cd "$E2E" && npm ci --no-audit --no-fund) || exit 1
  touch "$E2E/node_modules"
fi

# Python dependencies in a venv of our own.
VENV="$E2E/.venv"
REQ="$E2E/python/requirements.txt"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV" || exit 1
fi
if [[ ! -f "$VENV/.requirements.stamp" || "$REQ" -nt "$VENV/.requirements.stamp" ]]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ" || exit 1
  touch "$VENV/.requirements.stamp"
fi

cd "$REPO"
status=0

echo "== node --test tests/e2e/"
node --test --test-timeout=60000 --test-force-exit tests/e2e/ || status=1

echo "== pytest tests/e2e/python"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/e2e/python || status=1

exit $status
