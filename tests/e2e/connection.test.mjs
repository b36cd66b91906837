// The WebSocket handshake, close codes and what pusher-js does with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_APPS, HOST, T, parseData, record, sleep, useServer, waitFor, waitForState } from './harness.mjs';

const DISABLED_APP = { id: 'disabled-app', key: 'disabled-key', secret: 'disabled-secret', enabled: false };
const QUOTA_APP = { id: 'quota-app', key: 'quota-key', secret: 'quota-secret', max_connections: 1 };

const srv = useServer({ name: 'connection', apps: [...DEFAULT_APPS, DISABLED_APP, QUOTA_APP] });

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
  await errors.some((e) => e?.data?.code === 4001, { what: 'error with code 4001' });
  await sleep(1500);
  const connecting = states.data.filter((s) => s.current === 'connecting');
  assert.equal(connecting.length, 1, `one attempt only: ${JSON.stringify(states.data)}`);
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
  // The harness writes port = 6001 in the file and passes the real port in the environment.
  assert.equal(srv.server.host, HOST);
  const res = await fetch(srv.url('/up'), { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
});
