// Client events between pusher-js clients on private and presence channels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_APPS, T, errorCode, record, sleep, subscribe, uniq, useServer, waitFor } from './harness.mjs';

const NO_CLIENT_APP = {
  id: 'no-client-events',
  key: 'no-client-key',
  secret: 'no-client-secret',
  enable_client_messages: false,
};

const srv = useServer({ name: 'client-events', apps: [...DEFAULT_APPS, NO_CLIENT_APP] });

// How long to keep listening for a frame that must not come, after the frame that must.
const QUIET_MS = 300;

test('private channel: a client event reaches the other subscriber, not the sender', T, async () => {
  const alice = await srv.connect();
  const bob = await srv.connect();
  const name = uniq('private-chat-');
  const { channel: chA } = await subscribe(alice, name);
  const { channel: chB } = await subscribe(bob, name);
  const aliceSeen = record(chA, 'client-typing');
  const bobGot = waitFor(chB, 'client-typing');

  assert.equal(chA.trigger('client-typing', { who: 'alice' }), true);
  const { data, metadata } = await bobGot;
  assert.deepEqual(data, { who: 'alice' });
  assert.equal(metadata?.user_id, undefined, 'no user_id on a private channel');
  await sleep(QUIET_MS);
  assert.deepEqual(aliceSeen.data, [], 'a client event is never echoed to its sender');

  // And the other way round.
  const aliceGot = waitFor(chA, 'client-reply');
  chB.trigger('client-reply', { who: 'bob' });
  assert.deepEqual((await aliceGot).data, { who: 'bob' });
});

test('presence channel: client events carry the sender user_id and are not echoed', T, async () => {
  const alice = await srv.connect({ presence: { user_id: 'alice', user_info: { name: 'Alice' } } });
  const bob = await srv.connect({ presence: { user_id: 'bob', user_info: { name: 'Bob' } } });
  const name = uniq('presence-chat-');
  const { channel: chA } = await subscribe(alice, name);
  const { channel: chB } = await subscribe(bob, name);
  const aliceSeen = record(chA, 'client-msg');

  const bobGot = waitFor(chB, 'client-msg');
  chA.trigger('client-msg', { text: 'hi bob' });
  const { data, metadata } = await bobGot;
  assert.deepEqual(data, { text: 'hi bob' });
  assert.equal(metadata.user_id, 'alice');

  const aliceGot = waitFor(chA, 'client-msg');
  chB.trigger('client-msg', { text: 'hi alice' });
  const back = await aliceGot;
  assert.deepEqual(back.data, { text: 'hi alice' });
  assert.equal(back.metadata.user_id, 'bob');
  await sleep(QUIET_MS);
  assert.deepEqual(aliceSeen.data, [{ text: 'hi alice' }], 'alice never sees her own event');
});

test('a client event on a public channel is rejected and not delivered', T, async () => {
  const alice = await srv.connect();
  const bob = await srv.connect();
  const name = uniq('pub-client-');
  const { channel: chA } = await subscribe(alice, name);
  const { channel: chB } = await subscribe(bob, name);
  const bobSeen = record(chB, 'client-nope');
  const err = waitFor(alice.connection, 'error', { filter: (e) => e?.type === 'PusherError' });
  chA.trigger('client-nope', { x: 1 });
  const { data } = await err;
  assert.ok(data.data.code >= 4000 && data.data.code < 5000, `pusher:error code ${JSON.stringify(data)}`);
  await sleep(QUIET_MS);
  assert.deepEqual(bobSeen.data, []);
  assert.equal(alice.connection.state, 'connected');
});

test('a client event from a socket not subscribed to the channel is not delivered', T, async () => {
  const bob = await srv.connect();
  const name = uniq('private-notsub-');
  const { channel: chB } = await subscribe(bob, name);
  const bobSeen = record(chB, 'client-sneak');
  const { sock } = await srv.rawConnected();
  sock.send({ event: 'client-sneak', channel: name, data: { x: 1 } });
  await sock.next((m) => m.event === 'pusher:error', { what: 'pusher:error for an unsubscribed client event' });
  await sleep(QUIET_MS);
  assert.deepEqual(bobSeen.data, []);
});

test('client events are rejected when the app does not enable them', T, async () => {
  const alice = await srv.connect({ appId: NO_CLIENT_APP.id });
  const bob = await srv.connect({ appId: NO_CLIENT_APP.id });
  const name = uniq('private-disabled-');
  const { channel: chA } = await subscribe(alice, name);
  const { channel: chB } = await subscribe(bob, name);
  const bobSeen = record(chB, 'client-x');
  const err = waitFor(alice.connection, 'error', { filter: (e) => e?.type === 'PusherError' });
  chA.trigger('client-x', { x: 1 });
  await err;
  await sleep(QUIET_MS);
  assert.deepEqual(bobSeen.data, []);
});

test('client events over the rate limit are answered with an error', T, async () => {
  // PROTOCOL: at most 10 per second per connection (→ 4301), connection kept.
  const alice = await srv.connect();
  const bob = await srv.connect();
  const name = uniq('private-rate-');
  const { channel: chA } = await subscribe(alice, name);
  const { channel: chB } = await subscribe(bob, name);
  const bobSeen = record(chB, 'client-burst');
  const errors = record(alice.connection, 'error');
  for (let i = 0; i < 30; i++) chA.trigger('client-burst', { i });
  await errors.some((e) => errorCode(e) === 4301, { what: 'pusher:error 4301' });
  await sleep(QUIET_MS);
  assert.ok(bobSeen.events.length >= 1, 'the first events within the limit are delivered');
  assert.ok(bobSeen.events.length < 30, `rate limit let ${bobSeen.events.length} of 30 through`);
  assert.equal(alice.connection.state, 'connected');
});

test('on the wire: client event data is a JSON string and presence frames carry user_id', T, async () => {
  const sender = await srv.connect({ presence: { user_id: 'wire-sender', user_info: {} } });
  const name = uniq('presence-wire-ce-');
  const { channel } = await subscribe(sender, name);
  const { sock, socketId } = await srv.rawConnected();
  const presence = { user_id: 'wire-receiver', user_info: {} };
  const { auth, channel_data } = srv.sdk().authorizeChannel(socketId, name, presence);
  sock.send({ event: 'pusher:subscribe', data: { channel: name, auth, channel_data } });
  await sock.next((m) => m.event === 'pusher_internal:subscription_succeeded', { what: 'subscription_succeeded' });
  // pusher-js sends data as an object.
  channel.trigger('client-wire', { a: [1, 2] });
  const msg = await sock.next((m) => m.event === 'client-wire', { what: 'the client event' });
  assert.equal(msg.channel, name);
  assert.equal(msg.user_id, 'wire-sender');
  // PROTOCOL.md: server→client data is a JSON string, whatever form the client sent.
  assert.equal(typeof msg.data, 'string', `data relayed as ${JSON.stringify(msg.data)}`);
  assert.deepEqual(JSON.parse(msg.data), { a: [1, 2] });
});
