// Per-test-file server and client bookkeeping: useServer() starts one server for a test file (or
// uses the running cluster), creates pusher-js, SDK and raw clients against it and closes them
// after each test.

import { after, afterEach, before } from 'node:test';

import {
  CLUSTER,
  CLUSTER_API,
  CLUSTER_EDGE_PORTS,
  CLUSTER_LOGS,
  DEFAULT_APPS,
  HOST,
  MAIN_APP,
  WAIT_MS,
} from './env.mjs';
import { PusherClient, PusherServer } from './pusher.mjs';
import { parseData, rawSocket } from './raw-socket.mjs';
import { startServer } from './server.mjs';
import { sleep } from './util.mjs';
import { waitForState } from './waits.mjs';

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
