#!/usr/bin/env bash
# Runs the end-to-end suites (tests/e2e/run.sh: Node and Python) against the local cluster:
# `deploy/local/cluster up`, the suites with SWITCHYARD_CLUSTER=1, then `deploy/local/cluster
# down`, also when something fails. It does not build the binaries
# (cargo build -p switchyard --bins). Exits non-zero on any failure.
#
#   SWITCHYARD_BIN_DIR           the cluster's binaries (default: cargo's target dir + /debug)
#   SWITCHYARD_LOCAL_KEEP=1    leave the cluster running afterwards (to look at it)
set -uo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$E2E/../.." && pwd)"
CLUSTER="$REPO/deploy/local/cluster"

if [[ -z "${SWITCHYARD_BIN_DIR:-}" ]]; then
  target="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null | jq -r .target_directory 2>/dev/null)"
  export SWITCHYARD_BIN_DIR="${target:-$REPO/target}/debug"
fi

status=0
stop_cluster() {
  if [[ "${SWITCHYARD_LOCAL_KEEP:-}" == 1 ]]; then
    echo "== cluster left running (SWITCHYARD_LOCAL_KEEP=1); stop it with deploy/local/cluster down"
    return
  fi
  echo "== deploy/local/cluster down"
  "$CLUSTER" down || status=1
}
trap 'stop_cluster; exit $status' EXIT
trap 'status=130; exit' INT TERM

echo "== deploy/local/cluster up"
if ! "$CLUSTER" up; then
  status=1
  exit
fi
"$CLUSTER" status || true

SWITCHYARD_CLUSTER=1 "$E2E/run.sh" || status=1
if ((status)); then
  echo "== e2e against the cluster FAILED; logs in deploy/local/.run/" >&2
fi
exit $status
