// Test harness for Switchyard's end-to-end tests: starts the real server binary for one test
// file, creates real pusher-js clients and Node `pusher` SDK clients against it, and gives
// bounded waits so that no test can hang.
//
// Usage in a test file:
//   const srv = useServer();               // registers before/after/afterEach hooks
//   test('…', T, async () => { const c = await srv.connect(); … });
//
// Cluster mode (SWITCHYARD_CLUSTER=1): no server is started. The suite uses the running local
// cluster (deploy/local/cluster up): REST through HAProxy, WebSocket clients straight to the
// edges, alternating between them per client created, so every multi-client test crosses
// edges. The apps a test file lists must then exist in deploy/local/cluster.toml.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before } from 'node:test';

// The Node build of pusher-js (package "main") bundles tweetnacl, so it supports
// private-encrypted- channels. 'pusher-js/with-encryption' is the *web* build and throws
// `self is not defined` under Node, so it must not be used here.
import PusherClient from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';

export { PusherClient, PusherServer, WebSocket };

// The faye-websocket client bundled in pusher-js arms a 30 s close timer whenever close() is
// called, even on a socket the server has already closed, and never clears it then (pusher-js
// does exactly that after a 4xxx 'refused' close such as 4009). The timer does nothing useful
// but keeps the test process alive for 30 s, so unref it. Only timers created from pusher-js
// code are touched.
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = function setTimeoutUnrefPusherClose(fn, ms, ...rest) {
  const timer = realSetTimeout(fn, ms, ...rest);
  if (ms === 30_000 && /node_modules[\\/]pusher-js[\\/]/.test(new Error().stack ?? '')) timer.unref?.();
  return timer;
};

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const HOST = '127.0.0.1';

/** Cluster mode: test against the running local cluster instead of a server of our own. */
export const CLUSTER = process.env.SWITCHYARD_CLUSTER === '1';
/** Cluster mode: the HTTP API (HAProxy by default; the API itself is on 6201). */
export const CLUSTER_API = new URL(process.env.SWITCHYARD_E2E_API || `http://${HOST}:6001`);
/** Cluster mode: the edges' ports; clients take them in turn. */
export const CLUSTER_EDGE_PORTS = (process.env.SWITCHYARD_E2E_EDGES || '6101,6102')
  .split(',')
  .map((p) => Number(p.trim()));
/** Cluster mode: where webhooks.test.mjs listens; deploy/local/cluster.toml points its apps here. */
export const CLUSTER_WEBHOOK_PORT = Number(process.env.SWITCHYARD_E2E_WEBHOOK_PORT || 6501);
/** Cluster mode: the config the cluster runs with, and the directory of its binaries and logs. */
export const CLUSTER_CONFIG =
  process.env.SWITCHYARD_CLUSTER_CONFIG || path.join(REPO, 'deploy', 'local', 'cluster.toml');
export const CLUSTER_BIN_DIR = process.env.SWITCHYARD_BIN_DIR || path.join(REPO, 'target', 'debug');
export const CLUSTER_LOGS = path.join(REPO, 'deploy', 'local', '.run');

/**
 * The environment for a server process the tests start: ours minus the test tooling's own
 * variables. Servers read SWITCHYARD_<SECTION>_<KEY> as config overrides, and
 * SWITCHYARD_CLUSTER_CONFIG would be taken for a `config` key in [cluster].
 */
export function serverEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.SWITCHYARD_CLUSTER_CONFIG;
  return env;
}

/**
 * The binary tests start themselves: the embedded server, or in cluster mode an extra
 * edge-gateway joined to the running cluster (only lifecycle.test.mjs starts one).
 */
export const BIN = CLUSTER
  ? path.join(CLUSTER_BIN_DIR, 'edge-gateway')
  : process.env.SWITCHYARD_BIN || path.join(REPO, 'target', 'debug', 'switchyard');

/**
 * Unique to this test process. Names that outlive a test in a cluster (channels, user ids)
 * carry it, since the cluster's Redis keeps state between runs.
 */
export const RUN_ID = crypto.randomBytes(4).toString('hex');

/** A user id unique to this run: `name-<run id>`. */
export function uid(name) {
  return `${name}-${RUN_ID}`;
}

/** Test options that skip the test in cluster mode, saying why. */
export function embeddedOnly(reason, opts = T) {
  return CLUSTER ? { ...opts, skip: `cluster mode: ${reason}` } : opts;
}

/** Default per-wait bound. */
export const WAIT_MS = 5000;
/** Options for every test(): a hard bound on a single test. */
export const T = { timeout: 20_000 };

