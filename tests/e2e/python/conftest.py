"""Starts the Switchyard binary once for the Python SDK tests, like tests/e2e/harness.mjs."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pusher
import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = os.environ.get("SWITCHYARD_BIN") or str(REPO / "target" / "debug" / "switchyard")
HOST = "127.0.0.1"

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
    def __init__(self, port, proc, log_path):
        self.port = port
        self.proc = proc
        self.log_path = log_path

    def ws_url(self, key=PY_APP["key"], query="?protocol=7&client=python-e2e&version=1.0&flash=false"):
        return f"ws://{HOST}:{self.port}/app/{key}{query}"


@pytest.fixture(scope="session")
def server():
    if not os.path.exists(BIN):
        pytest.fail(f"server binary not found at {BIN}: build it or set SWITCHYARD_BIN")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="switchyard-e2e-py-")
    config = Path(tmp) / "switchyard.toml"
    config.write_text(config_toml(APPS))
    log_path = Path(tempfile.gettempdir()) / f"switchyard-e2e-python-{port}.log"
    log = open(log_path, "wb")
    env = dict(os.environ, SWITCHYARD_PORT=str(port), SWITCHYARD_HOST=HOST)
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
        host=HOST,
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
            report.sections.append(("switchyard", f"server log: {srv.log_path}"))
