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
//
// This file only re-exports the modules under harness/, so tests import everything from here:
//   harness/pusher.mjs      pusher-js, the Node `pusher` SDK, ws (and the pusher-js timer fix)
//   harness/env.mjs         paths, binary, cluster-mode endpoints, apps, bounds, run-unique names
//   harness/util.mjs        sleep, withTimeout, eventually, httpsStatus, freePort
//   harness/server.mjs      configToml, startServer
//   harness/waits.mjs       bounded waits on pusher-js emitters; expectStatus for SDK calls
//   harness/raw-socket.mjs  a raw WebSocket client; parseData
//   harness/use-server.mjs  useServer: one server per test file and its clients

export * from './harness/pusher.mjs';
export * from './harness/env.mjs';
export * from './harness/util.mjs';
export * from './harness/server.mjs';
export * from './harness/waits.mjs';
export * from './harness/raw-socket.mjs';
export * from './harness/use-server.mjs';
