// The HTTP API through the Node `pusher` SDK, with exact bodies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLUSTER,
  DEFAULT_APPS,
  MAIN_APP,
  T,
  eventually,
  expectStatus,
  record,
  subscribe,
  uniq,
  useServer,
  waitFor,
} from './harness.mjs';

const DISABLED_APP = { id: 'rest-disabled', key: 'rest-disabled-key', secret: 'rest-disabled-secret', enabled: false };
// In cluster mode every test file shares one cluster, so this file gets an app of its own
// (deploy/local/cluster.toml): listing all presence- channels must see only this file's.
const REST_APP = {
  id: 'rest-app',
  key: 'rest-key',
  secret: 'rest-secret',
  enable_client_messages: true,
  enable_subscription_count: true,
};
const APP = CLUSTER ? REST_APP : MAIN_APP;

const srv = useServer({
  name: 'rest',
  apps: [...DEFAULT_APPS, ...(CLUSTER ? [REST_APP] : []), DISABLED_APP],
  mainApp: APP,
});

const json = async (promise) => (await promise).json();

/** Waits until the server reports `n` subscriptions (edges may report counts a moment later). */
async function untilSubscriptionCount(sdk, name, n) {
  await eventually(async () => {
    const body = await json(sdk.get({ path: `/channels/${name}`, params: { info: 'subscription_count' } }));
    assert.deepEqual(body, { occupied: n > 0, subscription_count: n });
  });
}

test('trigger with info=subscription_count answers the channel counts', T, async () => {
  const sdk = srv.sdk();
  const name = uniq('rest-pub-');
  const a = await srv.connect();
  const b = await srv.connect();
  const { channel } = await subscribe(a, name);
  await subscribe(b, name);
  await untilSubscriptionCount(sdk, name, 2);
  const got = waitFor(channel, 'counted');
  const body = await json(sdk.trigger(name, 'counted', { x: 1 }, { info: 'subscription_count' }));
  assert.deepEqual(body, { channels: { [name]: { subscription_count: 2 } } });
  await got;
});

test('trigger without info answers {}', T, async () => {
  const body = await json(srv.sdk().trigger(uniq('rest-empty-'), 'e', {}));
  assert.deepEqual(body, {});
});