export const MAIN_APP = {
  id: 'app-id',
  key: 'app-key',
  secret: 'app-secret',
  enable_client_messages: true,
  enable_subscription_count: true,
};
export const PY_APP = {
  id: '12345',
  key: 'py-key',
  secret: 'py-secret',
  enable_client_messages: true,
};
export const DEFAULT_APPS = [MAIN_APP, PY_APP];

// ---------------------------------------------------------------------------------------------
// Small utilities

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

// ---------------------------------------------------------------------------------------------
// Waiting on pusher-js emitters (anything with bind/unbind: channels, connection, user)

/**
 * Resolves with { data, metadata } for the next `event` on `target` that passes `filter`.
 * Always bounded.
 */
export function waitFor(target, event, { timeout = WAIT_MS, filter = () => true, what } = {}) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (data, metadata) => {
      if (filter(data, metadata)) resolve({ data, metadata });
    };
    target.bind(event, handler);
  });
  return withTimeout(p, timeout, what ?? `event '${event}'${target.name ? ` on ${target.name}` : ''}`).finally(
    () => target.unbind(event, handler),
  );
}

/** Records every `event` on `target`; `until(pred)` waits (bounded) for a matching one. */
export function record(target, event) {
  const events = [];
  const waiters = new Set();
  const handler = (data, metadata) => {
    const item = { data, metadata };
    events.push(item);
    for (const w of waiters) w();
  };
  target.bind(event, handler);
  const label = `'${event}'${target.name ? ` on ${target.name}` : ''}`;
  return {
    events,
    get data() {
      return events.map((e) => e.data);
    },
    /** Waits until `pred(events)` is true. */
    until(pred, { timeout = WAIT_MS, what } = {}) {
      let check;
      const p = new Promise((resolve) => {
        check = () => {
          if (pred(events)) resolve(events);
        };
        waiters.add(check);
        check();
      });
      return withTimeout(p, timeout, what ?? `${label} (have ${JSON.stringify(events.map((e) => e.data))})`).finally(
        () => waiters.delete(check),
      );
    },
    /** Waits for at least n events. */
    count(n, opts) {
      return this.until((ev) => ev.length >= n, opts);
    },
    /** Waits for an event whose data passes `filter`. */
    some(filter, opts) {
      return this.until((ev) => ev.some((e) => filter(e.data, e.metadata)), opts).then((ev) =>
        ev.find((e) => filter(e.data, e.metadata)),
      );
    },
    stop() {
      target.unbind(event, handler);
    },
  };
}

/** The close code in a pusher-js connection 'error' event, wherever pusher-js put it. */
export function errorCode(e) {
  return e?.data?.code ?? e?.error?.data?.code;
}

export function waitForState(client, states, { timeout = WAIT_MS } = {}) {
  const wanted = Array.isArray(states) ? states : [states];
  if (wanted.includes(client.connection.state)) return Promise.resolve(client.connection.state);
  return waitFor(client.connection, 'state_change', {
    timeout,
    filter: (s) => wanted.includes(s.current),
    what: `connection state ${wanted.join('|')} (now ${client.connection.state})`,
  }).then(({ data }) => data.current);
}

/** Subscribes and waits for pusher:subscription_succeeded; rejects on pusher:subscription_error. */
export async function subscribe(client, channelName, { timeout = WAIT_MS } = {}) {
  const channel = client.subscribe(channelName);
  let onError;
  const failed = new Promise((_, reject) => {
    onError = (err) => reject(new Error(`subscription_error on ${channelName}: ${JSON.stringify(err)}`));
    channel.bind('pusher:subscription_error', onError);
  });
  try {
    const { data } = await Promise.race([
      waitFor(channel, 'pusher:subscription_succeeded', { timeout, what: `subscription_succeeded on ${channelName}` }),
      failed,
    ]);
    return { channel, data };
  } finally {
    channel.unbind('pusher:subscription_error', onError);
  }
}

