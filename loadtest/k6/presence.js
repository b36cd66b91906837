// Presence churn: each VU keeps one connection and repeatedly subscribes to one of CHANNELS
// presence channels (auth signed in the script, as an auth endpoint would), waits for
// subscription_succeeded, holds it HOLD_MS, unsubscribes. Measures subscribe round trips and
// checks that the member list contains the subscriber itself.
//   k6 run -e VUS=50 -e CHANNELS=10 -e DURATION=30s loadtest/k6/presence.js
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { channelAuth, frame, wsUrl } from './pusher.js';

const VUS = Number(__ENV.VUS || 50);
const CHANNELS = Number(__ENV.CHANNELS || 10);
const DURATION = __ENV.DURATION || '30s';
const HOLD_MS = Number(__ENV.HOLD_MS || 200);

const subscribeTime = new Trend('presence_subscribe', true);
const subscribeOk = new Rate('presence_subscribe_ok');
const memberEvents = new Counter('presence_member_events');

export const options = {
  scenarios: {
    churn: { executor: 'constant-vus', vus: VUS, duration: DURATION },
  },
  thresholds: {
    presence_subscribe: ['p(95)<100', 'p(99)<250'],
    presence_subscribe_ok: ['rate>0.99'],
  },
};

function parseDuration(d) {
  const m = /^(\d+)(s|m)$/.exec(d);
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : 30;
}

export default function () {
  const userId = `k6-${__VU}`;
  ws.connect(wsUrl(), {}, (socket) => {
    let socketId = null;
    let channel = null;
    let sentAt = 0;
    const next = () => {
      channel = `presence-k6-${Math.floor(Math.random() * CHANNELS)}`;
      const channelData = JSON.stringify({ user_id: userId, user_info: { vu: __VU } });
      const auth = channelAuth(socketId, channel, channelData);
      sentAt = Date.now();
      socket.send(frame('pusher:subscribe', { channel, auth, channel_data: channelData }));
      // A subscription that gets no answer counts as a failure before the next attempt.
      socket.setTimeout(() => {
        if (sentAt !== 0) {
          subscribeOk.add(false);
          sentAt = 0;
          next();
        }
      }, 5000);
    };
    socket.on('message', (raw) => {
      const msg = JSON.parse(raw);
      if (msg.event === 'pusher:connection_established') {
        socketId = JSON.parse(msg.data).socket_id;
        next();
      } else if (msg.event === 'pusher_internal:subscription_succeeded' && msg.channel === channel) {
        if (sentAt === 0) return;
        subscribeTime.add(Date.now() - sentAt);
        sentAt = 0;
        const data = JSON.parse(msg.data);
        const ok = check(data, {
          'member list has me': (d) => !d.presence || d.presence.ids.indexOf(userId) >= 0,
        });
        subscribeOk.add(ok);
        socket.setTimeout(() => {
          socket.send(frame('pusher:unsubscribe', { channel }));
          next();
        }, HOLD_MS);
      } else if (msg.event === 'pusher:subscription_error' || msg.event === 'pusher:error') {
        subscribeOk.add(false);
        sentAt = 0;
      } else if (msg.event && msg.event.indexOf('pusher_internal:member_') === 0) {
        memberEvents.add(1);
      }
    });
    socket.setTimeout(() => socket.close(), parseDuration(DURATION) * 1000);
  });
}
