# syntax=docker/dockerfile:1.7
#
# One image holding every Switchyard service; the command picks the role:
#
#   docker build -t switchyard .
#   docker run --rm -p 6001:6001 switchyard           embedded: everything on 6001, default app
#   docker run -v ./my.toml:/etc/switchyard/switchyard.toml:ro switchyard edge-gateway
#     --config /etc/switchyard/switchyard.toml                   a WebSocket edge (6101)
#   … api-service (6201), channel-core (gRPC 6301, /up and /ready on 6302), webhook-worker (6401)
#
# config/example.toml is in the image at /etc/switchyard/example.toml; SWITCHYARD_* variables
# override single keys (see that file). deploy/check verifies the binaries named here.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The workspace's release profile keeps debug info for profiling; the image does not need it.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
# The registry and target directory are cache mounts, so a rebuild after a source change
# recompiles only the changed crates; the binaries are copied out of the mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p switchyard --bins \
 && mkdir -p /out \
 && cp target/release/switchyard \
       target/release/edge-gateway \
       target/release/api-service \
       target/release/channel-core \
       target/release/webhook-worker \
       /out/

FROM debian:bookworm-slim
# ca-certificates: webhooks to https:// receivers and SQS use the system roots.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 switchyard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin switchyard
COPY --from=build /out/ /usr/local/bin/
COPY config/example.toml /etc/switchyard/example.toml

# Rust programs keep the soft open-file limit they start with, and container runtimes often
# start them with 1024: an edge could then hold about a thousand connections. Raising the soft
# limit to the hard one needs no privilege. `exec` leaves the service as PID 1, so it gets SIGTERM.
COPY --chmod=0755 <<'EOF' /usr/local/bin/switchyard-entrypoint
#!/bin/bash
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "$@"
EOF

# The health check: GET /ready on the service's health port. The image has neither curl nor
# wget, so this is bash's /dev/tcp. The port is $1, else that of the Switchyard process running
# in this container (its SWITCHYARD_* override or the default); a port set only in the config
# file must be passed as $1.
COPY --chmod=0755 <<'EOF' /usr/local/bin/switchyard-health
#!/bin/bash
port=${1:-}
path=${2:-/ready}
if [[ -z $port ]]; then
  for comm in /proc/[0-9]*/comm; do
    case "$(cat "$comm" 2>/dev/null)" in
      switchyard) port=${SWITCHYARD_PORT:-6001} ;;
      edge-gateway) port=${SWITCHYARD_EDGE_PORT:-6101} ;;
      api-service) port=${SWITCHYARD_API_PORT:-6201} ;;
      channel-core) port=${SWITCHYARD_CORE_HEALTH_PORT:-6302} ;;
      webhook-worker) port=${SWITCHYARD_WORKER_HEALTH_PORT:-6401} ;;
      *) continue ;;
    esac
    break
  done
fi
[[ -n $port ]] || { echo "no Switchyard service runs in this container" >&2; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
read -r -t 3 version status _ <&3 || exit 1
[[ $status == 200 ]] || { echo "GET $path on port $port: $version $status" >&2; exit 1; }
EOF

USER 10001:10001
EXPOSE 6001 6101 6201 6301 6302 6401
ENTRYPOINT ["switchyard-entrypoint"]
CMD ["switchyard"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 CMD ["switchyard-health"]