/** Asserts that a Node SDK call rejects with a RequestError of the given status. */
export async function expectStatus(promise, status) {
  try {
    const res = await promise;
    const body = await res.text();
    throw new Error(`expected HTTP ${status}, got ${res.status} ${body}`);
  } catch (err) {
    if (err && err.name === 'PusherRequestError') {
      if (err.status !== status) {
        throw new Error(`expected HTTP ${status}, got ${err.status ?? err.message} ${err.body ?? ''}`);
      }
      return err;
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// A raw WebSocket client, for what pusher-js hides (close codes, exact frames)

export function rawSocket(url, { timeout = WAIT_MS, headers } = {}) {
  const ws = new WebSocket(url, headers ? { headers } : undefined);
  const messages = [];
  const waiters = new Set();
  let closeInfo = null;
  const notify = () => {
    for (const w of waiters) w();
  };
  ws.on('message', (buf) => {
    let msg;
    try {
      msg = JSON.parse(buf.toString());
    } catch {
      msg = { unparsable: buf.toString() };
    }
    messages.push(msg);
    notify();
  });
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      notify();
      resolve(closeInfo);
    });
  });
  ws.on('error', () => {
    // the close handler reports what matters
  });
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} instead of upgrade`)));
    ws.once('close', () => reject(new Error('closed before open')));
  });
  opened.catch(() => {});
  return {
    ws,
    messages,
    opened: withTimeout(opened, timeout, `websocket open ${url}`),
    /** The close {code, reason}, bounded. */
    closed: (ms = timeout) => withTimeout(closed, ms, `websocket close on ${url}`),
    get closeInfo() {
      return closeInfo;
    },
    send(obj) {
      ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
    },
    /** Waits for a message with pred(msg) true, among those received so far or later. */
    next(pred, { timeout: ms = timeout, what = 'matching message' } = {}) {
      let check;
      const p = new Promise((resolve, reject) => {
        check = () => {
          const m = messages.find(pred);
          if (m) resolve(m);
          else if (closeInfo) reject(new Error(`socket closed (${JSON.stringify(closeInfo)}) while waiting for ${what}; got ${JSON.stringify(messages)}`));
        };
        waiters.add(check);
        check();
      });
      return withTimeout(p, ms, `${what}; got ${JSON.stringify(messages)}`).finally(() => waiters.delete(check));
    },
    close() {
      try {
        ws.terminate();
      } catch {
        // already gone
      }
    },
  };
}

/** Parses a server→client `data` field, which must be a JSON string. */
export function parseData(msg) {
  if (typeof msg.data !== 'string') {
    throw new Error(`server→client data must be a JSON string, got ${JSON.stringify(msg.data)}`);
  }
  return JSON.parse(msg.data);
}

// ---------------------------------------------------------------------------------------------
// Per-test-file server and client bookkeeping

let edgeTurn = 0;
/** Cluster mode: the next edge's port, in turn, so consecutive clients land on different edges. */
export function nextEdgePort() {
  const port = CLUSTER_EDGE_PORTS[edgeTurn % CLUSTER_EDGE_PORTS.length];
  edgeTurn += 1;
  return port;
}

/** Cluster mode: fails unless the API and every edge answer GET /ready. */
async function checkCluster() {
  const targets = [
    [`${CLUSTER_API.origin}/ready`, 'the API (through HAProxy)'],
    ...CLUSTER_EDGE_PORTS.map((p) => [`http://${HOST}:${p}/ready`, `the edge on ${p}`]),
  ];
  for (const [url, what] of targets) {
    let status;
    try {
      status = (await fetch(url, { signal: AbortSignal.timeout(3000) })).status;
    } catch (err) {
      status = err.cause?.code ?? err.message;
    }
    if (status !== 200) {
      throw new Error(
        `SWITCHYARD_CLUSTER=1 but ${what} does not answer GET ${url} with 200 (${status}): ` +
          'start the cluster with deploy/local/cluster up',
      );
    }
  }
}

/**
 * Registers before/after/afterEach hooks that start one server for this test file, disconnect
 * every client after each test, and print the server log path when a test fails.
 *
 * opts.apps: the apps (a list, or a function returning one); opts.mainApp: the app that
 * sdk(), client(), connect(), wsUrl() and rawConnected() use by default (MAIN_APP).
 * In cluster mode no server is started: the apps must exist in the cluster's config, REST goes
 * to CLUSTER_API and every client created picks the next edge.
 */
