// Small utilities of the e2e harness: sleeping, bounded waits, retrying assertions, probing an
// https endpoint and finding a free port.

import https from 'node:https';
import net from 'node:net';

import { HOST } from './env.mjs';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects after `ms` with a message naming what was awaited. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Retries an async assertion until it passes or `timeout` elapses, then rethrows its last
 * error. For state that the server may legitimately update a moment later (counts reported
 * by edges in batches).
 */
export async function eventually(fn, { timeout = 3000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(interval);
    }
  }
}

/** The status of an https GET that verifies the server against `ca` (1 s bound). */
export function httpsStatus(opts) {
  return new Promise((resolve, reject) => {
    const req = https.get({ ...opts, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy(new Error('https probe timed out')));
    req.on('error', reject);
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}
