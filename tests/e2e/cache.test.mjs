// Cache channels: the last triggered event is replayed on subscribe; else pusher:cache_miss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, record, sleep, uniq, useServer, waitFor } from './harness.mjs';

const srv = useServer({ name: 'cache' });

/** Subscribes and records `events` from before the subscription succeeds. */
async function subscribeRecording(client, name, events) {
  const channel = client.subscribe(name);
  const recs = Object.fromEntries(events.map((e) => [e, record(channel, e)]));
  await waitFor(channel, 'pusher:subscription_succeeded', { what: `subscription_succeeded on ${name}` });
  return { channel, recs };
}

test('a new subscriber of a cache channel gets the last event triggered before it came', T, async () => {
  const name = uniq('cache-x-');
  const sdk = srv.sdk();
  await sdk.trigger(name, 'price', { v: 1 });
  await sdk.trigger(name, 'price', { v: 2 });
  const client = await srv.connect();
  const { recs } = await subscribeRecording(client, name, ['price', 'pusher:cache_miss']);
  await recs.price.count(1);
  await sleep(300);
  assert.deepEqual(recs.price.data, [{ v: 2 }], 'only the last event is replayed, once');
  assert.deepEqual(recs['pusher:cache_miss'].data, []);

  // Live events keep flowing after the replay.
  const live = waitFor(client.channel(name), 'price', { filter: (d) => d.v === 3 });
  await sdk.trigger(name, 'price', { v: 3 });
  await live;
});

test('subscribing to an empty cache channel gives pusher:cache_miss', T, async () => {
  const name = uniq('cache-y-');
  const client = await srv.connect();
  const channel = client.subscribe(name);
  const miss = waitFor(channel, 'pusher:cache_miss');
  await waitFor(channel, 'pusher:subscription_succeeded');
  await miss;
});

test('cache_miss on the wire names the channel', T, async () => {
  const name = uniq('cache-wire-');
  const { sock } = await srv.rawConnected();
  sock.send({ event: 'pusher:subscribe', data: { channel: name } });
  const msg = await sock.next((m) => m.event === 'pusher:cache_miss', { what: 'pusher:cache_miss' });
  assert.equal(msg.channel, name);
});

test('private-cache- channels replay to authorized subscribers', T, async () => {
  const name = uniq('private-cache-');
  await srv.sdk().trigger(name, 'state', { s: 'on' });
  const client = await srv.connect();
  const { recs } = await subscribeRecording(client, name, ['state']);
  await recs.state.count(1);
  assert.deepEqual(recs.state.data, [{ s: 'on' }]);
});

test('presence-cache- channels are presence channels with a cache', T, async () => {
  const name = uniq('presence-cache-');
  const client = await srv.connect({ presence: { user_id: 'pc-1', user_info: {} } });
  const channel = client.subscribe(name);
  const miss = waitFor(channel, 'pusher:cache_miss');
  const { data: members } = await waitFor(channel, 'pusher:subscription_succeeded');
  assert.equal(members.count, 1);
  await miss;

  await srv.sdk().trigger(name, 'board', { cells: [1, 2] });
  const late = await srv.connect({ presence: { user_id: 'pc-2', user_info: {} } });
  const { recs } = await subscribeRecording(late, name, ['board']);
  await recs.board.count(1);
  assert.deepEqual(recs.board.data, [{ cells: [1, 2] }]);
  assert.equal(late.channel(name).members.count, 2);
});

test('GET /channels/{cache channel}?info=cache shows the stored event', T, async () => {
  const name = uniq('cache-info-');
  const sdk = srv.sdk();
  await sdk.trigger(name, 'ev', { z: 1 });
  const res = await sdk.get({ path: `/channels/${name}`, params: { info: 'cache' } });
  const body = await res.json();
  assert.equal(body.occupied, false);
  assert.ok(body.cache, `cache info missing: ${JSON.stringify(body)}`);
  assert.ok(typeof body.cache.data === 'string', `cache.data should be a string: ${JSON.stringify(body)}`);
  assert.deepEqual(JSON.parse(body.cache.data), { z: 1 });
  assert.ok(body.cache.ttl > 0 && body.cache.ttl <= 1800, `ttl ${body.cache.ttl}`);
});
