// Bounded waits on pusher-js emitters (channels, connection, user): the next event, recorded
// events, connection states, subscriptions; and the expected HTTP status of a Node SDK call.

import { WAIT_MS } from './env.mjs';
import { withTimeout } from './util.mjs';

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
