// wss:// and https:// straight to Switchyard (rustls): pusher-js with forceTLS and the Node SDK
// with useTLS, and a certificate renewed on disk taking over without a restart while the open
// connection keeps working.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';

import { HOST, MAIN_APP, PusherClient, PusherServer, REPO, embeddedOnly, startServer, waitFor, waitForState } from './harness.mjs';

const FIXTURES = path.join(REPO, 'listener', 'tests', 'fixtures');
const CA = fs.readFileSync(path.join(FIXTURES, 'ca.pem'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-e2e-tls-'));
const certFile = path.join(dir, 'cert.pem');
const keyFile = path.join(dir, 'key.pem');

/** Puts fixture pair `which` in place the way certificate managers do: write, then rename. */
function install(which) {
  for (const [from, to] of [[`cert-${which}.pem`, certFile], [`key-${which}.pem`, keyFile]]) {
    fs.copyFileSync(path.join(FIXTURES, from), `${to}.tmp`);
    fs.renameSync(`${to}.tmp`, to);
  }
}

function fingerprint(which) {
  return new crypto.X509Certificate(fs.readFileSync(path.join(FIXTURES, `cert-${which}.pem`))).fingerprint256;
}

/** The certificate a new, fully verified TLS connection is served. */
function servedFingerprint(port) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: HOST, port, ca: CA, servername: 'localhost' }, () => {
      const fp = sock.getPeerX509Certificate().fingerprint256;
      sock.end();
      resolve(fp);
    });
    sock.setTimeout(2000, () => sock.destroy(new Error('TLS handshake timed out')));
    sock.on('error', reject);
  });
}

let srv;
before(async () => {
  if (process.env.SWITCHYARD_CLUSTER === '1') return;
  install('a');
  srv = await startServer({
    name: 'tls',
    apps: [MAIN_APP],
    server: { tls_cert_file: certFile, tls_key_file: keyFile, tls_reload_secs: 1 },
    tlsCa: CA,
  });
});
after(async () => {
  await srv?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('pusher-js over wss with forceTLS, the Node SDK over https, and a certificate renewal', embeddedOnly('the local cluster terminates no TLS', { timeout: 30_000 }), async () => {
  assert.equal(await servedFingerprint(srv.port), fingerprint('a'), 'verified against the test CA');

  // pusher-js's Node transport takes no CA option; the certificate itself was verified above.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const client = new PusherClient(MAIN_APP.key, {
    wsHost: HOST,
    wssPort: srv.port,
    forceTLS: true,
    enabledTransports: ['ws'],
    disableStats: true,
    cluster: 'mt1',
  });
  try {
    await waitForState(client, 'connected');
    const channel = client.subscribe('tls-news');
    await waitFor(channel, 'pusher:subscription_succeeded');
    const sdk = new PusherServer({
      appId: MAIN_APP.id,
      key: MAIN_APP.key,
      secret: MAIN_APP.secret,
      host: HOST,
      port: String(srv.port),
      useTLS: true,
      agent: new https.Agent({ ca: CA, servername: 'localhost' }),
    });
    const got = waitFor(channel, 'greeting');
    const res = await sdk.trigger('tls-news', 'greeting', { n: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual((await got).data, { n: 1 });

    // Renewed on disk: new connections get the new certificate within the reload interval.
    install('b');
    const deadline = Date.now() + 5000;
    while ((await servedFingerprint(srv.port)) !== fingerprint('b')) {
      assert.ok(Date.now() < deadline, 'the renewed certificate was never served');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The connection made before the renewal still works.
    const again = waitFor(channel, 'greeting');
    await sdk.trigger('tls-news', 'greeting', { n: 2 });
    assert.deepEqual((await again).data, { n: 2 });
    assert.equal(client.connection.state, 'connected');
  } finally {
    client.disconnect();
    delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  }
});
