// HTTP trigger throughput: RATE signed POST /apps/{id}/events per second for DURATION, to a
// channel with SUBSCRIBERS listeners (default none: the API path alone).
//   k6 run -e RATE=500 -e DURATION=30s loadtest/k6/trigger.js
import ws from 'k6/ws';
import { check } from 'k6';
import { frame, trigger, wsUrl } from './pusher.js';

const RATE = Number(__ENV.RATE || 500);
const DURATION = __ENV.DURATION || '30s';
const SUBSCRIBERS = Number(__ENV.SUBSCRIBERS || 0);
const CHANNEL = __ENV.CHANNEL || 'k6-trigger';

const scenarios = {
  triggers: {
    executor: 'constant-arrival-rate',
    exec: 'publisher',
    rate: RATE,
    timeUnit: '1s',
    duration: DURATION,
    preAllocatedVUs: 20,
    maxVUs: 200,
  },
};
if (SUBSCRIBERS > 0) {
  scenarios.listeners = {
    executor: 'constant-vus',
    exec: 'listener',
    vus: SUBSCRIBERS,
    duration: DURATION,
  };
}

export const options = {
  scenarios,
  thresholds: {
    'http_req_duration{name:trigger}': ['p(95)<50', 'p(99)<100'],
    'http_req_failed{name:trigger}': ['rate<0.01'],
    // Fewer iterations than asked means the server (or k6) could not keep up.
    dropped_iterations: [`count<${Math.ceil(RATE * parseDuration(DURATION) * 0.01)}`],
  },
};

function parseDuration(d) {
  const m = /^(\d+)(s|m)$/.exec(d);
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : 30;
}

export function publisher() {
  const res = trigger(CHANNEL, 'load', { n: __ITER, pad: 'x'.repeat(64) });
  check(res, { 'trigger 200': (r) => r.status === 200 });
}

export function listener() {
  ws.connect(wsUrl(), {}, (socket) => {
    socket.on('open', () => socket.send(frame('pusher:subscribe', { channel: CHANNEL })));
    socket.setTimeout(() => socket.close(), 60 * 60 * 1000);
  });
}
