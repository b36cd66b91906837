// Connection ramp: ramps to TARGET concurrent WebSocket clients over RAMP, holds for HOLD,
// ramps down. Each client waits for connection_established, subscribes to one of CHANNELS
// public channels, pings every 10 s and stays until its VU is ramped down.
//   k6 run -e TARGET=2000 -e RAMP=30s -e HOLD=30s loadtest/k6/ramp.js
import ws from 'k6/ws';
import { check } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { frame, wsUrl } from './pusher.js';

const TARGET = Number(__ENV.TARGET || 1000);
const RAMP = __ENV.RAMP || '20s';
const HOLD = __ENV.HOLD || '20s';
const CHANNELS = Number(__ENV.CHANNELS || 100);

const established = new Trend('ws_established', true);
const subscribed = new Trend('ws_subscribed', true);
const connectOk = new Rate('ws_connect_ok');

export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: RAMP, target: TARGET },
        { duration: HOLD, target: TARGET },
        { duration: '5s', target: 0 },
      ],
      gracefulRampDown: '5s',
    },
  },
  thresholds: {
    ws_established: ['p(95)<500', 'p(99)<1000'],
    ws_subscribed: ['p(95)<500'],
    ws_connect_ok: ['rate>0.99'],
  },
};

export default function () {
  const start = Date.now();
  let ok = false; // set once this client's outcome is recorded
  const res = ws.connect(wsUrl(), {}, (socket) => {
    let subscribeSent = 0;
    socket.on('message', (raw) => {
      const msg = JSON.parse(raw);
      if (msg.event === 'pusher:connection_established') {
        established.add(Date.now() - start);
        subscribeSent = Date.now();
        socket.send(frame('pusher:subscribe', { channel: `k6-ramp-${__VU % CHANNELS}` }));
      } else if (msg.event === 'pusher_internal:subscription_succeeded') {
        subscribed.add(Date.now() - subscribeSent);
        ok = true;
        connectOk.add(true);
      }
    });
    socket.on('error', () => {
      if (!ok) connectOk.add(false);
      ok = true;
    });
    socket.setTimeout(() => {
      if (!ok) connectOk.add(false);
      ok = true;
    }, 5000);
    socket.setInterval(() => socket.send(frame('pusher:ping', {})), 10000);
    // The VU holds its connection until the executor ramps it down (k6 then ends the socket).
    socket.setTimeout(() => socket.close(), 10 * 60 * 1000);
  });
  check(res, { 'status 101': (r) => r && r.status === 101 });
}