export function useServer(opts = {}) {
  const clients = new Set();
  const raws = new Set();
  const mainApp = opts.mainApp ?? MAIN_APP;
  const ctx = {
    server: null,
    mainApp,
    /** Where the HTTP API is: the server's port, or in cluster mode CLUSTER_API's. */
    get port() {
      return ctx.server.port;
    },
    get apps() {
      return ctx.server.apps;
    },
    /** The port a new WebSocket client connects to: the server's, or the next edge's. */
    wsPort() {
      return CLUSTER ? nextEdgePort() : ctx.server.port;
    },
    app(id = mainApp.id) {
      const app = ctx.server.apps.find((a) => a.id === id);
      if (!app) throw new Error(`no app ${id} in the config`);
      return app;
    },

    /** A Node `pusher` SDK client for an app; `overrides` replace any option. */
    sdk(appId = mainApp.id, overrides = {}) {
      const app = ctx.apps.find((a) => a.id === appId) ?? mainApp;
      return new PusherServer({
        appId: app.id,
        key: app.key,
        secret: app.secret,
        host: ctx.server.host,
        port: String(ctx.port),
        useTLS: false,
        timeout: WAIT_MS,
        ...overrides,
      });
    },

    /**
     * A pusher-js client. Channel auth and user signin are signed with the Node SDK.
     * opts.user: user_data for signin ({id, ...}); opts.presence: presence channel_data
     * ({user_id, user_info}); opts.tamperAuth(auth, params): rewrites the auth response;
     * opts.key: app key (default the app's); opts.sdk: SDK used for signing.
     */
    client(opts = {}) {
      const app = ctx.app(opts.appId ?? mainApp.id);
      const signer = opts.sdk ?? ctx.sdk(app.id);
      const client = new PusherClient(opts.key ?? app.key, {
        wsHost: HOST,
        wsPort: ctx.wsPort(),
        forceTLS: false,
        enabledTransports: ['ws'],
        disableStats: true,
        cluster: 'mt1',
        channelAuthorization: {
          customHandler: (params, callback) => {
            try {
              const presenceData = params.channelName.startsWith('presence-') ? opts.presence : undefined;
              let auth = signer.authorizeChannel(params.socketId, params.channelName, presenceData);
              if (opts.tamperAuth) auth = opts.tamperAuth(auth, params);
              callback(null, auth);
            } catch (err) {
              callback(err, null);
            }
          },
        },
        userAuthentication: {
          customHandler: (params, callback) => {
            try {
              callback(null, signer.authenticateUser(params.socketId, opts.user));
            } catch (err) {
              callback(err, null);
            }
          },
        },
        ...(opts.clientOptions ?? {}),
      });
      clients.add(client);
      return client;
    },

    /** A pusher-js client that has reached state 'connected'. */
    async connect(opts = {}) {
      const client = ctx.client(opts);
      await waitForState(client, 'connected', { what: 'connected' });
      return client;
    },

    /** ws://… URL for a raw socket (in cluster mode, on the next edge). */
    wsUrl(key = mainApp.key, query = '?protocol=7&client=js&version=8.6.0&flash=false') {
      return `ws://${HOST}:${ctx.wsPort()}/app/${key}${query}`;
    },

    /** A raw WebSocket, closed after the test. opts.headers: extra handshake headers. */
    raw(url, opts) {
      const sock = rawSocket(url, opts);
      raws.add(sock);
      return sock;
    },

    /** A raw socket that has received pusher:connection_established; resolves { sock, socketId }. */
    async rawConnected(key = mainApp.key, opts) {
      const sock = ctx.raw(ctx.wsUrl(key), opts);
      const msg = await sock.next((m) => m.event === 'pusher:connection_established', {
        what: 'pusher:connection_established',
      });
      return { sock, socketId: parseData(msg).socket_id };
    },

    /** http://… URL on the HTTP API. */
    url(p) {
      return `http://${ctx.server.host}:${ctx.port}${p}`;
    },

    disconnectAll() {
      for (const c of clients) {
        try {
          c.disconnect();
        } catch {
          // already gone
        }
      }
      clients.clear();
      for (const r of raws) r.close();
      raws.clear();
      // Drop the references pusher-js keeps for Pusher.ready().
      PusherClient.instances.length = 0;
    },
  };

  before(async () => {
    // opts.apps may be a function, for configs that depend on something made in an earlier
    // before() hook (a webhook receiver's port).
    const apps = (typeof opts.apps === 'function' ? await opts.apps() : opts.apps) ?? DEFAULT_APPS;
    if (CLUSTER) {
      await checkCluster();
      ctx.server = {
        cluster: true,
        host: CLUSTER_API.hostname,
        port: Number(CLUSTER_API.port || 80),
        apps,
        logPath: `${CLUSTER_LOGS}/*.log`,
        exited: () => null,
        stop: async () => {},
      };
      return;
    }
    ctx.server = await startServer({ ...opts, apps, name: opts.name ?? 'e2e' });
  });
  afterEach(async (t) => {
    ctx.disconnectAll();
    if (t.passed === false && ctx.server) {
      const ex = ctx.server.exited();
      process.stderr.write(
        `\n[e2e] '${t.name}' failed; ${ctx.server.cluster ? 'cluster logs' : 'server log'}: ${ctx.server.logPath}` +
          (ex ? ` (server exited: ${JSON.stringify(ex)})` : '') +
          '\n',
      );
    }
    // Let the server process the closes before the next test looks at occupancy.
    await sleep(50);
  });
  after(async () => {
    ctx.disconnectAll();
    if (ctx.server) await ctx.server.stop();
  });
  return ctx;
}

/**
 * A fresh channel name, so tests never see each other's channels, nor (in a cluster, whose
 * Redis state persists) those of earlier runs.
 */
let seq = 0;
export function uniq(prefix) {
  seq += 1;
  return `${prefix}${RUN_ID}-${seq}`;
}
