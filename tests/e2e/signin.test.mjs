// User signin, server-to-user events (sendToUser) and terminate_connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAIN_APP,
  T,
  WAIT_MS,
  errorCode,
  parseData,
  record,
  sleep,
  uid,
  useServer,
  waitFor,
  waitForState,
  withTimeout,
} from './harness.mjs';

const srv = useServer({ name: 'signin' });

// User ids are per app and, in a cluster, outlive the run (online state, watchlists): each run
// uses its own.
const ALICE = uid('alice-s2u');
const BOB = uid('bob-s2u');
const MULTI = uid('multi-s2u');
const TERM = uid('term-me');
const KEEP = uid('keep-me');
const WIRE = uid('wire-user');
const FORGER = uid('forger');
const FIRST = uid('first-user');
const SECOND = uid('second-user');
const MALLORY = uid('mallory');
const VICTIM = uid('victim');
const WL_EARLY = uid('wl-early');
const WL_LATE = uid('wl-late');
const WL_WATCHER = uid('wl-watcher');

/** A pusher-js client signed in as `id`, with its #server-to-user channel subscribed. */
async function signedIn(id, info = {}) {
  const client = await srv.connect({ user: { id, user_info: info } });
  client.signin();
  await withTimeout(client.user.signinDonePromise, WAIT_MS, `pusher:signin_success for ${id}`);
  assert.equal(client.user.user_data.id, id);
  const ch = client.user.serverToUserChannel;
  assert.equal(ch.name, `#server-to-user-${id}`);
  if (!ch.subscribed) {
    const failed = waitFor(ch, 'pusher:subscription_error').then((e) => {
      throw new Error(`subscribing ${ch.name} failed: ${JSON.stringify(e.data)}`);
    });
    await Promise.race([waitFor(ch, 'pusher:subscription_succeeded', { what: `subscription to ${ch.name}` }), failed]);
  }
  return client;
}

test('sendToUser reaches the signed-in user and nobody else', T, async () => {
  const alice = await signedIn(ALICE);
  const bob = await signedIn(BOB);
  const bobSeen = record(bob.user, 'notice');
  const got = waitFor(alice.user, 'notice');
  const res = await srv.sdk().sendToUser(ALICE, 'notice', { text: 'for alice only' });
  assert.equal(res.status, 200);
  assert.deepEqual((await got).data, { text: 'for alice only' });
  // Barrier on bob's own stream: an event for bob arrives after anything meant for alice would.
  const bobGot = waitFor(bob.user, 'notice');
  await srv.sdk().sendToUser(BOB, 'notice', { text: 'for bob' });
  await bobGot;
  assert.deepEqual(bobSeen.data, [{ text: 'for bob' }]);
});

test('sendToUser reaches every connection of that user', T, async () => {
  const one = await signedIn(MULTI);
  const two = await signedIn(MULTI);
  const g1 = waitFor(one.user, 'ping-user');
  const g2 = waitFor(two.user, 'ping-user');
  await srv.sdk().sendToUser(MULTI, 'ping-user', { n: 1 });
  assert.deepEqual((await g1).data, { n: 1 });
  assert.deepEqual((await g2).data, { n: 1 });
});

test('terminateUserConnections closes that user’s connections with 4009 and they stay closed', T, async () => {
  const a = await signedIn(TERM);
  const b = await signedIn(TERM);
  const survivor = await signedIn(KEEP);
  const errA = waitFor(a.connection, 'error', { filter: (e) => errorCode(e) === 4009, what: '4009 on a' });
  const errB = waitFor(b.connection, 'error', { filter: (e) => errorCode(e) === 4009, what: '4009 on b' });
  const statesA = record(a.connection, 'state_change');

  const res = await srv.sdk().terminateUserConnections(TERM);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  await errA;
  await errB;
  // pusher-js treats 4000-4099 as 'refused': it disconnects and does not reconnect.
  await waitForState(a, ['disconnected', 'failed', 'unavailable']);
  await waitForState(b, ['disconnected', 'failed', 'unavailable']);
  await sleep(1000);
  assert.ok(
    !statesA.data.some((s) => s.current === 'connecting'),
    `no reconnect after 4009: ${JSON.stringify(statesA.data)}`,
  );
  assert.notEqual(a.connection.state, 'connected');

  assert.equal(survivor.connection.state, 'connected');
  const got = waitFor(survivor.user, 'still-here');
  await srv.sdk().sendToUser(KEEP, 'still-here', { ok: true });
  assert.deepEqual((await got).data, { ok: true });
});

