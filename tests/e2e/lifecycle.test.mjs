// The process itself: heartbeats, config errors, graceful shutdown. Each test starts its own
// server, since these tests change server-level settings or stop it. In cluster mode that
// server is an extra edge-gateway joined to the running cluster (startServer in harness.mjs),
// and the config errors are checked on the edge-gateway binary.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BIN,
  HOST,
  MAIN_APP,
  T,
  parseData,
  rawSocket,
  serverEnv,
  startServer,
  withTimeout,
} from './harness.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function server(opts) {
  const s = await startServer({ name: 'lifecycle', ...opts });
  cleanups.push(() => s.stop());
  return s;
}

function raw(s, key = MAIN_APP.key) {
  const sock = rawSocket(`ws://${HOST}:${s.port}/app/${key}?protocol=7&client=js&version=8.6.0`);
  cleanups.push(async () => sock.close());
  return sock;
}

test('after activity_timeout of silence the server sends pusher:ping, then closes with 4201', T, async () => {
  const s = await server({ activityTimeoutSecs: 1, server: { pong_timeout_secs: 1 } });
  const sock = raw(s);
  const hello = await sock.next((m) => m.event === 'pusher:connection_established', { what: 'handshake' });
  assert.equal(parseData(hello).activity_timeout, 1);
  const started = Date.now();
  await sock.next((m) => m.event === 'pusher:ping', { timeout: 4000, what: 'pusher:ping after 1 s of silence' });
  const closed = await sock.closed(5000);
  assert.equal(closed.code, 4201);
  assert.ok(Date.now() - started < 6000);
});

test('a client that answers pusher:ping with pusher:pong stays connected', T, async () => {
  const s = await server({ activityTimeoutSecs: 1, server: { pong_timeout_secs: 1 } });
  const sock = raw(s);
  await sock.next((m) => m.event === 'pusher:connection_established', { what: 'handshake' });
  sock.ws.on('message', (buf) => {
    if (JSON.parse(buf.toString()).event === 'pusher:ping') sock.send({ event: 'pusher:pong', data: {} });
  });
  await new Promise((resolve) => setTimeout(resolve, 3500));
  assert.equal(sock.closeInfo, null, `closed: ${JSON.stringify(sock.closeInfo)}`);
  assert.ok(sock.messages.filter((m) => m.event === 'pusher:ping').length >= 1);
});

test('WebSocket ping frames are answered with pong frames', T, async () => {
  const s = await server();
  const sock = raw(s);
  await sock.next((m) => m.event === 'pusher:connection_established', { what: 'handshake' });
  const pong = new Promise((resolve) => sock.ws.once('pong', (data) => resolve(data.toString())));
  sock.ws.ping('are-you-there');
  assert.equal(await withTimeout(pong, 5000, 'a pong frame'), 'are-you-there');
});

test('SIGTERM closes clients with 4200 and the process exits', T, async () => {
  const s = await server({ server: { shutdown_grace_secs: 2 } });
  const sock = raw(s);
  await sock.next((m) => m.event === 'pusher:connection_established', { what: 'handshake' });
  s.proc.kill('SIGTERM');
  const closed = await sock.closed(5000);
  assert.equal(closed.code, 4200);
  const exit = await withTimeout(
    new Promise((resolve) => {
      if (s.exited()) resolve(s.exited());
      else s.proc.once('exit', (code, signal) => resolve({ code, signal }));
    }),
    8000,
    'process exit after SIGTERM',
  );
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
});

async function runWithConfig(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-e2e-badcfg-'));
  const file = path.join(dir, 'bad.toml');
  fs.writeFileSync(file, text);
  const proc = spawn(BIN, ['--config', file], {
    env: serverEnv({ SWITCHYARD_PORT: '0', SWITCHYARD_HOST: HOST }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  cleanups.push(async () => proc.kill('SIGKILL'));
  const exit = await withTimeout(
    new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
    5000,
    'the server to refuse a bad config',
  );
  return { ...exit, output };
}

test('a bad config file is fatal: exit 64 with every problem reported', T, async () => {
  const { code, output } = await runWithConfig(
    [
      '[server]',
      'activity_timeout_secs = "soon"',
      '',
      '[[apps]]',
      'id = "a"',
      'key = "k"',
      '',
    ].join('\n'),
  );
  assert.equal(code, 64, output);
  assert.ok(output.length > 0, 'the error is reported');
});

test('a config with two problems reports both', T, async () => {
  const apps = [
    { ...MAIN_APP },
    { ...MAIN_APP, secret: 'other' }, // duplicate id and key
    { id: 'no-secret', key: 'no-secret-key' },
  ];
  const text = apps
    .map((a) => ['[[apps]]', ...Object.entries(a).map(([k, v]) => `${k} = ${JSON.stringify(v)}`)].join('\n'))
    .join('\n\n');
  const { code, output } = await runWithConfig(text);
  assert.equal(code, 64, output);
  assert.match(output, /no-secret|apps\[2\]/, 'the app without a secret is identified');
  assert.match(output, /secret/, 'the missing secret is reported');
  assert.match(output, /app-id|app-key|duplicate/i, 'the duplicate app is reported');
});
