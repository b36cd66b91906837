// The client libraries the e2e tests use (pusher-js, the Node `pusher` SDK, ws), and a fix for a
// pusher-js timer that would keep the test process alive.

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
