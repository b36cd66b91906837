// Private channels: signed subscriptions, and what happens when the signature is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAIN_APP, T, parseData, subscribe, uniq, useServer, waitFor } from './harness.mjs';

const srv = useServer({ name: 'private' });

const BAD_SIG = '0'.repeat(64);

test('a correctly signed private subscription succeeds and receives events', T, async () => {
  const client = await srv.connect();
  const name = uniq('private-ok-');
  const { channel } = await subscribe(client, name);
  const got = waitFor(channel, 'secret');
  await srv.sdk().trigger(name, 'secret', { s: 42 });
  assert.deepEqual((await got).data, { s: 42 });
});

test('a bad signature gets pusher:subscription_error and the connection stays usable', T, async () => {
  const client = await srv.connect({ tamperAuth: () => ({ auth: `${MAIN_APP.key}:${BAD_SIG}` }) });
  const name = uniq('private-bad-');
  const channel = client.subscribe(name);
  const succeeded = waitFor(channel, 'pusher:subscription_succeeded', { timeout: 1500 }).then(
    () => 'succeeded',
    () => 'no success',
  );
  const { data } = await waitFor(channel, 'pusher:subscription_error');
  assert.equal(data.type, 'AuthError');
  assert.equal(data.status, 401);
  assert.equal(await succeeded, 'no success');
  assert.equal(client.connection.state, 'connected');
  // Still usable: a public subscription on the same connection works.
  await subscribe(client, uniq('pub-after-bad-'));
});

test('a signature made for another socket is rejected', T, async () => {
  const sdk = srv.sdk();
  const client = await srv.connect({
    tamperAuth: (_auth, params) => sdk.authorizeChannel('1234.5678', params.channelName),
  });
  const channel = client.subscribe(uniq('private-replay-'));
  const { data } = await waitFor(channel, 'pusher:subscription_error');
  assert.equal(data.status, 401);
});

test('a signature made with another app key is rejected', T, async () => {
  const other = srv.sdk(MAIN_APP.id, { key: 'someone-else', secret: 'not-the-secret' });
  const client = await srv.connect({ sdk: other });
  const channel = client.subscribe(uniq('private-otherkey-'));
  const { data } = await waitFor(channel, 'pusher:subscription_error');
  assert.equal(data.status, 401);
});

test('a private subscription without auth gets subscription_error and pusher:error on the wire', T, async () => {
  const { sock } = await srv.rawConnected();
  const name = uniq('private-noauth-');
  sock.send({ event: 'pusher:subscribe', data: { channel: name } });
  const subErr = await sock.next((m) => m.event === 'pusher:subscription_error', {
    what: 'pusher:subscription_error',
  });
  assert.equal(subErr.channel, name);
  const data = typeof subErr.data === 'string' ? JSON.parse(subErr.data) : subErr.data;
  assert.equal(data.type, 'AuthError');
  assert.equal(data.status, 401);
  const err = await sock.next((m) => m.event === 'pusher:error', { what: 'pusher:error' });
  const errData = typeof err.data === 'string' ? JSON.parse(err.data) : err.data;
  assert.equal(typeof errData.code, 'number');
  assert.ok(errData.code >= 4000 && errData.code < 5000, `pusher:error code ${errData.code}`);
  assert.ok(!sock.messages.some((m) => m.event === 'pusher_internal:subscription_succeeded'));
  // The connection stays open.
  sock.send({ event: 'pusher:ping', data: {} });
  const pong = await sock.next((m) => m.event === 'pusher:pong', { what: 'pusher:pong' });
  assert.deepEqual(parseData(pong), {});
});

test('a presence subscription whose channel_data differs from what was signed is rejected', T, async () => {
  const client = await srv.connect({
    presence: { user_id: 'mallory', user_info: {} },
    tamperAuth: (auth) => ({ ...auth, channel_data: JSON.stringify({ user_id: 'admin', user_info: {} }) }),
  });
  const channel = client.subscribe(uniq('presence-tamper-'));
  const { data } = await waitFor(channel, 'pusher:subscription_error');
  assert.equal(data.status, 401);
});