test('pusher:signin_success echoes user_data on the wire', T, async () => {
  const { sock, socketId } = await srv.rawConnected();
  const signed = srv.sdk().authenticateUser(socketId, { id: WIRE, user_info: { name: 'W' } });
  sock.send({ event: 'pusher:signin', data: signed });
  const msg = await sock.next((m) => m.event === 'pusher:signin_success', { what: 'pusher:signin_success' });
  const data = typeof msg.data === 'string' ? JSON.parse(msg.data) : msg.data;
  assert.equal(data.user_data, signed.user_data);
});

test('a bad signin signature closes the connection with 4009', T, async () => {
  const { sock } = await srv.rawConnected();
  sock.send({
    event: 'pusher:signin',
    data: { auth: `${MAIN_APP.key}:${'0'.repeat(64)}`, user_data: JSON.stringify({ id: FORGER }) },
  });
  const closed = await sock.closed();
  assert.equal(closed.code, 4009);
  assert.ok(!sock.messages.some((m) => m.event === 'pusher:signin_success'));
});

test('a connection signed in as one user cannot sign in as another', T, async () => {
  const { sock, socketId } = await srv.rawConnected();
  const sdk = srv.sdk();
  sock.send({ event: 'pusher:signin', data: sdk.authenticateUser(socketId, { id: FIRST }) });
  await sock.next((m) => m.event === 'pusher:signin_success', { what: 'first signin_success' });
  sock.send({ event: 'pusher:signin', data: sdk.authenticateUser(socketId, { id: SECOND }) });
  // Whatever the server answers (pusher:error or a close), it must not become second-user.
  await sleep(300);
  const successes = sock.messages.filter((m) => m.event === 'pusher:signin_success');
  assert.equal(successes.length, 1, 'no second signin_success');
  if (!sock.closeInfo) {
    await sdk.sendToUser(SECOND, 'stolen', { x: 1 });
    await sleep(300);
    assert.ok(!sock.messages.some((m) => m.event === 'stolen'), 'events for second-user must not arrive');
  }
});

test('only the user itself may subscribe to its #server-to-user channel', T, async () => {
  const { sock, socketId } = await srv.rawConnected();
  sock.send({ event: 'pusher:signin', data: srv.sdk().authenticateUser(socketId, { id: MALLORY }) });
  await sock.next((m) => m.event === 'pusher:signin_success', { what: 'signin_success' });
  sock.send({ event: 'pusher:subscribe', data: { channel: `#server-to-user-${VICTIM}` } });
  await sock.next((m) => m.event === 'pusher:subscription_error' || m.event === 'pusher:error', {
    what: 'an error for a foreign #server-to-user channel',
  });
  assert.ok(
    !sock.messages.some(
      (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === `#server-to-user-${VICTIM}`,
    ),
  );
  await srv.sdk().sendToUser(VICTIM, 'private-note', { x: 1 });
  await sleep(300);
  assert.ok(!sock.messages.some((m) => m.event === 'private-note'));
  // Sanity: its own channel is fine.
  sock.send({ event: 'pusher:subscribe', data: { channel: `#server-to-user-${MALLORY}` } });
  const ok = await sock.next(
    (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === `#server-to-user-${MALLORY}`,
    { what: 'subscription_succeeded for its own #server-to-user channel' },
  );
  assert.deepEqual(parseData(ok), {});
});

test('watchlist: online and offline events for watched users', T, async () => {
  // Already online before the watcher signs in.
  const early = await signedIn(WL_EARLY);
  const watcher = await srv.connect({ user: { id: WL_WATCHER, watchlist: [WL_EARLY, WL_LATE] } });
  const online = record(watcher.user.watchlist, 'online');
  const offline = record(watcher.user.watchlist, 'offline');
  watcher.signin();
  await withTimeout(watcher.user.signinDonePromise, WAIT_MS, 'watcher signin');
  await online.some((e) => e.user_ids.includes(WL_EARLY), { what: 'online for wl-early' });

  const late = await signedIn(WL_LATE);
  await online.some((e) => e.user_ids.includes(WL_LATE), { what: 'online for wl-late' });

  late.disconnect();
  await offline.some((e) => e.user_ids.includes(WL_LATE), { what: 'offline for wl-late' });
  assert.ok(!offline.data.some((e) => e.user_ids.includes(WL_EARLY)), 'wl-early is still online');
  early.disconnect();
  await offline.some((e) => e.user_ids.includes(WL_EARLY), { what: 'offline for wl-early' });
});
