# Sourced by the load-test scripts that start their own cluster: channel-core, the API and
# edges as separate processes on ports 7101.., 7201 and 7301/7302, against the NATS and Redis
# already running here, under a Redis namespace of their own. The caller keeps a `pids` array
# and kills what is in it when done.

ready() { # ready URL: waits up to 10 s for a 200
  for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  echo "not ready: $1" >&2
  return 1
}

# cluster_start BIN LOGDIR NAMESPACE EDGES: starts core, the API and EDGES edges and waits until
# all are ready. Sets cluster_ws (the edges, comma-separated), cluster_api, cluster_edge_pids
# (an array) and cluster_pids (every process, NATS and Redis included: they are part of the
# cluster's cost, comma-separated).
cluster_start() {
  local bin=$1 logs=$2 ns=$3 edges=$4 port i
  export SWITCHYARD_HOST=127.0.0.1
  export SWITCHYARD_CLUSTER_REDIS_NAMESPACE=$ns SWITCHYARD_CLUSTER_CORE_URL=http://127.0.0.1:7301
  export SWITCHYARD_CORE_PORT=7301 SWITCHYARD_CORE_HEALTH_PORT=7302 SWITCHYARD_API_PORT=7201
  "$bin/channel-core" 2>>"$logs/core.log" & pids+=($!)
  cluster_pids=$!
  ready http://127.0.0.1:7302/ready || return 1
  "$bin/api-service" 2>>"$logs/api.log" & pids+=($!)
  cluster_pids+=,$!
  cluster_edge_pids=() cluster_ws=
  for i in $(seq 1 "$edges"); do
    port=$((7100 + i))
    SWITCHYARD_EDGE_PORT=$port "$bin/edge-gateway" 2>>"$logs/edge$i.log" & pids+=($!)
    cluster_edge_pids+=($!) cluster_pids+=,$!
    cluster_ws+=${cluster_ws:+,}127.0.0.1:$port
  done
  ready http://127.0.0.1:7201/ready || return 1
  for i in $(seq 1 "$edges"); do ready "http://127.0.0.1:$((7100 + i))/ready" || return 1; done
  cluster_api=127.0.0.1:7201
  cluster_pids+=,$(pgrep -x nats-server | head -1),$(pgrep -x redis-server | head -1)
}

# cluster_forget NAMESPACE: deletes the cluster's keys from Redis.
cluster_forget() {
  redis-cli --scan --pattern "$1:*" | xargs -r redis-cli del >/dev/null
}