test('presence: trigger info, /channels, /channels/{name}, /users', T, async () => {
  const sdk = srv.sdk();
  const roomA = uniq('presence-rest-a-');
  const roomB = uniq('presence-rest-b-');
  const u1a = await srv.connect({ presence: { user_id: 'u1', user_info: { n: 1 } } });
  const u1b = await srv.connect({ presence: { user_id: 'u1', user_info: { n: 1 } } });
  const u2 = await srv.connect({ presence: { user_id: 'u2', user_info: { n: 2 } } });
  const u3 = await srv.connect({ presence: { user_id: 'u3', user_info: { n: 3 } } });
  await subscribe(u1a, roomA);
  await subscribe(u1b, roomA);
  await subscribe(u2, roomA);
  await subscribe(u3, roomB);

  const trig = await json(sdk.trigger(roomA, 'hello', { x: 1 }, { info: 'user_count' }));
  assert.deepEqual(trig, { channels: { [roomA]: { user_count: 2 } } });

  const both = await json(sdk.trigger([roomA, roomB], 'hello', { x: 2 }, { info: 'user_count' }));
  assert.deepEqual(both, { channels: { [roomA]: { user_count: 2 }, [roomB]: { user_count: 1 } } });

  const list = await json(
    sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-rest-', info: 'user_count' } }),
  );
  assert.deepEqual(list, { channels: { [roomA]: { user_count: 2 }, [roomB]: { user_count: 1 } } });

  // Plain 'presence-' prefix, as apps use it. Only this test makes presence channels here.
  const all = await json(sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
  assert.deepEqual(all, { channels: { [roomA]: { user_count: 2 }, [roomB]: { user_count: 1 } } });

  await eventually(async () => {
    const one = await json(
      sdk.get({ path: `/channels/${roomA}`, params: { info: 'subscription_count,user_count' } }),
    );
    assert.deepEqual(one, { occupied: true, user_count: 2, subscription_count: 3 });
  });

  const users = await json(sdk.get({ path: `/channels/${roomA}/users` }));
  assert.deepEqual(Object.keys(users), ['users']);
  assert.deepEqual(
    [...users.users].sort((x, y) => x.id.localeCompare(y.id)),
    [{ id: 'u1' }, { id: 'u2' }],
  );
  assert.deepEqual(await json(sdk.get({ path: `/channels/${roomB}/users` })), { users: [{ id: 'u3' }] });
});

test('GET /channels lists occupied channels only, filtered by prefix', T, async () => {
  const sdk = srv.sdk();
  const prefix = uniq('rest-list-');
  const a = `${prefix}-a`;
  const b = `${prefix}-b`;
  const client = await srv.connect();
  await subscribe(client, a);
  await subscribe(client, b);
  await sdk.trigger(`${prefix}-never-subscribed`, 'e', {});
  const body = await json(sdk.get({ path: '/channels', params: { filter_by_prefix: prefix } }));
  assert.deepEqual(body, { channels: { [a]: {}, [b]: {} } });

  client.unsubscribe(a);
  await eventually(async () => {
    const after = await json(sdk.get({ path: '/channels', params: { filter_by_prefix: prefix } }));
    assert.deepEqual(after, { channels: { [b]: {} } });
  });
});

test('GET /channels with info=user_count needs the presence- prefix (400)', T, async () => {
  await expectStatus(srv.sdk().get({ path: '/channels', params: { info: 'user_count' } }), 400);
});

test('GET /channels/{name} for an unoccupied channel', T, async () => {
  const body = await json(srv.sdk().get({ path: `/channels/${uniq('rest-nobody-')}` }));
  assert.deepEqual(body, { occupied: false });
});

test('GET /channels/{name} for an occupied public channel', T, async () => {
  const sdk = srv.sdk();
  const name = uniq('rest-one-');
  const client = await srv.connect();
  await subscribe(client, name);
  assert.deepEqual(await json(sdk.get({ path: `/channels/${name}` })), { occupied: true });
  await untilSubscriptionCount(sdk, name, 1);
});

test('GET /channels/{name}/users on a non-presence channel is a 400', T, async () => {
  await expectStatus(srv.sdk().get({ path: `/channels/${uniq('rest-notpresence-')}/users` }), 400);
});

test('triggerBatch delivers each event and answers index-aligned info', T, async () => {
  const sdk = srv.sdk();
  const pub = uniq('rest-batch-');
  const room = uniq('presence-batch-');
  const a = await srv.connect({ presence: { user_id: 'batcher', user_info: {} } });
  const { channel: chPub } = await subscribe(a, pub);
  const { channel: chRoom } = await subscribe(a, room);
  const pubSeen = record(chPub, 'b1');
  const roomSeen = record(chRoom, 'b2');
  await untilSubscriptionCount(sdk, pub, 1);

  const plain = await json(
    sdk.triggerBatch([
      { channel: pub, name: 'b1', data: { i: 1 } },
      { channel: room, name: 'b2', data: { i: 2 } },
    ]),
  );
  assert.deepEqual(plain, {});
  await pubSeen.count(1);
  await roomSeen.count(1);
  assert.deepEqual(pubSeen.data, [{ i: 1 }]);
  assert.deepEqual(roomSeen.data, [{ i: 2 }]);

  const withInfo = await json(
    sdk.triggerBatch([
      { channel: pub, name: 'b1', data: { i: 3 }, info: 'subscription_count' },
      { channel: room, name: 'b2', data: { i: 4 }, info: 'user_count' },
      { channel: pub, name: 'b1', data: { i: 5 } },
    ]),
  );
  assert.deepEqual(withInfo, { batch: [{ subscription_count: 1 }, { user_count: 1 }, {}] });
  await pubSeen.count(3);
  assert.deepEqual(pubSeen.data, [{ i: 1 }, { i: 3 }, { i: 5 }]);
});

test('an unknown app id is a 404', T, async () => {
  const sdk = srv.sdk(APP.id, { appId: 'no-such-app' });
  await expectStatus(sdk.trigger('rest-404', 'e', {}), 404);
  await expectStatus(sdk.get({ path: '/channels' }), 404);
});

test('a bad secret is a 401', T, async () => {
  const sdk = srv.sdk(APP.id, { secret: 'wrong-secret' });
  await expectStatus(sdk.trigger('rest-401', 'e', {}), 401);
  await expectStatus(sdk.get({ path: '/channels' }), 401);
});

test('an unknown auth_key is a 401', T, async () => {
  const sdk = srv.sdk(APP.id, { key: 'not-a-key' });
  await expectStatus(sdk.get({ path: '/channels' }), 401);
});

test('an unsigned request is a 401', T, async () => {
  const res = await fetch(srv.url(`/apps/${APP.id}/channels`), { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 401);
});

test('a tampered body (body_md5 mismatch) is a 401', T, async () => {
  const sdk = srv.sdk();
  const body = JSON.stringify({ name: 'e', channels: ['rest-md5'], data: '{}' });
  const qs = sdk.createSignedQueryString({ method: 'POST', path: `/apps/${APP.id}/events`, body });
  const res = await fetch(srv.url(`/apps/${APP.id}/events?${qs}`), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body.replace('rest-md5', 'rest-md6'),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(res.status, 401);
});

test('an old auth_timestamp is a 401', T, async () => {
  const sdk = srv.sdk();
  const realNow = Date.now;
  let qs;
  try {
    Date.now = () => realNow() - 3600_000;
    qs = sdk.createSignedQueryString({ method: 'GET', path: `/apps/${APP.id}/channels` });
  } finally {
    Date.now = realNow;
  }
  const res = await fetch(srv.url(`/apps/${APP.id}/channels?${qs}`), { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 401);
});

test('data over 10 KB is rejected (413)', T, async () => {
  await expectStatus(srv.sdk().trigger(uniq('rest-big-'), 'e', 'x'.repeat(10 * 1024 + 1)), 413);
});

test('API limits: long event name, too many channels, big batch, bad socket_id are 400s', T, async () => {
  const sdk = srv.sdk();
  // The SDK checks these itself, so post by hand.
  const events = (body) => sdk.post({ path: '/events', body: { data: '{}', ...body } });
  await expectStatus(events({ name: 'e'.repeat(201), channels: [uniq('rest-lim-')] }), 400);
  const many = Array.from({ length: 101 }, (_, i) => `rest-many-${i}`);
  await expectStatus(events({ name: 'e', channels: many }), 400);
  await expectStatus(events({ name: 'e', channels: [uniq('rest-lim-')], socket_id: 'not-a-socket' }), 400);
  await expectStatus(events({ name: 'e' }), 400);
  const batch = Array.from({ length: 11 }, (_, i) => ({ channel: `rest-batch-lim-${i}`, name: 'e', data: '{}' }));
  await expectStatus(sdk.post({ path: '/batch_events', body: { batch } }), 400);
  // The limits themselves are fine.
  const hundred = Array.from({ length: 100 }, (_, i) => `rest-hundred-${i}`);
  assert.deepEqual(await json(events({ name: 'e'.repeat(200), channels: hundred })), {});
});

test('a disabled app answers 403', T, async () => {
  await expectStatus(srv.sdk(DISABLED_APP.id).trigger('rest-403', 'e', {}), 403);
});

test('a malformed JSON body is a 400', T, async () => {
  const sdk = srv.sdk();
  const body = '{"name": "e", "channels": [';
  const path = `/apps/${APP.id}/events`;
  const qs = sdk.createSignedQueryString({ method: 'POST', path, body });
  const res = await fetch(srv.url(`${path}?${qs}`), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(res.status, 400);
});
