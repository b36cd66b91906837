"""A real webhook from the embedded server, validated with the Python SDK's
`validate_webhook(key, signature, body)` as an application would.

The session server's apps have no webhooks, so this file starts a server of its own whose
app (numeric id, for the SDK) sends its webhooks to a receiver in the test. Cluster mode has
no such app in deploy/local/cluster.toml: the test is skipped there.
"""

import hashlib
import hmac
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pusher
import pytest
import websocket

from conftest import BIN, CLUSTER, HOST, _tail, config_toml, free_port

WAIT = 10.0
HOOK_APP = {
    "id": "34567",
    "key": "py-hook-key",
    "secret": "py-hook-secret",
    "enable_client_messages": True,
    "enable_subscription_count": True,
}

pytestmark = pytest.mark.skipif(CLUSTER, reason="needs a server of its own with a webhook app")


class Receiver:
    """Records every POST as (headers, raw body) and answers 200."""

    def __init__(self):
        self.posts = queue.Queue()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                posts.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_event(self, pred, timeout=WAIT):
        """The first POST (headers, body, event) with an event matching `pred`, bounded."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no matching webhook within {timeout} s; got {seen}")
            try:
                headers, body = self.posts.get(timeout=left)
            except queue.Empty:
                continue
            events = json.loads(body).get("events", [])
            seen.append(events)
            for event in events:
                if pred(event):
                    return headers, body, event

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def hook_server():
    receiver = Receiver()
    app = dict(HOOK_APP, webhooks=[{"url": f"http://{HOST}:{receiver.port}/hooks"}])
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="switchyard-e2e-py-hooks-")
    config = Path(tmp) / "switchyard.toml"
    config.write_text(config_toml([app]))
    log_path = Path(tempfile.gettempdir()) / f"switchyard-e2e-python-hooks-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env.update(SWITCHYARD_PORT=str(port), SWITCHYARD_HOST=HOST)
    env.setdefault("RUST_LOG", "info")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([BIN, "--config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}; log {log_path}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/up", timeout=1) as res:
                    if res.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer GET /up within 15 s; log {log_path}:\n{_tail(log_path)}")
            time.sleep(0.1)
        yield port, receiver
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2)
        receiver.close()


def test_a_real_webhook_validates_with_the_python_sdk(hook_server):
    port, receiver = hook_server
    channel = f"py-hook-{os.urandom(4).hex()}"
    ws = websocket.create_connection(
        f"ws://{HOST}:{port}/app/{HOOK_APP['key']}?protocol=7&client=python-e2e&version=1.0",
        timeout=WAIT,
    )
    try:
        established = json.loads(ws.recv())
        assert established["event"] == "pusher:connection_established"
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
        headers, body, event = receiver.wait_event(
            lambda e: e.get("name") == "channel_occupied" and e.get("channel") == channel
        )
    finally:
        ws.close()
    # Events core may send more than once carry a stable id for receivers to drop repeats.
    assert isinstance(event.get("id"), str)
    assert event == {"name": "channel_occupied", "channel": channel, "id": event["id"]}

    client = pusher.Pusher(
        app_id=HOOK_APP["id"], key=HOOK_APP["key"], secret=HOOK_APP["secret"], host=HOST, port=port, ssl=False
    )
    key, signature = headers.get("x-pusher-key"), headers.get("x-pusher-signature")
    assert key == HOOK_APP["key"]
    raw = body.decode("utf-8")
    validated = client.validate_webhook(key, signature, raw)
    assert validated is not None, f"the SDK rejected the webhook: {headers} {raw}"
    assert event in validated["events"]
    # Stamped at send time: the SDK itself rejects bodies older than 300 s.
    assert abs(time.time() * 1000 - validated["time_ms"]) < 60_000

    # What an application must refuse: another key, a tampered body, a bad signature.
    assert client.validate_webhook("another-key", signature, raw) is None
    assert client.validate_webhook(key, signature, raw.replace(channel, channel + "x")) is None
    assert client.validate_webhook(key, "0" * len(signature), raw) is None


def _sdk(port):
    return pusher.Pusher(
        app_id=HOOK_APP["id"], key=HOOK_APP["key"], secret=HOOK_APP["secret"], host=HOST, port=port, ssl=False
    )


def _recv_event(ws, name):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv())
        if frame.get("event") == name:
            return frame
    pytest.fail(f"no {name} within {WAIT} s")


def test_every_webhook_event_type_validates_with_the_python_sdk(hook_server):
    port, receiver = hook_server
    tag = os.urandom(4).hex()
    public, presence, cache = f"py-all-{tag}", f"presence-py-{tag}", f"cache-py-{tag}"
    ws = websocket.create_connection(
        f"ws://{HOST}:{port}/app/{HOOK_APP['key']}?protocol=7&client=python-e2e&version=1.0",
        timeout=WAIT,
    )
    socket_id = json.loads(json.loads(ws.recv())["data"])["socket_id"]
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": public}}))
    _recv_event(ws, "pusher_internal:subscription_succeeded")
    channel_data = json.dumps({"user_id": "py-user", "user_info": {"name": "Py"}})
    to_sign = f"{socket_id}:{presence}:{channel_data}".encode()
    sig = hmac.new(HOOK_APP["secret"].encode(), to_sign, hashlib.sha256).hexdigest()
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {
        "channel": presence, "auth": f"{HOOK_APP['key']}:{sig}", "channel_data": channel_data}}))
    _recv_event(ws, "pusher_internal:subscription_succeeded")
    ws.send(json.dumps({"event": "client-typing", "channel": presence, "data": {"text": "hi"}}))
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": cache}}))
    _recv_event(ws, "pusher:cache_miss")
    ws.close()

    expected = {
        "channel_occupied": public,
        "subscription_count": public,
        "member_added": presence,
        "client_event": presence,
        "cache_miss": cache,
        "channel_vacated": public,
        # Held 3 s in case the member comes back, then sent.
        "member_removed": presence,
    }
    # Webhooks arrive in any order: collect until every expected one is in, bounded.
    found = {}
    deadline = time.monotonic() + WAIT
    while len(found) < len(expected):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"missing webhooks: {set(expected) - set(found)}")
        try:
            headers, body = receiver.posts.get(timeout=left)
        except queue.Empty:
            continue
        for event in json.loads(body).get("events", []):
            if expected.get(event.get("name")) == event.get("channel"):
                found[event["name"]] = (headers, body, event)
    client = _sdk(port)
    for name, (headers, body, event) in found.items():
        validated = client.validate_webhook(headers.get("x-pusher-key"), headers.get("x-pusher-signature"), body.decode())
        assert validated is not None, f"the SDK rejected the {name} webhook: {body!r}"
        assert event in validated["events"]
        if name in ("member_added", "member_removed", "client_event"):
            assert event["user_id"] == "py-user", event
        if name == "client_event":
            assert event["event"] == "client-typing" and event["socket_id"] == socket_id, event
