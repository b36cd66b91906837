"""Starts the Switchyard binary once for the Python SDK tests, like tests/e2e/harness.mjs.

Cluster mode (SWITCHYARD_CLUSTER=1): no server is started; the tests use the running local
cluster (deploy/local/cluster up): the SDK talks to HAProxy (SWITCHYARD_E2E_API, default
http://127.0.0.1:6001) and WebSocket clients connect straight to the edges
(SWITCHYARD_E2E_EDGES, default 6101,6102), taking them in turn. The apps are then the ones
in deploy/local/cluster.toml, which has the same credentials as APPS below.
"""

import itertools
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import urllib.parse

import pusher
import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = os.environ.get("SWITCHYARD_BIN") or str(REPO / "target" / "debug" / "switchyard")
HOST = "127.0.0.1"

CLUSTER = os.environ.get("SWITCHYARD_CLUSTER") == "1"
CLUSTER_API = urllib.parse.urlsplit(os.environ.get("SWITCHYARD_E2E_API") or f"http://{HOST}:6001")
CLUSTER_EDGE_PORTS = [int(p) for p in (os.environ.get("SWITCHYARD_E2E_EDGES") or "6101,6102").split(",")]
CLUSTER_LOGS = REPO / "deploy" / "local" / ".run"

APPS = [
    {
        "id": "app-id",
        "key": "app-key",
        "secret": "app-secret",
        "enable_client_messages": True,
        "enable_subscription_count": True,
    },
    # The Python SDK accepts only numeric app ids.
    {
        "id": "12345",
        "key": "py-key",
        "secret": "py-secret",
        "enable_client_messages": True,
        "enable_subscription_count": True,
    },
]
PY_APP = APPS[1]


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        # An inline table, e.g. an app's `webhooks = [{ url = "…" }]`.
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v)} as TOML")


def config_toml(apps):
    lines = ["[server]", f"host = {_toml_value(HOST)}", "port = 6001", "activity_timeout_secs = 120", ""]
    for app in apps:
        lines.append("[[apps]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in app.items())
        lines.append("")
    return "\n".join(lines)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path, n=4000):
    try:
        data = Path(path).read_bytes()
        return data[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


class Server:
    """Where the tests connect: `host`/`port` for the HTTP API, ws_url() for WebSockets."""

    def __init__(self, port, proc, log_path, host=HOST, edge_ports=None):
        self.host = host
        self.port = port
        self.proc = proc
        self.log_path = log_path
        # In cluster mode each new WebSocket takes the next edge.
        self._ws_ports = itertools.cycle(edge_ports) if edge_ports else None

    def ws_url(self, key=PY_APP["key"], query="?protocol=7&client=python-e2e&version=1.0&flash=false"):
        port = next(self._ws_ports) if self._ws_ports else self.port
        return f"ws://{HOST}:{port}/app/{key}{query}"


def _check_cluster():
    targets = [(f"{CLUSTER_API.scheme}://{CLUSTER_API.netloc}/ready", "the API (through HAProxy)")]
    targets += [(f"http://{HOST}:{p}/ready", f"the edge on {p}") for p in CLUSTER_EDGE_PORTS]
    for url, what in targets:
        try:
            with urllib.request.urlopen(url, timeout=3) as res:
                status = res.status
        except OSError as e:
            status = e
        if status != 200:
            pytest.fail(
                f"SWITCHYARD_CLUSTER=1 but {what} does not answer GET {url} with 200 ({status}): "
                "start the cluster with deploy/local/cluster up"
            )


@pytest.fixture(scope="session")
def server():
    if CLUSTER:
        _check_cluster()
        yield Server(
            CLUSTER_API.port or 80,
            None,
            f"{CLUSTER_LOGS}/*.log",
            host=CLUSTER_API.hostname,
            edge_ports=CLUSTER_EDGE_PORTS,
        )
        return
    if not os.path.exists(BIN):
        pytest.fail(f"server binary not found at {BIN}: build it or set SWITCHYARD_BIN")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="switchyard-e2e-py-")
    config = Path(tmp) / "switchyard.toml"
    config.write_text(config_toml(APPS))
    log_path = Path(tempfile.gettempdir()) / f"switchyard-e2e-python-{port}.log"
    log = open(log_path, "wb")
    env = dict(os.environ, SWITCHYARD_PORT=str(port), SWITCHYARD_HOST=HOST)
    # The server would read this runner variable as a `config` key in [cluster] and refuse it.
    env.pop("SWITCHYARD_CLUSTER_CONFIG", None)
    env.setdefault("RUST_LOG", "info")
    proc = subprocess.Popen([BIN, "--config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 15
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} before /up answered; log {log_path}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/up", timeout=1) as res:
                    if res.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer GET /up with 200 within 15 s; log {log_path}:\n{_tail(log_path)}")
            time.sleep(0.1)
        srv = Server(port, proc, log_path)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2)


@pytest.fixture
def sdk(server):
    return pusher.Pusher(
        app_id=PY_APP["id"],
        key=PY_APP["key"],
        secret=PY_APP["secret"],
        host=server.host,
        port=server.port,
        ssl=False,
        timeout=5,
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        srv = item.funcargs.get("server")
        if srv is not None:
            what = "cluster logs" if CLUSTER else "server log"
            report.sections.append(("switchyard", f"{what}: {srv.log_path}"))
