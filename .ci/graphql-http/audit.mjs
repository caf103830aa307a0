// The GraphQL over HTTP reference audit (graphql-http) against a running hub, with and without a token, and the
// graphql-transport-ws rules checked with the graphql-ws client and a raw socket. Exits non-zero below the targets.
// Usage: node audit.mjs <http://host:port/graphql> <token>
import { auditServer } from 'graphql-http';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node audit.mjs <url> <token>');
  process.exit(2);
}
const wsUrl = url.replace(/^http/, 'ws');
// What the hub must reach (issue 13): MUST all, SHOULD all, MAY at least 22 of 25.
const targets = { MUST: (ok, total) => ok === total, SHOULD: (ok, total) => ok === total, MAY: (ok) => ok >= 22 };
let failed = false;

async function audit(label, fetchFn) {
  const results = await auditServer({ url, fetchFn });
  const counts = {};
  for (const result of results) {
    const level = result.name.split(' ')[0];
    counts[level] ??= { ok: 0, total: 0 };
    counts[level].total++;
    if (result.status === 'ok') counts[level].ok++;
    else console.log(`  ${label}: ${result.status} ${result.name}: ${result.reason}`);
  }
  for (const [level, { ok, total }] of Object.entries(counts)) {
    const pass = targets[level] ? targets[level](ok, total) : true;
    console.log(`graphql-http audit, ${label}: ${level} ${ok}/${total}${pass ? '' : '  <- below target'}`);
    if (!pass) failed = true;
  }
}

const withToken = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
await audit('with a token', withToken);
await audit('without a token', fetch);

function check(name, pass, detail = '') {
  console.log(`graphql-transport-ws: ${pass ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
  if (!pass) failed = true;
}

/// Opens a raw socket, sends `messages` once open, and resolves with what the server sent and its close code.
function raw(messages, { waitMs = 3000, afterAck = [] } = {}) {
  return new Promise((resolve) => {
    const socket = new WebSocket(wsUrl, 'graphql-transport-ws');
    const received = [];
    const timer = setTimeout(() => { socket.terminate(); resolve({ received, code: null }); }, waitMs);
    socket.on('open', () => messages.forEach((m) => socket.send(JSON.stringify(m))));
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      received.push(message);
      if (message.type === 'connection_ack') afterAck.forEach((m) => socket.send(JSON.stringify(m)));
    });
    socket.on('close', (code) => { clearTimeout(timer); resolve({ received, code }); });
    socket.on('error', () => {});
  });
}

const init = { type: 'connection_init', payload: { Authorization: `Bearer ${token}` } };
const subscription = 'subscription { coFinancingStatusChanged { __typename } }';

// The graphql-ws client: connects, pings, subscribes, completes.
{
  const pongs = [];
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    keepAlive: 200,
    on: { pong: (received) => pongs.push(received) },
    retryAttempts: 0,
  });
  const result = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), 1200);
    client.subscribe({ query: subscription }, {
      next: () => {},
      error: (err) => { clearTimeout(timer); resolve(`error: ${JSON.stringify(err?.code ?? err?.message ?? err)}`); },
      complete: () => { clearTimeout(timer); resolve('complete'); },
    });
  });
  check('the graphql-ws client subscribes and stays subscribed', result === 'open', result);
  check('ping is answered with pong', pongs.length > 0, `${pongs.length} pong(s)`);
  await client.dispose();
}

{
  const { received } = await raw([init, { type: 'ping', payload: { n: 1 } }], { waitMs: 800 });
  const pong = received.find((m) => m.type === 'pong');
  check('a client ping gets a pong', !!pong, JSON.stringify(received));
}
{
  const { code } = await raw([{ type: 'subscribe', id: '1', payload: { query: subscription } }]);
  check('subscribe before connection_ack closes with 4401', code === 4401, `closed with ${code}`);
}
{
  const { code } = await raw([init, init]);
  check('a second connection_init closes with 4429', code === 4429, `closed with ${code}`);
}
{
  const { code } = await raw([init], {
    afterAck: [
      { type: 'subscribe', id: 'same', payload: { query: subscription } },
      { type: 'subscribe', id: 'same', payload: { query: subscription } },
    ],
  });
  check('a second subscribe under a running id closes with 4409', code === 4409, `closed with ${code}`);
}
{
  const { code } = await raw([{ type: 'connection_init', payload: { Authorization: 'Bearer forged.token.here' } }]);
  check('a refused token closes with 4403', code === 4403, `closed with ${code}`);
}
{
  const { code } = await raw([{ type: 'connection_init', payload: {} }]);
  check('an anonymous connection_init closes with 4403', code === 4403, `closed with ${code}`);
}
{
  const { code } = await raw(['not a protocol message']);
  check('a message outside the protocol closes with 4400', code === 4400, `closed with ${code}`);
}
{
  // The hub waits 10 s for connection_init.
  const { code } = await raw([], { waitMs: 12000 });
  check('no connection_init within the timeout closes with 4408', code === 4408, `closed with ${code}`);
}

process.exit(failed ? 1 : 0);
