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

test('channel names may use every allowed character, including , and ;', T, async () => {
  const client = await srv.connect();
  const name = `${uniq('pub-')}_-=@,.;x`;
  const { channel } = await subscribe(client, name);
  const got = waitFor(channel, 'odd-name');
  await srv.sdk().trigger(name, 'odd-name', { ok: true });
  assert.deepEqual((await got).data, { ok: true });
});

test('a 164-character channel name works; 165 characters or a bad character is refused', T, async () => {
  const client = await srv.connect();
  const base = uniq('pub-len-');
  const ok = base + 'x'.repeat(164 - base.length);
  assert.equal(ok.length, 164);
  await subscribe(client, ok);

  const { sock } = await srv.rawConnected();
  const tooLong = base + 'y'.repeat(165 - base.length);
  for (const bad of [tooLong, `${base} space`, `${base}#hash`, '']) {
    const from = sock.messages.length;
    const after = (pred) => (m) => sock.messages.indexOf(m) >= from && pred(m);
    sock.send({ event: 'pusher:subscribe', data: { channel: bad } });
    await sock.next(after((m) => m.event === 'pusher:error' || m.event === 'pusher:subscription_error'), {
      what: `an error for channel name ${JSON.stringify(bad)}`,
    });
    // Let every answer to this subscribe arrive before the next one is sent.
    sock.send({ event: 'pusher:ping', data: {} });
    await sock.next(after((m) => m.event === 'pusher:pong'), { what: 'pong' });
  }
  await sleep(200);
  assert.ok(
    !sock.messages.some((m) => m.event === 'pusher_internal:subscription_succeeded'),
    `no invalid name may be subscribed: ${JSON.stringify(sock.messages)}`,
  );
  assert.equal(sock.closeInfo, null, 'invalid names are not fatal');
});

test('triggering an invalid channel name over the API is a 400', T, async () => {
  const sdk = srv.sdk();
  // The SDK validates names itself, so post by hand.
  const post = (channels) => sdk.post({ path: '/events', body: { name: 'e', data: '{}', channels } });
  for (const bad of [['has space'], ['x'.repeat(165)], ['#server-to-user-']]) {
    try {
      await post(bad);
      assert.fail(`expected 400 for ${bad[0].slice(0, 20)}`);
    } catch (err) {
      assert.equal(err.status, 400, `channel ${JSON.stringify(bad[0].slice(0, 20))}: ${err.status} ${err.body}`);
    }
  }
});
