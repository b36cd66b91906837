"""The official Python `pusher` SDK against Switchyard, with raw WebSocket subscribers."""

import itertools
import json
import os
import time

import pusher
import pytest
import websocket
from pusher.errors import PusherBadAuth, PusherBadStatus

from conftest import PY_APP

WAIT = 5.0
_seq = itertools.count(1)
# Unique to this run: a cluster's Redis keeps channels and users between runs.
RUN_ID = os.urandom(4).hex()


def uniq(prefix):
    return f"{prefix}{RUN_ID}-{next(_seq)}"


def uid(name):
    return f"{name}-{RUN_ID}"


class RawClient:
    """A bare Pusher protocol client over websocket-client; every wait is bounded."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=WAIT)
        self.messages = []
        established = self.wait_for(lambda m: m.get("event") == "pusher:connection_established")
        self.socket_id = json.loads(established["data"])["socket_id"]

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def wait_for(self, pred, timeout=WAIT):
        for m in self.messages:
            if pred(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; received {self.messages}")
            self.ws.settimeout(left)
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                raise AssertionError(f"timed out; received {self.messages}") from None
            msg = json.loads(raw)
            self.messages.append(msg)
            if pred(msg):
                return msg

    def subscribe(self, channel, auth=None, channel_data=None):
        data = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        self.send({"event": "pusher:subscribe", "data": data})
        self.wait_for(
            lambda m: m.get("event") == "pusher_internal:subscription_succeeded" and m.get("channel") == channel
        )

    def event(self, channel, name, timeout=WAIT):
        return self.wait_for(lambda m: m.get("event") == name and m.get("channel") == channel, timeout)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


@pytest.fixture
def raw(server):
    opened = []

    def make():
        c = RawClient(server.ws_url())
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def presence_join(sdk, client, channel, user_id, info):
    channel_data = json.dumps({"user_id": user_id, "user_info": info})
    auth = sdk.authenticate(channel=channel, socket_id=client.socket_id, custom_data={"user_id": user_id, "user_info": info})
    # The SDK signs json.dumps(custom_data) and returns it as channel_data: send exactly that.
    client.subscribe(channel, auth=auth["auth"], channel_data=auth.get("channel_data", channel_data))


def test_trigger_reaches_a_websocket_subscriber(sdk, raw):
    channel = uniq("py-pub-")
    client = raw()
    client.subscribe(channel)
    assert sdk.trigger(channel, "py-event", {"hello": "python"}) == {}
    msg = client.event(channel, "py-event")
    assert isinstance(msg["data"], str)
    assert json.loads(msg["data"]) == {"hello": "python"}


def test_trigger_with_socket_id_excludes_that_socket(sdk, raw):
    channel = uniq("py-excl-")
    excluded, other = raw(), raw()
    excluded.subscribe(channel)
    other.subscribe(channel)
    sdk.trigger(channel, "e", {"n": 1}, socket_id=excluded.socket_id)
    sdk.trigger(channel, "e", {"n": 2})
    other.wait_for(lambda m: m.get("event") == "e" and json.loads(m["data"]) == {"n": 2})
    excluded.wait_for(lambda m: m.get("event") == "e" and json.loads(m["data"]) == {"n": 2})
    assert [json.loads(m["data"]) for m in other.messages if m.get("event") == "e"] == [{"n": 1}, {"n": 2}]
    assert [json.loads(m["data"]) for m in excluded.messages if m.get("event") == "e"] == [{"n": 2}]


def test_private_channel_auth_from_the_sdk(sdk, raw):
    channel = uniq("private-py-")
    client = raw()
    client.subscribe(channel, auth=sdk.authenticate(channel=channel, socket_id=client.socket_id)["auth"])
    sdk.trigger(channel, "secret", "s3cr3t")
    assert client.event(channel, "secret")["data"] == "s3cr3t"


def test_trigger_batch(sdk, raw):
    a, b = uniq("py-batch-a-"), uniq("py-batch-b-")
    client = raw()
    client.subscribe(a)
    client.subscribe(b)
    result = sdk.trigger_batch(
        [
            {"channel": a, "name": "one", "data": {"i": 1}},
            {"channel": b, "name": "two", "data": {"i": 2}},
        ]
    )
    assert result == {}
    assert json.loads(client.event(a, "one")["data"]) == {"i": 1}
    assert json.loads(client.event(b, "two")["data"]) == {"i": 2}


def test_channels_info_and_channel_info(sdk, raw):
    prefix = uniq("py-info-")
    a, b = f"{prefix}-a", f"{prefix}-b"
    c1, c2 = raw(), raw()
    c1.subscribe(a)
    c2.subscribe(a)
    c1.subscribe(b)
    assert sdk.channels_info(prefix_filter=prefix) == {"channels": {a: {}, b: {}}}

    deadline = time.monotonic() + 3
    while True:
        info = sdk.channel_info(a, ["subscription_count"])
        if info == {"occupied": True, "subscription_count": 2} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert info == {"occupied": True, "subscription_count": 2}
    assert sdk.channel_info(uniq("py-empty-")) == {"occupied": False}


def test_presence_users_info_and_user_count(sdk, raw):
    # A prefix of this run's own, so that the listing below sees no other presence channel.
    prefix = uniq("presence-py-")
    channel = f"{prefix}-room"
    one, two, three = raw(), raw(), raw()
    presence_join(sdk, one, channel, "u1", {"name": "One"})
    presence_join(sdk, two, channel, "u1", {"name": "One"})
    presence_join(sdk, three, channel, "u2", {"name": "Two"})
    users = sdk.users_info(channel)
    assert sorted(users["users"], key=lambda u: u["id"]) == [{"id": "u1"}, {"id": "u2"}]
    assert sdk.channel_info(channel, ["user_count"]) == {"occupied": True, "user_count": 2}
    assert sdk.channels_info(prefix_filter=prefix, attributes=["user_count"]) == {
        "channels": {channel: {"user_count": 2}}
    }


def test_send_to_user(sdk, raw):
    user = uid("py-user")
    client = raw()
    signed = sdk.authenticate_user(client.socket_id, {"id": user})
    client.send({"event": "pusher:signin", "data": signed})
    client.wait_for(lambda m: m.get("event") == "pusher:signin_success")
    # pusher-js subscribes to its server-to-user channel after signin; do the same.
    client.subscribe(f"#server-to-user-{user}")
    sdk.send_to_user(user, "direct", {"to": user})
    msg = client.event(f"#server-to-user-{user}", "direct")
    assert json.loads(msg["data"]) == {"to": user}


def test_bad_secret_is_rejected(server):
    bad = pusher.Pusher(
        app_id=PY_APP["id"], key=PY_APP["key"], secret="wrong", host=server.host, port=server.port, ssl=False
    )
    with pytest.raises(PusherBadAuth):
        bad.trigger(uniq("py-401-"), "e", {})


def test_unknown_app_id_is_404(server):
    other = pusher.Pusher(
        app_id="99999", key=PY_APP["key"], secret=PY_APP["secret"], host=server.host, port=server.port, ssl=False
    )
    with pytest.raises(PusherBadStatus, match="404"):
        other.channels_info()


def test_encrypted_channel_payload_decrypts_with_the_shared_secret(server, raw):
    import base64

    import nacl.secret

    master = os.urandom(32)
    enc_sdk = pusher.Pusher(
        app_id=PY_APP["id"],
        key=PY_APP["key"],
        secret=PY_APP["secret"],
        host=server.host,
        port=server.port,
        ssl=False,
        encryption_master_key_base64=base64.b64encode(master).decode(),
    )
    channel = uniq("private-encrypted-py-")
    client = raw()
    auth = enc_sdk.authenticate(channel=channel, socket_id=client.socket_id)
    client.subscribe(channel, auth=auth["auth"])
    enc_sdk.trigger(channel, "sealed", {"secret": "python"})
    msg = client.event(channel, "sealed")
    payload = json.loads(msg["data"])
    assert sorted(payload) == ["ciphertext", "nonce"]
    box = nacl.secret.SecretBox(base64.b64decode(auth["shared_secret"]))
    plain = box.decrypt(base64.b64decode(payload["ciphertext"]), base64.b64decode(payload["nonce"]))
    assert json.loads(plain) == {"secret": "python"}
