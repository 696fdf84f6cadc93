// test/lib.js - shared by the Node test suites: start the real binary on 127.0.0.1 with an
// ephemeral port, WebSocket clients that queue what they receive, raw sockets, a tiny harness
// whose last line is "N passed, N failed". CommonJS so NODE_PATH (.deps/node_modules) works.
'use strict';
const { spawn } = require('child_process');
const net = require('net');
const http = require('http');
const crypto = require('crypto');
const WebSocket = require('ws');

const BIN = process.env.PP_BIN || `${__dirname}/../build/peerpigeon-asan`;
// where the test's npm packages are: NODE_PATH's first entry (absolute), else .deps/node_modules
const DEPS = require('path').resolve(process.env.NODE_PATH ? process.env.NODE_PATH.split(':')[0] : `${__dirname}/../.deps/node_modules`);

let passed = 0;
let failed = 0;
const servers = new Set();

function check(cond, what, detail) {
  if (cond) passed++;
  else {
    failed++;
    console.log(`FAIL ${what}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
  }
  return !!cond;
}

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  return check(a === e, what, a === e ? undefined : { actual, expected });
}

// Run named async tests one after another; each gets a time limit.
async function run(tests, { limitMs = 20000 } = {}) {
  for (const [name, fn] of tests) {
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('timeout')), limitMs); }),
      ]);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    }
    clearTimeout(timer);
  }
  for (const s of servers) await s.stop();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// Start the server; resolves once it logs its port. env: extra environment variables.
function startServer(env = {}, args = [], bin = BIN) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    let port = 0;
    const srv = {
      proc, get log() { return log; },
      get port() { return port; },
      url(path = '/') { return `ws://127.0.0.1:${port}${path}`; },
      exited: new Promise((r) => proc.on('exit', (code, sig) => r({ code, sig }))),
      async stop() {
        servers.delete(srv);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        const r = await srv.exited;
        // a sanitizer report or a crash is a failure of whatever test was running
        check(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(log), 'server sanitizer-clean', log.slice(-3000));
        check(r.code === 0, 'server exits 0 on SIGTERM', r);
        return r;
      },
      // Kill without the exit checks (fault tests: SIGKILL mid-traffic); resolves on exit.
      async kill(sig = 'SIGKILL') {
        servers.delete(srv);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
        return srv.exited;
      },
    };
    proc.stderr.on('data', (d) => {
      log += d;
      const m = /listening on \S+ port (\d+)/.exec(log);
      if (m && !port) { port = +m[1]; servers.add(srv); resolve(srv); }
    });
    proc.on('exit', (code) => { if (!port) reject(new Error(`server exited ${code}: ${log}`)); });
    setTimeout(() => { if (!port) reject(new Error('server did not start: ' + log)); }, 5000);
  });
}

// Run the binary with env and wait for it to exit; { code, sig, log }. sh: a shell prefix
// (e.g. 'ulimit -n 8;') run before exec'ing the binary.
function runToExit(env, ms = 5000, bin = BIN, args = []) {
  return new Promise((resolve) => {
    const p = spawn(bin, args, { env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    p.stderr.on('data', (d) => { log += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', (code, sig) => { clearTimeout(t); resolve({ code, sig, log }); });
  });
}

function randomId() {
  return crypto.randomBytes(20).toString('hex');
}

// A WebSocket client that queues messages. next(type) waits for the next message of that type
// (others stay queued); none(type, ms) asserts nothing of that type arrives.
function client(srv, id = randomId(), { path = '/', query = '', headers } = {}) {
  const url = `ws://127.0.0.1:${srv.port}${path}?peerId=${id}${query}`;
  const ws = new WebSocket(url, { headers, perMessageDeflate: false });
  const queue = [];
  const waiters = [];
  const c = {
    id, ws, queue,
    closed: new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() }))),
    opened: new Promise((res, rej) => { ws.on('open', res); ws.on('error', rej); }),
    send(obj) { ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); },
    next(type, ms = 3000) {
      const i = queue.findIndex((m) => !type || m.type === type);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const w = { type, resolve, timer: setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`${id.slice(0, 8)}: no '${type}' within ${ms} ms; queued: ${JSON.stringify(queue.map((m) => m.type))}`));
        }, ms) };
        waiters.push(w);
      });
    },
    async none(type, ms = 300) {
      await sleep(ms);
      return !queue.some((m) => m.type === type);
    },
    all(type) { return queue.filter((m) => m.type === type); },
    drop(type) { for (let i = queue.length - 1; i >= 0; i--) if (queue[i].type === type) queue.splice(i, 1); },
    close(code, reason) { ws.close(code, reason); return c.closed; },
  };
  ws.on('message', (data) => {
    let m;
    try { m = JSON.parse(data.toString()); } catch { m = { type: '<unparsable>', raw: data.toString() }; }
    const i = waiters.findIndex((w) => !w.type || w.type === m.type);
    if (i >= 0) { const w = waiters.splice(i, 1)[0]; clearTimeout(w.timer); w.resolve(m); } else queue.push(m);
  });
  ws.on('error', () => {});
  return c;
}

