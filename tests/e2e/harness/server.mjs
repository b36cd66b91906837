// The server process of the e2e harness: writes the server's TOML config, starts the binary (or,
// in cluster mode, an extra edge-gateway) on a free port and waits until it answers.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { BIN, CLUSTER, CLUSTER_CONFIG, DEFAULT_APPS, HOST, serverEnv } from './env.mjs';
import { freePort, httpsStatus, sleep, withTimeout } from './util.mjs';

function toTomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `[${v.map(toTomlValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)} = ${toTomlValue(x)}`)
      .join(', ')} }`;
  }
  throw new Error(`cannot write ${typeof v} as TOML`);
}

/**
 * The server's TOML config. `server` adds [server] keys; an app's `webhooks` (a list of
 * tables) becomes [[apps.webhooks]] sections.
 */
export function configToml({ apps, activityTimeoutSecs = 120, port = 6001, server = {} }) {
  const lines = [
    '[server]',
    `host = ${toTomlValue(HOST)}`,
    `port = ${port}`,
    `activity_timeout_secs = ${activityTimeoutSecs}`,
    ...Object.entries(server).map(([k, v]) => `${k} = ${toTomlValue(v)}`),
    '',
  ];
  for (const { webhooks = [], ...app } of apps) {
    lines.push('[[apps]]');
    for (const [k, v] of Object.entries(app)) lines.push(`${k} = ${toTomlValue(v)}`);
    lines.push('');
    for (const hook of webhooks) {
      lines.push('[[apps.webhooks]]');
      for (const [k, v] of Object.entries(hook)) lines.push(`${k} = ${toTomlValue(v)}`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

function tail(file, bytes = 4000) {
  try {
    const buf = fs.readFileSync(file);
    return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// The server process

/**
 * Starts the server binary with a generated config on a free port and waits until GET /up is
 * 200. Returns { port, host, apps, logPath, configPath, stop() }.
 *
 * In cluster mode it starts an extra edge-gateway on a free port instead, joined to the
 * running cluster (its config, `[server]` settings from `server`/`activityTimeoutSecs` as
 * SWITCHYARD_* overrides); `apps` are then the cluster's.
 */
export async function startServer({ apps = DEFAULT_APPS, name = 'e2e', activityTimeoutSecs = 120, server = {}, tlsCa = null } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(
      CLUSTER
        ? `edge-gateway not found at ${BIN}: build it or set SWITCHYARD_BIN_DIR`
        : `server binary not found at ${BIN}: build it or set SWITCHYARD_BIN`,
    );
  }
  const port = await freePort();
  let configPath;
  let env;
  if (CLUSTER) {
    configPath = CLUSTER_CONFIG;
    env = { SWITCHYARD_EDGE_PORT: String(port), SWITCHYARD_ACTIVITY_TIMEOUT_SECS: String(activityTimeoutSecs) };
    for (const [k, v] of Object.entries(server)) env[`SWITCHYARD_${k.toUpperCase()}`] = String(v);
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-e2e-'));
    configPath = path.join(dir, 'switchyard.toml');
    // The file keeps the default port; SWITCHYARD_PORT must override it.
    fs.writeFileSync(configPath, configToml({ apps, activityTimeoutSecs, port: 6001, server }));
    env = { SWITCHYARD_PORT: String(port), SWITCHYARD_HOST: HOST };
  }
  const logPath = path.join(os.tmpdir(), `switchyard-e2e-${name}-${port}.log`);
  const logFd = fs.openSync(logPath, 'w');
  const proc = spawn(BIN, ['--config', configPath], {
    env: serverEnv({ ...env, RUST_LOG: process.env.RUST_LOG ?? 'info' }),
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    proc.on('error', (err) => {
      exited = { error: err };
      resolve(exited);
    });
  });

  const stop = async () => {
    if (exited) return;
    proc.kill('SIGTERM');
    const done = await withTimeout(exitPromise, 5000, 'server exit after SIGTERM').catch(() => null);
    if (!done) {
      proc.kill('SIGKILL');
      await withTimeout(exitPromise, 2000, 'server exit after SIGKILL').catch(() => null);
    }
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      throw new Error(
        `server exited before /up answered (${JSON.stringify(exited)}); log ${logPath}:\n${tail(logPath)}`,
      );
    }
    try {
      // An edge is usable once /ready (its first heartbeat reached core); the embedded server
      // at /up.
      const probePath = CLUSTER ? '/ready' : '/up';
      // A TLS server is probed over https, trusting the test CA (fetch cannot be given one).
      const status = tlsCa
        ? await httpsStatus({ host: HOST, port, path: probePath, ca: tlsCa, servername: 'localhost' })
        : (await fetch(`http://${HOST}:${port}${probePath}`, { signal: AbortSignal.timeout(1000) })).status;
      if (status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `server did not answer GET ${CLUSTER ? '/ready' : '/up'} with 200 within 15 s; log ${logPath}:\n${tail(logPath)}`,
      );
    }
    await sleep(100);
  }
  return { port, host: HOST, apps, logPath, configPath, proc, stop, exited: () => exited };
}
