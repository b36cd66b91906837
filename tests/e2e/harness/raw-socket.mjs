// A raw WebSocket client for the e2e tests, for what pusher-js hides (close codes, exact
// frames), and the parsing of a server→client `data` field.

import WebSocket from 'ws';

import { WAIT_MS } from './env.mjs';
import { withTimeout } from './util.mjs';

export function rawSocket(url, { timeout = WAIT_MS, headers } = {}) {
  const ws = new WebSocket(url, headers ? { headers } : undefined);
  const messages = [];
  const waiters = new Set();
  let closeInfo = null;
  const notify = () => {
    for (const w of waiters) w();
  };
  ws.on('message', (buf) => {
    let msg;
    try {
      msg = JSON.parse(buf.toString());
    } catch {
      msg = { unparsable: buf.toString() };
    }
    messages.push(msg);
    notify();
  });
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      notify();
      resolve(closeInfo);
    });
  });
  ws.on('error', () => {
    // the close handler reports what matters
  });
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode} instead of upgrade`)));
    ws.once('close', () => reject(new Error('closed before open')));
  });
  opened.catch(() => {});
  return {
    ws,
    messages,
    opened: withTimeout(opened, timeout, `websocket open ${url}`),
    /** The close {code, reason}, bounded. */
    closed: (ms = timeout) => withTimeout(closed, ms, `websocket close on ${url}`),
    get closeInfo() {
      return closeInfo;
    },
    send(obj) {
      ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
    },
    /** Waits for a message with pred(msg) true, among those received so far or later. */
    next(pred, { timeout: ms = timeout, what = 'matching message' } = {}) {
      let check;
      const p = new Promise((resolve, reject) => {
        check = () => {
          const m = messages.find(pred);
          if (m) resolve(m);
          else if (closeInfo) reject(new Error(`socket closed (${JSON.stringify(closeInfo)}) while waiting for ${what}; got ${JSON.stringify(messages)}`));
        };
        waiters.add(check);
        check();
      });
      return withTimeout(p, ms, `${what}; got ${JSON.stringify(messages)}`).finally(() => waiters.delete(check));
    },
    close() {
      try {
        ws.terminate();
      } catch {
        // already gone
      }
    },
  };
}

/** Parses a server→client `data` field, which must be a JSON string. */
export function parseData(msg) {
  if (typeof msg.data !== 'string') {
    throw new Error(`server→client data must be a JSON string, got ${JSON.stringify(msg.data)}`);
  }
  return JSON.parse(msg.data);
}
