"""The table of loadtest/targets: medians of the runs in RESULTS_DIR, ratios, targets.

The reference column is the baseline server, except in the cluster rows (the embedded server).
"""

import glob
import json
import os
import statistics

d = os.environ["RESULTS_DIR"]


def runs(name, target):
    out = []
    for path in sorted(glob.glob(f"{d}/{name}-{target}-*.json")):
        try:
            with open(path) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass
    return out


def get(report, path):
    for key in path.split("."):
        report = (report or {}).get(key)
    return report


def median(name, target, path):
    values = [v for v in (get(r, path) for r in runs(name, target)) if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


rows = []


def row(label, ours, theirs, target, ok, spec=".2f"):
    rows.append((label, fmt(ours, spec), fmt(theirs, spec), target,
                 "-" if ok is None else ("yes" if ok else "NO")))


def ratio(a, b):
    return None if a is None or not b else a / b


for n in (1000, 10000, 19000, "1000-warm"):
    name = f"rss-{n}"
    if not runs(name, "embedded"):
        continue
    n = "1,000 after a 200-connection warm-up" if n == "1000-warm" else f"{n:,}"
    for key, label in (("per_idle_subscribed_connection", "total/N"),
                       ("per_connection_marginal", "marginal")):
        ours = median(name, "embedded", f"server_rss_bytes.{key}")
        base = median(name, "baseline", f"server_rss_bytes.{key}")
        row(f"RSS bytes per idle connection, {n} ({label})", ours, base, "<= 4096",
            None if ours is None else ours <= 4096, ".0f")

if runs("fanout-10k", "embedded"):
    n, e, b = "fanout-10k", "embedded", "baseline"
    for path, label, limit in (("server_cpu.us_per_delivered_message", "10k subs, 10 ev/s: CPU µs/msg", 1.2),
                               ("latency_ms.p99", "10k subs, 10 ev/s: p99 ms", 1.3),
                               ("connections.seconds", "subscribe 10k: connect seconds", 2.0),
                               ("connections.server_cpu_seconds", "subscribe 10k: server CPU s", 2.0)):
        ours, base = median(n, e, path), median(n, b, path)
        r = ratio(ours, base)
        row(f"{label} (ratio {fmt(r)})", ours, base, f"<= {limit}x", None if r is None else r <= limit)
    lost = median(n, e, "deliveries.lost")
    row("10k subs, 10 ev/s: lost", lost, median(n, b, "deliveries.lost"), "0", lost == 0, ".0f")

if runs("api-1k", "embedded"):
    n, e, b = "api-1k", "embedded", "baseline"
    for path, label, limit, higher in (("server_cpu.us_per_delivered_message", "1k conns/100 ch, API flat out: CPU µs/msg", 1.3, False),
                                       ("events.accepted_per_second", "1k conns/100 ch: accepted events/s", 0.9, True),
                                       ("latency_ms.p99", "1k conns/100 ch: p99 ms", 1.3, False)):
        ours, base = median(n, e, path), median(n, b, path)
        r = ratio(ours, base)
        ok = None if r is None else (r >= limit if higher else r <= limit)
        row(f"{label} (ratio {fmt(r)})", ours, base, f"{'>=' if higher else '<='} {limit}x", ok)
    lost = median(n, e, "deliveries.lost")
    row("1k conns/100 ch: lost", lost, median(n, b, "deliveries.lost"), "0", lost == 0, ".0f")

if runs("cluster-api", "cluster"):
    ours = median("cluster-api", "cluster", "events.accepted_per_second")
    emb = median("cluster-api", "embedded", "events.accepted_per_second")
    r = ratio(ours, emb)
    row(f"cluster accepted events/s vs embedded (ratio {fmt(r)})", ours, emb, ">= 0.6x of embedded",
        None if r is None else r >= 0.6, ".0f")
    p99 = median("cluster-1000", "cluster", "latency_ms.p99")
    row("cluster, 2 edges, 1000 ev/s: cross-edge p99 ms", p99, None, "< 20", None if p99 is None else p99 < 20)
    lost = median("cluster-1000", "cluster", "deliveries.lost")
    row("cluster, 2 edges, 1000 ev/s: lost", lost, None, "0", None if lost is None else lost == 0, ".0f")

width = max(len(r[0]) for r in rows) if rows else 10
print(f"{'median of runs':<{width}}  {'switchyard':>11}  {'reference':>11}  {'target':>19}  met")
for label, ours, base, target, ok in rows:
    print(f"{label:<{width}}  {ours:>11}  {base:>11}  {target:>19}  {ok}")
