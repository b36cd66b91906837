// End-to-end encrypted channels (private-encrypted-): the server relays ciphertext untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { T, expectStatus, parseData, sleep, subscribe, uniq, useServer, waitFor } from './harness.mjs';

const srv = useServer({ name: 'encrypted' });

const MASTER_KEY = crypto.randomBytes(32).toString('base64');
const encSdk = () => srv.sdk(undefined, { encryptionMasterKeyBase64: MASTER_KEY });

test('an encrypted channel subscriber decrypts what the SDK triggered', T, async () => {
  const sdk = encSdk();
  const client = await srv.connect({ sdk });
  const name = uniq('private-encrypted-x-');
  const { channel } = await subscribe(client, name);
  const got = waitFor(channel, 'secret-event');
  const res = await sdk.trigger(name, 'secret-event', { message: 'the eagle has landed', n: 7 });
  assert.equal(res.status, 200);
  assert.deepEqual((await got).data, { message: 'the eagle has landed', n: 7 });
});

test('the server passes the ciphertext through without decrypting it', T, async () => {
  const sdk = encSdk();
  const name = uniq('private-encrypted-raw-');
  const { sock, socketId } = await srv.rawConnected();
  const { auth } = sdk.authorizeChannel(socketId, name);
  sock.send({ event: 'pusher:subscribe', data: { channel: name, auth } });
  await sock.next((m) => m.event === 'pusher_internal:subscription_succeeded', { what: 'subscription_succeeded' });
  await sdk.trigger(name, 'sealed', { plain: 'do-not-leak' });
  const msg = await sock.next((m) => m.event === 'sealed', { what: 'the encrypted event' });
  assert.equal(msg.channel, name);
  assert.ok(!JSON.stringify(msg).includes('do-not-leak'));
  const payload = parseData(msg);
  assert.deepEqual(Object.keys(payload).sort(), ['ciphertext', 'nonce']);
  assert.equal(Buffer.from(payload.nonce, 'base64').length, 24);
});

test('triggering an encrypted channel together with a normal channel is rejected with 400', T, async () => {
  const sdk = encSdk();
  const enc = uniq('private-encrypted-mixed-');
  const pub = uniq('pub-mixed-');
  // The SDK refuses this itself, so send the signed request by hand.
  const err = await expectStatus(
    sdk.post({ path: '/events', body: { name: 'mixed', data: '{"a":1}', channels: [enc, pub] } }),
    400,
  );
  assert.ok(err.body && err.body.length > 0, 'a 400 carries a message');
});

test('a second encrypted subscriber with the right key also decrypts', T, async () => {
  const sdk = encSdk();
  const name = uniq('private-encrypted-two-');
  const a = await srv.connect({ sdk });
  const b = await srv.connect({ sdk });
  const { channel: ca } = await subscribe(a, name);
  const { channel: cb } = await subscribe(b, name);
  const ga = waitFor(ca, 'e');
  const gb = waitFor(cb, 'e');
  await sdk.trigger(name, 'e', 'a plain string');
  assert.equal((await ga).data, 'a plain string');
  assert.equal((await gb).data, 'a plain string');
});

test('client events on an encrypted channel are not relayed', T, async () => {
  const sdk = encSdk();
  const name = uniq('private-encrypted-client-');
  // pusher-js refuses client events on encrypted channels and would drop an undecryptable
  // frame silently, so both ends are raw sockets.
  const join = async () => {
    const { sock, socketId } = await srv.rawConnected();
    sock.send({ event: 'pusher:subscribe', data: { channel: name, auth: sdk.authorizeChannel(socketId, name).auth } });
    await sock.next((m) => m.event === 'pusher_internal:subscription_succeeded', { what: 'subscription_succeeded' });
    return sock;
  };
  const sender = await join();
  const receiver = await join();
  sender.send({ event: 'client-x', channel: name, data: { nonce: 'AAAA', ciphertext: 'AAAA' } });
  await sender.next((m) => m.event === 'pusher:error', { what: 'pusher:error for a client event on an encrypted channel' });
  await sleep(300);
  assert.ok(!receiver.messages.some((m) => m.event === 'client-x'), 'the client event must not be relayed');
});
