// pusher:subscription_count on apps that enable it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PY_APP, T, record, sleep, subscribe, uniq, useServer } from './harness.mjs';

const srv = useServer({ name: 'subscription-count' });

const count = (d) => d?.subscription_count;

test('subscribers get pusher:subscription_count as it changes', T, async () => {
  const name = uniq('count-x-');
  const a = await srv.connect();
  const chA = a.subscribe(name);
  const seenA = record(chA, 'pusher:subscription_count');
  await subscribe(a, name);
  await seenA.some((d) => count(d) === 1, { what: 'subscription_count 1 on a' });

  const b = await srv.connect();
  const chB = b.subscribe(name);
  const seenB = record(chB, 'pusher:subscription_count');
  await subscribe(b, name);
  await seenA.some((d) => count(d) === 2, { what: 'subscription_count 2 on a' });
  await seenB.some((d) => count(d) === 2, { what: 'subscription_count 2 on b' });
  assert.equal(chA.subscriptionCount, 2);
  assert.deepEqual(Object.keys(seenB.events.at(-1).data), ['subscription_count']);

  const mark = seenA.events.length;
  b.unsubscribe(name);
  await seenA.until((ev) => ev.slice(mark).some((e) => count(e.data) === 1), {
    what: 'subscription_count back to 1 on a',
  });
  assert.equal(count(seenA.events.at(-1).data), 1);
  assert.equal(chA.subscriptionCount, 1);
});

test('subscription_count on the wire is pusher_internal:subscription_count with the channel', T, async () => {
  const name = uniq('count-wire-');
  const { sock } = await srv.rawConnected();
  sock.send({ event: 'pusher:subscribe', data: { channel: name } });
  const msg = await sock.next((m) => m.event === 'pusher_internal:subscription_count', {
    what: 'pusher_internal:subscription_count',
  });
  assert.equal(msg.channel, name);
  const data = typeof msg.data === 'string' ? JSON.parse(msg.data) : msg.data;
  assert.deepEqual(data, { subscription_count: 1 });
});

test('apps without enable_subscription_count get no subscription_count events', T, async () => {
  const name = uniq('count-off-');
  const a = await srv.connect({ appId: PY_APP.id });
  const ch = a.subscribe(name);
  const seen = record(ch, 'pusher:subscription_count');
  await subscribe(a, name);
  const b = await srv.connect({ appId: PY_APP.id });
  await subscribe(b, name);
  await sleep(1500);
  assert.deepEqual(seen.data, []);
});
