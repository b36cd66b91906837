// Webhooks, received by a local HTTP endpoint and checked with the Node SDK's WebHook class
// (the same check an application does). In cluster mode the endpoint listens on the fixed
// port deploy/local/cluster.toml sends these apps' webhooks to; POSTs left over from earlier
// runs may arrive there too, so assertions look only at this run's channels.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  CLUSTER,
  CLUSTER_WEBHOOK_PORT,
  DEFAULT_APPS,
  HOST,
  T,
  sleep,
  subscribe,
  uniq,
  useServer,
  waitFor,
  withTimeout,
} from './harness.mjs';

/**
 * An HTTP endpoint that records webhook POSTs per path; `failFirst[path] = { count, when }`
 * answers 500 to the first `count` POSTs at `path` whose raw body passes `when`.
 */
async function startReceiver() {
  const posts = [];
  const waiters = new Set();
  const failFirst = {};
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const fail = failFirst[req.url];
      if (fail && fail.count > 0 && fail.when(rawBody)) {
        fail.count -= 1;
        posts.push({ path: req.url, headers: req.headers, rawBody, answered: 500 });
        res.writeHead(500).end('try again');
      } else {
        posts.push({ path: req.url, headers: req.headers, rawBody, answered: 200 });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }
      for (const w of waiters) w();
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        CLUSTER
          ? new Error(`cannot listen on ${HOST}:${CLUSTER_WEBHOOK_PORT} for the cluster's webhooks: ${err.message}`)
          : err,
      ),
    );
    server.listen(CLUSTER ? CLUSTER_WEBHOOK_PORT : 0, HOST, resolve);
  });
  const { port } = server.address();
  return {
    posts,
    failFirst,
    url: (p) => `http://${HOST}:${port}${p}`,
    /** Every event delivered to `path` (from 2xx-answered POSTs), with its POST. */
    events(path) {
      return posts
        .filter((p) => p.path === path && p.answered === 200)
        .flatMap((p) => {
          try {
            return JSON.parse(p.rawBody).events.map((e) => ({ ...e, post: p }));
          } catch {
            return [];
          }
        });
    },
    /** Waits (bounded) until some event at `path` matches. */
    waitEvent(path, pred, { timeout = 8000, what = 'webhook event' } = {}) {
      let check;
      const p = new Promise((resolve) => {
        check = () => {
          const e = this.events(path).find(pred);
          if (e) resolve(e);
        };
        waiters.add(check);
        check();
      });
      return withTimeout(p, timeout, `${what}; got ${JSON.stringify(this.events(path).map(({ post, ...e }) => e))}`).finally(
        () => waiters.delete(check),
      );
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const receiver = await startReceiver();
after(() => receiver.close());

const HOOK_APP = {
  id: 'hook-app',
  key: 'hook-key',
  secret: 'hook-secret',
  enable_client_messages: true,
  enable_subscription_count: true,
  webhooks: [{ url: receiver.url('/all') }],
};
const FILTER_APP = {
  id: 'filter-app',
  key: 'filter-key',
  secret: 'filter-secret',
  webhooks: [{ url: receiver.url('/filtered'), event_types: ['channel_occupied'], filter: { channel_prefix: 'private-' } }],
};
const RETRY_APP = {
  id: 'retry-app',
  key: 'retry-key',
  secret: 'retry-secret',
  webhooks: [{ url: receiver.url('/retry') }],
};

const srv = useServer({ name: 'webhooks', apps: [...DEFAULT_APPS, HOOK_APP, FILTER_APP, RETRY_APP] });

// Events that core may send more than once (at least once) carry a stable `id`; the rest none.
const strip = ({ post, id, ...e }) => {
  if (id !== undefined) assert.equal(typeof id, 'string', `event id ${JSON.stringify(id)}`);
  return e;
};

function assertSigned(post, app) {
  const sdk = srv.sdk(app.id);
  const hook = sdk.webhook({ headers: post.headers, rawBody: post.rawBody });
  assert.equal(post.headers['x-pusher-key'], app.key);
  assert.equal(hook.isValid(), true, `webhook must verify with the SDK: ${JSON.stringify(post.headers)} ${post.rawBody}`);
  const age = Date.now() - hook.getTime().getTime();
  assert.ok(age >= -5000 && age < 60_000, `time_ms is stamped at send time (age ${age} ms)`);
}

test('channel_occupied and channel_vacated, signed so the SDK accepts them', T, async () => {
  const name = uniq('hook-ch-');
  const client = await srv.connect({ appId: HOOK_APP.id });
  await subscribe(client, name);
  const occupied = await receiver.waitEvent('/all', (e) => e.name === 'channel_occupied' && e.channel === name, {
    what: 'channel_occupied',
  });
  assertSigned(occupied.post, HOOK_APP);
  assert.deepEqual(strip(occupied), { name: 'channel_occupied', channel: name });
  assert.match(occupied.id, /channel_occupied$/, 'a stable id, so a receiver can drop a repeat');

  client.unsubscribe(name);
  // Held up to 3 s before it is sent.
  const vacated = await receiver.waitEvent('/all', (e) => e.name === 'channel_vacated' && e.channel === name, {
    what: 'channel_vacated',
  });
  assertSigned(vacated.post, HOOK_APP);
  assert.deepEqual(strip(vacated), { name: 'channel_vacated', channel: name });
});

test('a channel that is back within the hold time sends no channel_vacated', T, async () => {
  const name = uniq('hook-flap-');
  const client = await srv.connect({ appId: HOOK_APP.id });
  await subscribe(client, name);
  await receiver.waitEvent('/all', (e) => e.name === 'channel_occupied' && e.channel === name);
  client.unsubscribe(name);
  await sleep(300);
  await subscribe(client, name);
  await sleep(4000);
  const occupancy = ['channel_occupied', 'channel_vacated'];
  const mine = receiver
    .events('/all')
    .filter((e) => e.channel === name && occupancy.includes(e.name))
    .map((e) => e.name);
  assert.ok(!mine.includes('channel_vacated'), `channel_vacated is held 3 s and dropped on return: ${mine}`);
  // Without a vacated in between, a second occupied would contradict the first.
  assert.deepEqual(mine, ['channel_occupied'], 'exactly one channel_occupied');
});

test('member_added once per user and member_removed after the last connection', T, async () => {
  const name = uniq('presence-hook-');
  const a1 = await srv.connect({ appId: HOOK_APP.id, presence: { user_id: 'wh-a', user_info: {} } });
  const a2 = await srv.connect({ appId: HOOK_APP.id, presence: { user_id: 'wh-a', user_info: {} } });
  await subscribe(a1, name);
  await subscribe(a2, name);
  const added = await receiver.waitEvent('/all', (e) => e.name === 'member_added' && e.channel === name);
  assert.deepEqual(strip(added), { name: 'member_added', channel: name, user_id: 'wh-a' });
  assertSigned(added.post, HOOK_APP);

  a1.disconnect();
  await sleep(500);
  a2.disconnect();
  const removed = await receiver.waitEvent('/all', (e) => e.name === 'member_removed' && e.channel === name, {
    what: 'member_removed',
  });
  assert.deepEqual(strip(removed), { name: 'member_removed', channel: name, user_id: 'wh-a' });
  const names = receiver.events('/all').filter((e) => e.channel === name && e.name.startsWith('member_'));
  assert.deepEqual(
    names.map((e) => e.name),
    ['member_added', 'member_removed'],
  );
});

test('a member who is back within the hold time sends no member_removed', T, async () => {
  const name = uniq('presence-hook-flap-');
  const keeper = await srv.connect({ appId: HOOK_APP.id, presence: { user_id: 'wh-keeper', user_info: {} } });
  await subscribe(keeper, name);
  const flapper = await srv.connect({ appId: HOOK_APP.id, presence: { user_id: 'wh-flap', user_info: {} } });
  await subscribe(flapper, name);
  await receiver.waitEvent('/all', (e) => e.name === 'member_added' && e.channel === name && e.user_id === 'wh-flap');
  flapper.unsubscribe(name);
  await sleep(300);
  await subscribe(flapper, name);
  await sleep(4000);
  const mine = receiver.events('/all')
    .filter((e) => e.channel === name && e.user_id === 'wh-flap')
    .map((e) => e.name);
  assert.ok(!mine.includes('member_removed'), `member_removed is held 3 s and dropped on return: ${mine}`);
  assert.deepEqual(mine, ['member_added'], 'exactly one member_added');
});

test('client_event webhooks carry the event, data, socket_id and (presence) user_id', T, async () => {
  const name = uniq('presence-hook-ce-');
  const a = await srv.connect({ appId: HOOK_APP.id, presence: { user_id: 'wh-sender', user_info: {} } });
  const b = await srv.connect({ appId: HOOK_APP.id, presence: { user_id: 'wh-other', user_info: {} } });
  const { channel: chA } = await subscribe(a, name);
  const { channel: chB } = await subscribe(b, name);
  const got = waitFor(chB, 'client-hello');
  chA.trigger('client-hello', { hi: 1 });
  await got;
  const ev = await receiver.waitEvent('/all', (e) => e.name === 'client_event' && e.channel === name, {
    what: 'client_event',
  });
  assertSigned(ev.post, HOOK_APP);
  assert.equal(ev.event, 'client-hello');
  assert.deepEqual(typeof ev.data === 'string' ? JSON.parse(ev.data) : ev.data, { hi: 1 });
  assert.equal(ev.socket_id, a.connection.socket_id);
  assert.equal(ev.user_id, 'wh-sender');
});

test('subscription_count webhook with the channel\'s count, signed', T, async () => {
  const name = uniq('hook-count-');
  const client = await srv.connect({ appId: HOOK_APP.id });
  await subscribe(client, name);
  const counted = await receiver.waitEvent(
    '/all',
    (e) => e.name === 'subscription_count' && e.channel === name,
    { what: 'subscription_count webhook' },
  );
  assertSigned(counted.post, HOOK_APP);
  assert.deepEqual(strip(counted), { name: 'subscription_count', channel: name, subscription_count: 1 });
});

test('cache_miss webhook when an empty cache channel is subscribed, not when it is queried', T, async () => {
  const name = uniq('cache-hook-');
  // A backend's query of the empty channel is no miss: only the subscribe below raises one.
  const queried = await srv.sdk(HOOK_APP.id).get({ path: `/channels/${name}`, params: { info: 'cache' } });
  assert.equal(queried.status, 200);
  const client = await srv.connect({ appId: HOOK_APP.id });
  const channel = client.subscribe(name);
  await waitFor(channel, 'pusher:cache_miss');
  const ev = await receiver.waitEvent('/all', (e) => e.name === 'cache_miss' && e.channel === name, {
    what: 'cache_miss webhook',
  });
  assert.deepEqual(strip(ev), { name: 'cache_miss', channel: name });
  // Webhooks go out in order; a miss raised by the query would have come before this one.
  await sleep(1000);
  const misses = receiver.events('/all').filter((e) => e.name === 'cache_miss' && e.channel === name);
  // A redelivery (at least once) repeats its Idempotency-Key and is not a second miss.
  const distinct = new Set(misses.map((e) => e.post.headers['idempotency-key'] ?? e.post));
  assert.equal(distinct.size, 1, JSON.stringify(misses.map(({ post, ...e }) => e)));
});

test('event_types and channel_prefix filters limit what is sent', T, async () => {
  const pub = uniq('pub-filter-');
  const priv = uniq('private-filter-');
  const client = await srv.connect({ appId: FILTER_APP.id });
  await subscribe(client, pub);
  await subscribe(client, priv);
  await receiver.waitEvent('/filtered', (e) => e.name === 'channel_occupied' && e.channel === priv);
  client.unsubscribe(priv);
  client.unsubscribe(pub);
  await sleep(4000);
  const got = receiver
    .events('/filtered')
    .filter((e) => e.channel === pub || e.channel === priv)
    .map(strip);
  assert.deepEqual(got, [{ name: 'channel_occupied', channel: priv }]);
});

test('a failed delivery is retried', T, async () => {
  const name = uniq('retry-ch-');
  const mine = (rawBody) => rawBody.includes(JSON.stringify(name));
  receiver.failFirst['/retry'] = { count: 1, when: mine };
  const client = await srv.connect({ appId: RETRY_APP.id });
  await subscribe(client, name);
  const ev = await receiver.waitEvent('/retry', (e) => e.name === 'channel_occupied' && e.channel === name, {
    timeout: 15_000,
    what: 'channel_occupied after a 500',
  });
  assertSigned(ev.post, RETRY_APP);
  const tries = receiver.posts.filter((p) => p.path === '/retry' && mine(p.rawBody));
  assert.ok(tries.length >= 2 && tries[0].answered === 500, 'the first POST failed and was retried');
});
