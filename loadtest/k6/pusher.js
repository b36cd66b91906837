// Shared by the scenarios: the target, Pusher REST request signing and channel auth.
// Everything is overridable by environment variable (k6 run -e NAME=value or the shell env).
import crypto from 'k6/crypto';
import http from 'k6/http';

export const target = {
  host: __ENV.SWITCHYARD_HOST || '127.0.0.1:6001', // WebSocket address
  api: __ENV.SWITCHYARD_API || __ENV.SWITCHYARD_HOST || '127.0.0.1:6001', // HTTP API address
  appId: __ENV.SWITCHYARD_APP_ID || 'app-id',
  key: __ENV.SWITCHYARD_APP_KEY || 'app-key',
  secret: __ENV.SWITCHYARD_APP_SECRET || 'app-secret',
};

export function wsUrl() {
  return `ws://${target.host}/app/${target.key}?protocol=7&client=k6&version=0.1`;
}

// Pusher REST signing: HMAC-SHA256 over "METHOD\nPATH\nsorted query" with the app secret.
export function signedPath(method, path, body) {
  const params = {
    auth_key: target.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
  };
  if (body) params.body_md5 = crypto.md5(body, 'hex');
  const query = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  const signature = crypto.hmac('sha256', target.secret, `${method}\n${path}\n${query}`, 'hex');
  return `${path}?${query}&auth_signature=${signature}`;
}

// POST /apps/{id}/events: `data` is sent as a JSON string, as the Pusher libraries do.
export function trigger(channel, name, data, tags) {
  const body = JSON.stringify({ name, channel, data: JSON.stringify(data) });
  const path = signedPath('POST', `/apps/${target.appId}/events`, body);
  return http.post(`http://${target.api}${path}`, body, {
    headers: { 'Content-Type': 'application/json' },
    tags: tags || { name: 'trigger' },
  });
}

// Private/presence channel auth as an auth endpoint would compute it.
export function channelAuth(socketId, channel, channelData) {
  const toSign = channelData ? `${socketId}:${channel}:${channelData}` : `${socketId}:${channel}`;
  return `${target.key}:${crypto.hmac('sha256', target.secret, toSign, 'hex')}`;
}

export function frame(event, data) {
  return JSON.stringify({ event, data });
}
