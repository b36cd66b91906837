"""deploy/check --self-test: breaks copies of the tree in known ways; each must be caught."""

import shutil
import tempfile
from pathlib import Path

from .run import run_checks


BREAKAGES = [
    (
        "deploy/compose/docker-compose.yml",
        "    RUST_LOG: info\n",
        "    RUST_LOG: info\n    SWITCHYARD_EDGE_BOGUS: '1'\n",
        "SWITCHYARD_EDGE_BOGUS",
    ),
    (
        "deploy/compose/docker-compose.yml",
        '["edge-gateway", "--config"',
        '["edge-gateway-x", "--config"',
        "edge-gateway-x",
    ),
    (
        "deploy/compose/switchyard.toml",
        'core_url = "http://channel-core:6301"',
        'core_url = "http://channel-core:6302"',
        "core_url",
    ),
    ("deploy/compose/haproxy.cfg", "edge:6101", "edge:6102", "edge:6102"),
    (
        "deploy/compose/docker-compose.yml",
        "OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4317",
        "OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4319",
        "otlp_endpoint",
    ),
    ("deploy/kubernetes/switchyard.toml", "[cluster]\n", "[cluster]\nbogus_key = 1\n", "bogus_key"),
    (
        "deploy/kubernetes/secrets.env.example",
        "SWITCHYARD_ADMIN_TOKEN=",
        "SWITCHYARD_ADMIN_TOKENS=",
        "SWITCHYARD_ADMIN_TOKENS",
    ),
    (
        "deploy/kubernetes/api-service.yaml",
        "port: 6201, targetPort: http",
        "port: 6201, targetPort: 6999",
        "6999",
    ),
    (
        "deploy/kubernetes/channel-core.yaml",
        "path: /ready, port: health",
        "path: /ready, port: grpc",
        "readinessProbe",
    ),
    (
        "deploy/kubernetes/edge-gateway.yaml",
        "terminationGracePeriodSeconds: 30",
        "terminationGracePeriodSeconds: 15",
        "terminationGracePeriodSeconds",
    ),
    (
        "Dockerfile",
        "target/release/webhook-worker",
        "target/release/webhook-workers",
        "webhook-workers",
    ),
]


def self_test(root):
    """Breaks a copy of the tree in each way above; each must add a problem that names it."""
    ignore = shutil.ignore_patterns(".git", "target", "node_modules", ".venv", "__pycache__", ".run")
    baseline = set(run_checks(root).problems)
    ok = True
    for file, old, new, expect in BREAKAGES:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "repo"
            shutil.copytree(root, copy, ignore=ignore)
            text = (copy / file).read_text()
            if old not in text:
                print(f"self-test: {file} no longer contains {old.strip()!r}; update BREAKAGES")
                ok = False
                continue
            (copy / file).write_text(text.replace(old, new, 1))
            found = [p for p in run_checks(copy).problems if p not in baseline and expect in p]
            print(
                f"self-test: {file}: {old.strip()!r} → {new.strip()!r}: "
                + (f"caught: {found[0]}" if found else "NOT CAUGHT")
            )
            ok = ok and bool(found)
    return ok