// Connect, wait for `connected`, optionally announce into a network.
async function joined(srv, network, id, data) {
  const c = client(srv, id);
  await c.opened;
  await c.next('connected');
  if (network !== undefined) c.send({ type: 'announce', networkName: network, data: data || { peerId: c.id } });
  return c;
}

// Plain HTTP request; resolves { status, headers, body }.
function request(srv, path, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

// A raw TCP socket: write bytes, read everything with readUntil(pred) or until close.
function raw(srv) {
  const sock = net.connect(srv.port, '127.0.0.1');
  let buf = Buffer.alloc(0);
  let ended = false;
  const waiters = [];
  const wake = () => { for (const w of waiters.splice(0)) w(); };
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); wake(); });
  sock.on('close', () => { ended = true; wake(); });
  sock.on('error', () => {});
  const r = {
    sock,
    get buf() { return buf; },
    get ended() { return ended; },
    connected: new Promise((res) => sock.on('connect', res)),
    write(b) { sock.write(b); },
    async until(pred, ms = 3000) {
      const t0 = Date.now();
      while (!pred(buf) && !ended) {
        if (Date.now() - t0 > ms) throw new Error('raw: timeout; have ' + JSON.stringify(buf.toString('latin1').slice(0, 300)));
        await new Promise((res) => { waiters.push(res); setTimeout(res, 50); });
      }
      return buf;
    },
    async closed(ms = 3000) { await r.until(() => false, ms).catch(() => {}); return ended; },
    destroy() { sock.destroy(); },
  };
  return r;
}

// A client frame (masked) for raw sockets.
function frame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0 } = {}) {
  payload = Buffer.from(payload);
  const len = payload.length;
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode)];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
  else { head.push(m | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255); }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from(head), key, body]);
}

// Parse server frames out of a buffer: [{fin, opcode, payload}], and the bytes after the head.
function parseFrames(buf) {
  const out = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    let len = buf[i + 1] & 127;
    let h = 2;
    if (len === 126) { if (i + 4 > buf.length) break; len = buf.readUInt16BE(i + 2); h = 4; }
    else if (len === 127) { if (i + 10 > buf.length) break; len = Number(buf.readBigUInt64BE(i + 2)); h = 10; }
    if (i + h + len > buf.length) break;
    out.push({ fin: !!(buf[i] & 0x80), opcode: buf[i] & 15, payload: buf.subarray(i + h, i + h + len) });
    i += h + len;
  }
  return out;
}

const UPGRADE = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

// A raw socket that completed the upgrade; .frames() parses what came after the 101 head.
async function rawWs(srv, id = randomId(), extra = '') {
  const r = raw(srv);
  await r.connected;
  r.write(UPGRADE(`/?peerId=${id}`, extra));
  await r.until((b) => b.indexOf('\r\n\r\n') >= 0);
  const headEnd = r.buf.indexOf('\r\n\r\n') + 4;
  r.head = r.buf.subarray(0, headEnd).toString();
  r.frames = () => parseFrames(r.buf.subarray(headEnd));
  r.id = id;
  return r;
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Poll pred (may be async) every 20 ms until truthy; throws after ms.
async function waitFor(pred, ms, what = 'condition') {
  const t0 = Date.now();
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timeout (${ms} ms) waiting for ${what}`);
    await sleep(20);
  }
}

// A TCP port that was free a moment ago on 127.0.0.1.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// GET a JSON endpoint; resolves the parsed body (throws on non-200 or bad JSON).
async function getJson(srv, path) {
  const r = await request(srv, path);
  if (r.status !== 200) throw new Error(`${path}: status ${r.status}`);
  return JSON.parse(r.body);
}

module.exports = {
  check, eq, run, startServer, client, joined, request, raw, rawWs, frame, parseFrames, UPGRADE,
  randomId, sleep, waitFor, freePort, getJson, WebSocket, BIN, DEPS, runToExit,
  get counts() { return { passed, failed }; },
};
