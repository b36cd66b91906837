// Fan-out latency: SUBSCRIBERS WebSocket clients on one channel; a trigger loop posts RATE
// signed events/s whose data carries the send time; each subscriber records now - t.
//   k6 run -e SUBSCRIBERS=200 -e RATE=20 -e DURATION=30s loadtest/k6/fanout.js
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { frame, trigger, wsUrl } from './pusher.js';

const SUBSCRIBERS = Number(__ENV.SUBSCRIBERS || 200);
const RATE = Number(__ENV.RATE || 20);
const DURATION = __ENV.DURATION || '30s';
const WARMUP = Number(__ENV.WARMUP_SECS || 5); // subscribers connect before triggers start
const CHANNEL = __ENV.CHANNEL || 'k6-fanout';

const latency = new Trend('fanout_latency', true);
const delivered = new Counter('fanout_delivered');
const triggered = new Counter('fanout_triggered');

export const options = {
  scenarios: {
    // One long iteration per subscriber: it connects once and holds until the triggers end.
    subscribers: {
      executor: 'per-vu-iterations',
      exec: 'subscriber',
      vus: SUBSCRIBERS,
      iterations: 1,
      maxDuration: `${parseDuration(DURATION) + WARMUP + 10}s`,
    },
    triggers: {
      executor: 'constant-arrival-rate',
      exec: 'publisher',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      startTime: `${WARMUP}s`,
      preAllocatedVUs: 4,
      maxVUs: 20,
    },
  },
  thresholds: {
    // Date.now() has millisecond resolution, so latencies are whole milliseconds.
    fanout_latency: ['p(50)<50', 'p(99)<250'],
    // At most 1% of the expected deliveries (every event to every subscriber) lost.
    fanout_delivered: [`count>=${Math.floor(RATE * parseDuration(DURATION) * SUBSCRIBERS * 0.99)}`],
    'checks{check:subscribed}': ['rate>0.99'],
    'http_req_failed{name:trigger}': ['rate<0.01'],
  },
};

function parseDuration(d) {
  const m = /^(\d+)(s|m)$/.exec(d);
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : 30;
}

export function subscriber() {
  const holdMs = (parseDuration(DURATION) + WARMUP + 2) * 1000;
  ws.connect(wsUrl(), {}, (socket) => {
    let subscribed = false;
    socket.on('message', (raw) => {
      const msg = JSON.parse(raw);
      if (msg.event === 'pusher:connection_established') {
        socket.send(frame('pusher:subscribe', { channel: CHANNEL }));
      } else if (msg.event === 'pusher_internal:subscription_succeeded') {
        subscribed = true;
      } else if (msg.event === 'timed') {
        latency.add(Date.now() - JSON.parse(msg.data).t);
        delivered.add(1);
      }
    });
    socket.setTimeout(() => {
      check(subscribed, { subscribed: (s) => s }, { check: 'subscribed' });
      socket.close();
    }, holdMs);
  });
}

export function publisher() {
  const res = trigger(CHANNEL, 'timed', { t: Date.now() });
  check(res, { 'trigger 200': (r) => r.status === 200 });
  triggered.add(1);
}
