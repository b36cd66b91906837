// Presence channels: member lists, and member_added / member_removed only for a user's first
// connection / after their last.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, parseData, record, sleep, subscribe, uniq, useServer, waitFor, waitForState } from './harness.mjs';

const srv = useServer({ name: 'presence' });

const user = (id, name) => ({ user_id: id, user_info: { name } });

function membersOf(channel) {
  const out = {};
  channel.members.each((m) => {
    out[m.id] = m.info;
  });
  return out;
}

test('members, counts, and one member_added / member_removed per user', T, async () => {
  const name = uniq('presence-room-');

  const observer = await srv.connect({ presence: user('obs', 'Observer') });
  const { channel: chObs, data: obsMembers } = await subscribe(observer, name);
  assert.equal(obsMembers.count, 1);
  assert.equal(obsMembers.me.id, 'obs');
  assert.deepEqual(membersOf(chObs), { obs: { name: 'Observer' } });
  const added = record(chObs, 'pusher:member_added');
  const removed = record(chObs, 'pusher:member_removed');

  const alice1 = await srv.connect({ presence: user('alice', 'Alice') });
  const { channel: chA1, data: a1Members } = await subscribe(alice1, name);
  assert.equal(a1Members.count, 2);
  assert.deepEqual(membersOf(chA1), { obs: { name: 'Observer' }, alice: { name: 'Alice' } });
  await added.count(1);

  const alice2 = await srv.connect({ presence: user('alice', 'Alice') });
  const { channel: chA2, data: a2Members } = await subscribe(alice2, name);
  assert.equal(a2Members.count, 2, 'a second connection of the same user is not a second member');
  assert.deepEqual(membersOf(chA2), { obs: { name: 'Observer' }, alice: { name: 'Alice' } });

  const bob = await srv.connect({ presence: user('bob', 'Bob') });
  const { channel: chBob, data: bobMembers } = await subscribe(bob, name);
  assert.equal(bobMembers.count, 3);
  assert.deepEqual(membersOf(chBob), {
    obs: { name: 'Observer' },
    alice: { name: 'Alice' },
    bob: { name: 'Bob' },
  });

  // Bob's member_added comes after anything alice2's join could have caused.
  await added.some((m) => m.id === 'bob');
  assert.deepEqual(
    added.data.map((m) => ({ id: m.id, info: m.info })),
    [
      { id: 'alice', info: { name: 'Alice' } },
      { id: 'bob', info: { name: 'Bob' } },
    ],
    'exactly one member_added for alice despite two connections',
  );
  assert.equal(chObs.members.count, 3);

  // alice's first connection leaves: she is still present through the second.
  const bobRemoved = record(chBob, 'pusher:member_removed');
  alice1.disconnect();
  await waitForState(alice1, 'disconnected');
  await sleep(750);
  assert.deepEqual(removed.data, [], 'no member_removed while alice still has a connection');
  assert.deepEqual(bobRemoved.data, []);
  assert.equal(chObs.members.count, 3);

  // Her last connection leaves: now she is removed, once.
  alice2.disconnect();
  await removed.some((m) => m.id === 'alice');
  await bobRemoved.some((m) => m.id === 'alice');
  assert.equal(chObs.members.count, 2);
  assert.deepEqual(membersOf(chObs), { obs: { name: 'Observer' }, bob: { name: 'Bob' } });

  bob.unsubscribe(name);
  await removed.some((m) => m.id === 'bob');
  await sleep(300);
  assert.deepEqual(
    removed.data.map((m) => m.id),
    ['alice', 'bob'],
  );
  assert.equal(chObs.members.count, 1);
});

test('subscription_succeeded carries ids, hash and count on the wire', T, async () => {
  const name = uniq('presence-wire-');
  const first = await srv.connect({ presence: user('u1', 'One') });
  await subscribe(first, name);

  const { sock, socketId } = await srv.rawConnected();
  const channelData = JSON.stringify({ user_id: 'u2', user_info: { name: 'Two' } });
  const { auth } = srv.sdk().authorizeChannel(socketId, name, { user_id: 'u2', user_info: { name: 'Two' } });
  sock.send({ event: 'pusher:subscribe', data: { channel: name, auth, channel_data: channelData } });
  const msg = await sock.next((m) => m.event === 'pusher_internal:subscription_succeeded', {
    what: 'pusher_internal:subscription_succeeded',
  });
  assert.equal(msg.channel, name);
  const { presence } = parseData(msg);
  assert.equal(presence.count, 2);
  assert.deepEqual([...presence.ids].sort(), ['u1', 'u2']);
  assert.deepEqual(presence.hash, { u1: { name: 'One' }, u2: { name: 'Two' } });
});

test('a presence subscription without channel_data is rejected', T, async () => {
  const { sock, socketId } = await srv.rawConnected();
  const name = uniq('presence-nodata-');
  const { auth } = srv.sdk().authorizeChannel(socketId, name);
  sock.send({ event: 'pusher:subscribe', data: { channel: name, auth } });
  await sock.next((m) => m.event === 'pusher:subscription_error' || m.event === 'pusher:error', {
    what: 'an error for presence without channel_data',
  });
  await sleep(200);
  assert.ok(!sock.messages.some((m) => m.event === 'pusher_internal:subscription_succeeded'));
});

test('member_removed reaches the remaining members when a member unsubscribes', T, async () => {
  const name = uniq('presence-unsub-');
  const a = await srv.connect({ presence: user('a', 'A') });
  const b = await srv.connect({ presence: user('b', 'B') });
  const { channel: chA } = await subscribe(a, name);
  const addedB = waitFor(chA, 'pusher:member_added');
  await subscribe(b, name);
  assert.equal((await addedB).data.id, 'b');
  const removedB = waitFor(chA, 'pusher:member_removed');
  b.unsubscribe(name);
  assert.equal((await removedB).data.id, 'b');
  assert.equal(chA.members.count, 1);
});

test('user_info over 1 KB is refused', T, async () => {
  const client = await srv.connect({ presence: { user_id: 'big', user_info: { blob: 'x'.repeat(1100) } } });
  const channel = client.subscribe(uniq('presence-big-'));
  const outcome = await Promise.race([
    waitFor(channel, 'pusher:subscription_error').then(() => 'error'),
    waitFor(channel, 'pusher:subscription_succeeded').then(() => 'succeeded'),
  ]);
  assert.equal(outcome, 'error');
});

test('a presence channel holds at most 100 members', T, async () => {
  const name = uniq('presence-full-');
  const sdk = srv.sdk();
  const join = async (i) => {
    const { sock, socketId } = await srv.rawConnected();
    const presence = { user_id: `m${i}`, user_info: {} };
    const { auth, channel_data } = sdk.authorizeChannel(socketId, name, presence);
    sock.send({ event: 'pusher:subscribe', data: { channel: name, auth, channel_data } });
    return sock;
  };
  const socks = [];
  for (let i = 0; i < 100; i++) socks.push(await join(i));
  await Promise.all(
    socks.map((s) =>
      s.next((m) => m.event === 'pusher_internal:subscription_succeeded', { what: 'one of the first 100 joins' }),
    ),
  );
  const extra = await join(100);
  await extra.next((m) => m.event === 'pusher:subscription_error' || m.event === 'pusher:error', {
    what: 'an error for the 101st member',
  });
  assert.ok(!extra.messages.some((m) => m.event === 'pusher_internal:subscription_succeeded'));
  // Another connection of an existing member is not a new member.
  const again = await join(5);
  await again.next((m) => m.event === 'pusher_internal:subscription_succeeded', {
    what: 'a second connection of member m5',
  });
});
