// The WebSocket handshake, close codes and what pusher-js does with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER, CLUSTER_EDGE_PORTS, DEFAULT_APPS, HOST, T, errorCode, parseData, record, sleep, uniq, useServer, waitFor, waitForState } from './harness.mjs';

const DISABLED_APP = { id: 'disabled-app', key: 'disabled-key', secret: 'disabled-secret', enabled: false };
const QUOTA_APP = { id: 'quota-app', key: 'quota-key', secret: 'quota-secret', max_connections: 1 };
const AUTHZ_APP = {
  id: 'authz-app',
  key: 'authz-key',
  secret: 'authz-secret',
  require_authorized_connections: true,
  authorization_timeout_secs: 1,
};
const ORIGIN_APP = {
  id: 'origin-app',
  key: 'origin-key',
  secret: 'origin-secret',
  allowed_origins: ['https://good.example'],
};

const srv = useServer({
  name: 'connection',
  apps: [...DEFAULT_APPS, DISABLED_APP, QUOTA_APP, AUTHZ_APP, ORIGIN_APP],
});

test('GET /up answers 200', T, async () => {
  const res = await fetch(srv.url('/up'), { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
});

test('pusher-js connects and gets a well-formed socket_id', T, async () => {
  const client = await srv.connect();
  assert.match(client.connection.socket_id, /^\d+\.\d+$/);
});

test('connection_established carries socket_id and activity_timeout as a JSON string', T, async () => {
  const sock = srv.raw(srv.wsUrl());
  const msg = await sock.next((m) => m.event === 'pusher:connection_established', {
    what: 'pusher:connection_established',
  });
  const data = parseData(msg);
  assert.match(data.socket_id, /^\d+\.\d+$/);
  assert.equal(typeof data.activity_timeout, 'number');
  assert.equal(data.activity_timeout, 120);
});

test('socket ids are unique per connection', T, async () => {
  const ids = new Set();
  for (let i = 0; i < 5; i++) ids.add((await srv.rawConnected()).socketId);
  assert.equal(ids.size, 5);
});

test('pusher:ping is answered with pusher:pong', T, async () => {
  const { sock } = await srv.rawConnected();
  sock.send({ event: 'pusher:ping', data: {} });
  const pong = await sock.next((m) => m.event === 'pusher:pong', { what: 'pusher:pong' });
  assert.deepEqual(parseData(pong), {});
});

test('invalid JSON gets pusher:error and the connection stays open', T, async () => {
  const { sock } = await srv.rawConnected();
  sock.send('this is not json');
  await sock.next((m) => m.event === 'pusher:error', { what: 'pusher:error' });
  sock.send({ event: 'pusher:ping', data: {} });
  await sock.next((m) => m.event === 'pusher:pong', { what: 'pusher:pong after invalid JSON' });
  assert.equal(sock.closeInfo, null);
});

test('an unknown app key: pusher-js gets 4001 and gives up without reconnecting', T, async () => {
  const client = srv.client({ key: 'no-such-key' });
  const states = record(client.connection, 'state_change');
  const errors = record(client.connection, 'error');
  await waitForState(client, ['disconnected', 'failed', 'unavailable'], { timeout: 5000 });
  await errors.some((e) => errorCode(e) === 4001, { what: 'error with code 4001' });
  await sleep(1500);
  // The first 'connecting' happened inside the constructor, before recording began.
  const reconnects = states.data.filter((s) => s.current === 'connecting');
  assert.equal(reconnects.length, 0, `no reconnect attempts: ${JSON.stringify(states.data)}`);
  assert.notEqual(client.connection.state, 'connected');
  assert.notEqual(client.connection.state, 'connecting');
});

test('an unknown app key closes the WebSocket with 4001', T, async () => {
  const sock = srv.raw(srv.wsUrl('no-such-key'));
  const closed = await sock.closed();
  assert.equal(closed.code, 4001);
  assert.ok(!sock.messages.some((m) => m.event === 'pusher:connection_established'));
});

test('a disabled app closes with 4003', T, async () => {
  const sock = srv.raw(srv.wsUrl(DISABLED_APP.key));
  assert.equal((await sock.closed()).code, 4003);
});

// Counted across the cluster: behind HAProxy the second connection may land on the other edge.
test('an app over its connection quota closes with 4004', T, async () => {
  const first = srv.raw(srv.wsUrl(QUOTA_APP.key));
  await first.next((m) => m.event === 'pusher:connection_established', { what: 'first connection' });
  const second = srv.raw(srv.wsUrl(QUOTA_APP.key));
  assert.equal((await second.closed()).code, 4004);
  assert.equal(first.closeInfo, null, 'the first connection stays');
});

test('a missing protocol version closes with 4008', T, async () => {
  const sock = srv.raw(srv.wsUrl(undefined, ''));
  assert.equal((await sock.closed()).code, 4008);
});

test('a non-numeric protocol version closes with 4006', T, async () => {
  const sock = srv.raw(srv.wsUrl(undefined, '?protocol=seven'));
  assert.equal((await sock.closed()).code, 4006);
});

test('an unsupported protocol version closes with 4007', T, async () => {
  for (const v of ['4', '8']) {
    const sock = srv.raw(srv.wsUrl(undefined, `?protocol=${v}`));
    assert.equal((await sock.closed()).code, 4007, `protocol=${v}`);
  }
});

test('protocol versions 5, 6 and 7 are accepted', T, async () => {
  for (const v of ['5', '6', '7']) {
    const sock = srv.raw(srv.wsUrl(undefined, `?protocol=${v}`));
    await sock.next((m) => m.event === 'pusher:connection_established', { what: `handshake for protocol ${v}` });
    sock.close();
  }
});

test('a pusher:ping from pusher-js gets a pusher:pong', T, async () => {
  const client = await srv.connect();
  const pong = waitFor(client.connection, 'message', { filter: (m) => m.event === 'pusher:pong' });
  client.send_event('pusher:ping', {});
  await pong;
  assert.equal(client.connection.state, 'connected');
});

test('the server listens on SWITCHYARD_HOST/SWITCHYARD_PORT, not the config file port', T, async () => {
  if (CLUSTER) {
    // Both edges read one file ([edge] port = 6101); the second listens on 6102 only through
    // SWITCHYARD_EDGE_PORT.
    for (const port of CLUSTER_EDGE_PORTS) {
      const res = await fetch(`http://${HOST}:${port}/up`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200, `edge on ${port}`);
    }
    return;
  }
  // The harness writes port = 6001 in the file and passes the real port in the environment.
  assert.equal(srv.server.host, HOST);
  const res = await fetch(srv.url('/up'), { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
});

test('require_authorized_connections: an idle unsigned connection is closed with 4009', T, async () => {
  const idle = srv.raw(srv.wsUrl(AUTHZ_APP.key));
  await idle.next((m) => m.event === 'pusher:connection_established', { what: 'handshake' });

  const { sock: signed, socketId } = await srv.rawConnected(AUTHZ_APP.key);
  const sdk = srv.sdk(AUTHZ_APP.id);
  signed.send({ event: 'pusher:signin', data: sdk.authenticateUser(socketId, { id: 'authorized' }) });
  await signed.next((m) => m.event === 'pusher:signin_success', { what: 'signin_success' });

  // Timeout 1 s in the config; allow for timer granularity.
  const closed = await idle.closed(4000);
  assert.equal(closed.code, 4009);
  await sleep(500);
  assert.equal(signed.closeInfo, null, 'a signed-in connection stays open');
});

test('allowed_origins: a listed origin connects, another is refused with a give-up code', T, async () => {
  const good = srv.raw(srv.wsUrl(ORIGIN_APP.key), { headers: { Origin: 'https://good.example' } });
  await good.next((m) => m.event === 'pusher:connection_established', { what: 'handshake from an allowed origin' });

  const bad = srv.raw(srv.wsUrl(ORIGIN_APP.key), { headers: { Origin: 'https://evil.example' } });
  const closed = await bad.closed();
  assert.ok(!bad.messages.some((m) => m.event === 'pusher:connection_established'));
  // 4000-4099 make pusher-js give up; anything else would have it retry forever.
  assert.ok(closed.code >= 4000 && closed.code < 4100, `close code ${closed.code}`);
});

test('an unknown pusher: event gets pusher:error and the connection stays open', T, async () => {
  const { sock } = await srv.rawConnected();
  sock.send({ event: 'pusher:no_such_thing', data: {} });
  await sock.next((m) => m.event === 'pusher:error', { what: 'pusher:error for an unknown event' });
  sock.send({ event: 'pusher:ping', data: {} });
  await sock.next((m) => m.event === 'pusher:pong', { what: 'pusher:pong afterwards' });
  assert.equal(sock.closeInfo, null);
});

test('data sent as a JSON string by the client is accepted like an object', T, async () => {
  const { sock } = await srv.rawConnected();
  const name = uniq('string-data-channel-');
  sock.send({ event: 'pusher:subscribe', data: JSON.stringify({ channel: name }) });
  const ok = await sock.next((m) => m.event === 'pusher_internal:subscription_succeeded', {
    what: 'subscription_succeeded for a string-encoded subscribe',
  });
  assert.equal(ok.channel, name);
});
