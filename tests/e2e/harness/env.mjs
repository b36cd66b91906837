// The e2e harness's settings: paths, the binary to start, cluster-mode endpoints, the apps the
// server is configured with, the bounds on waits and tests, and names unique to this run.

import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
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

/**
 * A fresh channel name, so tests never see each other's channels, nor (in a cluster, whose
 * Redis state persists) those of earlier runs.
 */
let seq = 0;
export function uniq(prefix) {
  seq += 1;
  return `${prefix}${RUN_ID}-${seq}`;
}
