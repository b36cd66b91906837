// Public channels: subscribe, trigger through the Node SDK, receive; socket_id exclusion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, record, sleep, subscribe, uniq, useServer, waitFor } from './harness.mjs';

const srv = useServer({ name: 'public' });

test('a public channel subscriber receives an event triggered through the SDK', T, async () => {
  const client = await srv.connect();
  const name = uniq('pub-');
  const { channel } = await subscribe(client, name);
  const got = waitFor(channel, 'greeting');
  const res = await srv.sdk().trigger(name, 'greeting', { hello: 'world', n: 1 });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  const { data } = await got;
  assert.deepEqual(data, { hello: 'world', n: 1 });
});

test('a string payload arrives as the same string', T, async () => {
  const client = await srv.connect();
  const name = uniq('pub-');
  const { channel } = await subscribe(client, name);
  const got = waitFor(channel, 'plain');
  await srv.sdk().trigger(name, 'plain', 'just text, not JSON');
  assert.equal((await got).data, 'just text, not JSON');
});

test('one trigger to several channels reaches each of them', T, async () => {
  const client = await srv.connect();
  const a = uniq('pub-a-');
  const b = uniq('pub-b-');
  const { channel: ca } = await subscribe(client, a);
  const { channel: cb } = await subscribe(client, b);
  const ga = waitFor(ca, 'multi');
  const gb = waitFor(cb, 'multi');
  await srv.sdk().trigger([a, b], 'multi', { x: 1 });
  assert.deepEqual((await ga).data, { x: 1 });
  assert.deepEqual((await gb).data, { x: 1 });
});

test('trigger with socket_id excludes that connection only', T, async () => {
  const excluded = await srv.connect();
  const other = await srv.connect();
  const name = uniq('pub-excl-');
  const { channel: chEx } = await subscribe(excluded, name);
  const { channel: chOther } = await subscribe(other, name);
  const exSeen = record(chEx, 'news');
  const otherSeen = record(chOther, 'news');
  const sdk = srv.sdk();

  await sdk.trigger(name, 'news', { n: 1 }, { socket_id: excluded.connection.socket_id });
  // Barrier: a second event to everyone. Events from one publisher on one channel arrive in
  // order, so once the excluded client has n=2 it would already have had n=1.
  await sdk.trigger(name, 'news', { n: 2 });
  await otherSeen.count(2);
  await exSeen.some((d) => d.n === 2);
  assert.deepEqual(otherSeen.data, [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(exSeen.data, [{ n: 2 }], 'the excluded socket must not receive the event');
});

test('after unsubscribe a client no longer receives the channel', T, async () => {
  const leaver = await srv.connect();
  const stayer = await srv.connect();
  const name = uniq('pub-unsub-');
  const keep = uniq('pub-keep-');
  await subscribe(leaver, name);
  await subscribe(leaver, keep);
  const { channel: chStayer } = await subscribe(stayer, name);
  // pusher-js drops an unsubscribed channel's object, so listen on the connection-wide
  // emitter, which sees every event frame whatever its channel.
  const leaverSeen = record(leaver, 'after');
  leaver.unsubscribe(name);
  // Frames on one socket are handled in order: once this subscription succeeds, the
  // unsubscribe before it has been applied.
  await subscribe(leaver, uniq('pub-barrier-'));
  const stayerGot = waitFor(chStayer, 'after');
  await srv.sdk().trigger([name, keep], 'after', { n: 1 });
  await stayerGot;
  await leaverSeen.count(1);
  await sleep(300);
  assert.equal(leaverSeen.events.length, 1, 'only the copy for the channel still subscribed');
});
