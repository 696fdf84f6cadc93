// bench/attack.js - the open-internet attacks of issue 9, measured (a benchmark: prints figures,
// asserts nothing). Each attack gets a fresh server (PP_BIN, default ./peerpigeon; PORT=0
// HOST=127.0.0.1 MAX_CONNECTIONS=2000) and is measured for:
//   - peak server RSS (VmRSS of /proc/<pid>/status polled every 100 ms; VmHWM at the end too),
//     and the peak of the server's own queued-output gauge (/metrics, polled every 500 ms);
//   - bytes the attacker sent (its sockets' bytesWritten) against bytes the server sent and
//     received meanwhile (/metrics sent_bytes_total / received_bytes_total deltas: the server
//     uses send/recv, which /proc/<pid>/io rchar/wchar do not count);
//   - honest clients cut off: by the server's count (connected peers before and after, less the
//     attacker's and the control pair's) and as the clients saw it (a close they did not ask
//     for), with the server's close causes (connections_closed_total deltas);
//   - the p50/p99 latency of a control pair: two ordinary clients in network "ctl", A sending B
//     an offer every 50 ms during the attack (lost = not arrived 1.5 s after the attack);
//   - whether the attacker was closed (code, reason) and the `error` messages it got.
// The attacks (each against its own server):
//   1  re-announce storm: 80 slow victims in "v" (socket paused, read 50 ms every 500 ms), one
//      attacker re-announcing into "v" with 16 KiB of data, a new random string each time, 10 s
//   2  the same with the same data every time
//   3  network-switch storm: announce "v", announce "w", goodbye, ..., 80 reading victims in "v"
//   4  one address (localAddress 127.0.0.2) opens all the WebSockets it can in 2 s; then 10
//      honest newcomers from 127.0.0.1 try to connect
//   5  IS_HUB=true, 50 clients announced {isHub:true, pad: 16 KiB}; 100 connections each pipeline
//      50 `GET /hubs` and never read (held 8 s)
//   6  100 clients in "v" that never read, an attacker re-announcing 16 KiB of random data, 10 s
//   7  200 connections send a first fragment (FIN=0, text, masked) of 512 KiB of a ~1 MiB
//      message and never finish it (held 8 s); 7b: one frame declaring ~1 MiB, 512 KiB sent
// Attacks 4, 5, 7 have 20 ordinary reading clients in "v" as the honest ones (5: and the hubs).
// The attacker of 1, 2, 3, 6 is a raw socket that reads all it is sent at socket speed without
// parsing it, and comes back at once with a new peer id whenever the server cuts it off (the
// count of its connections shows how often). Honest clients of one group share one worker
// thread (80 clients on a fraction of a core: a heavy stream makes them slow readers sooner
// than 80 machines would be). Clients, attacker, control pair and the RSS poller run in worker
// threads of their own, so one busy event loop does not skew another's figures. The server is SIGKILLed if its RSS passes
// PP_RSS_LIMIT_MB (default 3000) so that a runaway cannot take the shared machine down.
//
// Usage: NODE_PATH=.deps/node_modules PP_BIN=./peerpigeon node bench/attack.js [1 2 ... 7b]
// (no argument: all attacks; about 100 s on a 2-core VM). One line per attack, then a markdown table.
'use strict';
// the attackers' raw sockets come from this address: loopback (127.0.0.1) is exempt from the
// per-address limits, as a local proxy is; PP_ATTACK_ADDR=127.0.0.1 measures without them
const ATTACK_ADDR = process.env.PP_ATTACK_ADDR || '127.0.0.3';
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const http = require('http');
const crypto = require('crypto');
const { performance } = require('perf_hooks');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const randomId = () => crypto.randomBytes(20).toString('hex');
// announce data {"pad":"<s>"}: the server counts each member as key + value (both with their
// quotes) + 2 (peer.c set_extra) against 16384 bytes, so this is the largest pad accepted
const PAD = 16384 - 9;
const padString = (n) => crypto.randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);

function defer() {
  let resolve, reject;
  const p = new Promise((res, rej) => { resolve = res; reject = rej; });
  p.catch(() => {});
  return { p, resolve, reject };
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timeout after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

// GET /metrics -> { name{labels}: number }
function metrics(port, ms = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: ms }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => {
        const m = {};
        for (const l of b.split('\n')) {
          if (!l || l[0] === '#') continue;
          const i = l.lastIndexOf(' ');
          m[l.slice(0, i).replace(/^peerpigeon_/, '')] = +l.slice(i + 1);
        }
        resolve(m);
      });
    });
    req.on('timeout', () => req.destroy(new Error('metrics timeout')));
    req.on('error', reject);
  });
}

// A WebSocket client that counts what it gets; connected resolves on the server's `connected`.
function wsPeer(port, opts = {}) {
  const WebSocket = require('ws');
  const id = opts.id || randomId();
  const timeout = opts.timeout || 5000;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?peerId=${id}`, {
    perMessageDeflate: false, localAddress: opts.localAddress, handshakeTimeout: timeout,
  });
  const p = { id, ws, sock: null, msgs: 0, types: {}, errors: {}, closed: null, gotConnected: false, lastError: null };
  const c = defer();
  const t = setTimeout(() => c.reject(new Error('no connected within ' + timeout + ' ms')), timeout);
  p.connected = c.p;
  ws.on('upgrade', (res) => { p.sock = res.socket; });
  ws.on('open', () => { p.sock = ws._socket; });
  ws.on('message', (data) => {
    p.msgs++;
    let type;
    let m;
    if (data.length < 2048) {
      try { m = JSON.parse(data.toString()); type = m && m.type; } catch { type = '<unparsable>'; }
    } else {
      const mm = /"type"\s*:\s*"([^"]{1,40})"/.exec(data.toString('latin1', 0, 160));
      type = mm ? mm[1] : '<big>';
    }
    p.types[type] = (p.types[type] || 0) + 1;
    if (type === 'connected' && !p.gotConnected) { p.gotConnected = true; clearTimeout(t); c.resolve(); }
    if (type === 'error' && m) {
      const k = String(m.error !== undefined ? m.error : m.message !== undefined ? m.message : JSON.stringify(m)).slice(0, 100);
      p.errors[k] = (p.errors[k] || 0) + 1;
    }
    if (opts.onMessage) opts.onMessage(type, m, data);
  });
  ws.on('close', (code, reason) => {
    p.closed = { code, reason: reason.toString(), at: Date.now() };
    clearTimeout(t);
    c.reject(new Error(`closed ${code} ${reason.toString()}`.trim()));
  });
  ws.on('error', (e) => { p.lastError = e.code || e.message; clearTimeout(t); c.reject(e); });
  p.send = (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o));
  p.bytesOut = () => (p.sock ? p.sock.bytesWritten : 0);
  p.bytesIn = () => (p.sock ? p.sock.bytesRead : 0);
  p.isOpen = () => ws.readyState === 1;
  return p;
}

function tally(into, key, n = 1) { into[key] = (into[key] || 0) + n; return into; }
function mergeTally(into, t) { for (const k in t) tally(into, k, t[k]); return into; }
const fmtT = (t) => Object.entries(t || {}).map(([k, v]) => `${v}x ${k}`).join('; ');
function closeKey(c) { return `${c.code}${c.reason ? ' ' + c.reason : ''}`; }

// ---------------------------------------------------------------- worker roles

const roles = {};

// RSS (every 100 ms) and queued output (every 500 ms) of the server; kills it past the limit.
roles.poller = async ({ pid, port, limitMb }) => {
  let peak = 0;
  let hwm = 0;
  let samples = 0;
  let peakQueued = 0;
  let killed = false;
  let first = 0;
  const status = () => {
    try {
      const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      return { rss: +(/VmRSS:\s+(\d+)/.exec(s) || [0, 0])[1], hwm: +(/VmHWM:\s+(\d+)/.exec(s) || [0, 0])[1] };
    } catch { return null; }
  };
  const iv = setInterval(() => {
    const s = status();
    if (!s) return;
    samples++;
    if (!first) first = s.rss;
    if (s.rss > peak) peak = s.rss;
    hwm = Math.max(hwm, s.hwm);
    if (limitMb && s.rss > limitMb * 1024 && !killed) {
      killed = true;
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }, 100);
  let busy = false;
  const iq = setInterval(async () => {
    if (busy || killed) return;
    busy = true;
    try {
      const m = await metrics(port, 450);
      if (m.queued_output_bytes > peakQueued) peakQueued = m.queued_output_bytes;
    } catch { /* busy server: skip this sample */ }
    busy = false;
  }, 500);
  parentPort.on('message', (msg) => {
    if (msg !== 'stop') return;
    clearInterval(iv);
    clearInterval(iq);
    const s = status();
    if (s) { hwm = Math.max(hwm, s.hwm); peak = Math.max(peak, s.rss); }
    parentPort.postMessage({ t: 'result', v: { peakKb: peak, hwmKb: hwm, startKb: first, samples, peakQueued, killed } });
  });
  parentPort.postMessage({ t: 'ready', v: { startKb: (status() || {}).rss } });
};

// n honest clients; mode 'normal' (read), 'slow' (paused, read 50 ms every 500 ms), 'paused'
// (never read after joining). Pausing is ws.pause(), which is ws._socket.pause() plus a flag that
// stops ws from resuming the socket on its own when its parser drains.
roles.victims = async ({ port, n, network, mode, data, localAddress, timeout, hubPad }) => {
  const peers = [];
  const connected = [];
  const failed = {};
  for (let i = 0; i < n; i++) peers.push(wsPeer(port, { localAddress, timeout }));
  const st = await Promise.allSettled(peers.map((p) => p.connected));
  st.forEach((s, i) => { if (s.status === 'fulfilled') connected.push(peers[i]); else tally(failed, s.reason && s.reason.message ? s.reason.message : String(s.reason)); });
  if (network !== undefined) {
    for (const p of connected) {
      const d = { ...(data || {}) };
      if (hubPad) d.pad = padString(hubPad);
      p.send({ type: 'announce', networkName: network, data: d });
    }
    // let discovery settle: everyone heard of everyone (or 4 s)
    const t0 = Date.now();
    while (Date.now() - t0 < 4000 && connected.some((p) => p.isOpen() && (p.types['peer-discovered'] || 0) < connected.length - 1)) await sleep(50);
  }
  const timers = [];
  if (mode === 'slow') {
    for (const p of connected) {
      p.ws.pause();
      const phase = Math.random() * 500;
      timers.push(setTimeout(() => {
        timers.push(setInterval(() => {
          p.ws.resume();
          timers.push(setTimeout(() => p.ws.pause(), 50));
        }, 500));
      }, phase));
    }
  } else if (mode === 'paused') {
    for (const p of connected) p.ws.pause();
  }
  const settled = {};
  for (const p of connected) mergeTally(settled, p.types);
  parentPort.postMessage({ t: 'ready', v: { connected: connected.length, failed, closedEarly: connected.filter((p) => p.closed).length } });
  parentPort.on('message', async (msg) => {
    if (msg !== 'stop') return;
    for (const t of timers) { clearTimeout(t); clearInterval(t); }
    const snap = () => connected.filter((p) => p.closed).length;
    const closedBeforeDrain = snap();
    // read what is there, briefly, so that closes behind queued data can be seen
    for (const p of connected) p.ws.resume();
    await sleep(1500);
    const closes = {};
    let bytesIn = 0;
    let msgs = 0;
    const types = {};
    for (const p of connected) {
      if (p.closed) tally(closes, closeKey(p.closed));
      bytesIn += p.bytesIn();
      msgs += p.msgs;
      mergeTally(types, p.types);
    }
    const open = connected.filter((p) => p.isOpen()).length;
    const at = connected.filter((p) => p.closed).map((p) => p.closed.at);
    const firstClose = at.length ? Math.min(...at) : null;
    const lastClose = at.length ? Math.max(...at) : null;
    parentPort.postMessage({ t: 'result', v: { connected: connected.length, closedBeforeDrain, closedSeen: snap(), open, closes, bytesIn, msgs, types, firstClose, lastClose } });
    for (const p of peers) p.ws.terminate();
  });
};

// Two ordinary clients in "ctl": A sends B an offer every 50 ms between 'go' and 'stop'.
roles.control = async ({ port }) => {
  const sent = new Map();
  const lat = [];
  let seq = 0;
  const B = wsPeer(port, {
    onMessage: (type, m) => {
      if (type !== 'offer' || !m || !m.data || !sent.has(m.data.seq)) return;
      lat.push(performance.now() - sent.get(m.data.seq));
      sent.delete(m.data.seq);
    },
  });
  const A = wsPeer(port);
  await Promise.all([A.connected, B.connected]);
  A.send({ type: 'announce', networkName: 'ctl', data: { role: 'control-a' } });
  B.send({ type: 'announce', networkName: 'ctl', data: { role: 'control-b' } });
  const t0 = Date.now();
  while (Date.now() - t0 < 3000 && !(A.types['peer-discovered'] && B.types['peer-discovered'])) await sleep(20);
  let iv;
  parentPort.on('message', async (msg) => {
    if (msg === 'go') {
      iv = setInterval(() => {
        if (!A.isOpen()) return;
        const s = ++seq;
        sent.set(s, performance.now());
        A.send({ type: 'offer', targetPeerId: B.id, networkName: 'ctl', data: { type: 'offer', sdp: 'v=0 control pair', seq: s } });
      }, 50);
    } else if (msg === 'stop') {
      clearInterval(iv);
      await sleep(1500);
      const a = [...lat].sort((x, y) => x - y);
      const pct = (q) => (a.length ? a[Math.min(a.length - 1, Math.floor(q * a.length))] : null);
      parentPort.postMessage({ t: 'result', v: {
        sent: seq, received: a.length, lost: sent.size, p50: pct(0.5), p99: pct(0.99), max: a.length ? a[a.length - 1] : null,
        closed: [A, B].filter((p) => p.closed).map((p) => closeKey(p.closed)), open: [A, B].filter((p) => p.isOpen()).length,
      } });
      // the sockets stay open until the worker is ended: the server's peer count is read later
    }
  });
  parentPort.postMessage({ t: 'ready', v: { discovered: !!(A.types['peer-discovered'] && B.types['peer-discovered']) } });
};

// The attacker's client: a raw WebSocket on net that reads at socket speed and only looks at
// frame heads (an attacker has no reason to parse what it is sent; a ws client spends its CPU
// on that and is then cut off as a slow reader by its own slowness). Frames are masked with the
// all-zero key (legal: the MASK bit is set; the payload is then unchanged), so sending costs no
// XOR pass either. Small text frames are parsed for `error`; close frames give code and reason.
function rawWs(port) {
  const id = randomId();
  const s = net.connect({ port, host: '127.0.0.1', localAddress: ATTACK_ADDR });
  s.setNoDelay(true);
  const p = { id, sock: s, msgs: 0, types: {}, errors: {}, closed: null, lastError: null, open: false };
  const c = defer();
  p.connected = c.p;
  let up = false;
  let head = Buffer.alloc(0);
  let need = 0; // payload bytes of the current frame still to come
  let keep = null; // the payload being kept (small frames)
  let op = 0;
  const frameDone = (body) => {
    if (op === 8) {
      if (!p.closed) p.closed = { code: body && body.length >= 2 ? body.readUInt16BE(0) : 1005, reason: body && body.length > 2 ? body.subarray(2).toString() : '' };
      p.open = false;
      return;
    }
    if (op !== 1) return;
    p.msgs++;
    let type = '<big>';
    if (body) {
      try {
        const m = JSON.parse(body.toString());
        type = m.type;
        if (type === 'connected' && !p.open) { p.open = p.wasOpen = true; c.resolve(); }
        if (type === 'error') tally(p.errors, String(m.error !== undefined ? m.error : JSON.stringify(m)).slice(0, 100));
      } catch { type = '<unparsable>'; }
    } else if (p.peek) {
      const mm = /"type"\s*:\s*"([^"]{1,40})"/.exec(p.peek);
      if (mm) type = mm[1];
    }
    tally(p.types, type);
  };
  const onBytes = (d) => {
    let off = 0;
    while (off < d.length) {
      if (need > 0) {
        const n = Math.min(need, d.length - off);
        if (keep) keep.push(d.subarray(off, off + n));
        else if (!p.peek) p.peek = d.toString('latin1', off, off + Math.min(n, 160));
        need -= n;
        off += n;
        if (need === 0) { frameDone(keep ? Buffer.concat(keep) : null); keep = null; }
        continue;
      }
      const before = head.length; // head bytes from earlier chunks
      head = Buffer.concat([head, d.subarray(off, off + 14 - before)]);
      let len = head.length >= 2 ? head[1] & 127 : 0;
      let h = len === 126 ? 4 : len === 127 ? 10 : 2;
      if (head.length >= 2 && head[1] & 0x80) h += 4;
      if (head.length < h) { off += head.length - before; continue; } // the chunk ended in the head
      if (len === 126) len = head.readUInt16BE(2);
      else if (len === 127) len = Number(head.readBigUInt64BE(2));
      off += h - before;
      op = head[0] & 15;
      head = Buffer.alloc(0);
      p.peek = null;
      need = len;
      keep = len <= 4096 ? [] : null;
      if (len === 0) { frameDone(Buffer.alloc(0)); keep = null; }
    }
  };
  let hbuf = Buffer.alloc(0);
  s.on('connect', () => s.write(`GET /?peerId=${id} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
  s.on('data', (d) => {
    if (up) return onBytes(d);
    hbuf = Buffer.concat([hbuf, d]);
    const i = hbuf.indexOf('\r\n\r\n');
    if (i < 0) return;
    if (!/^HTTP\/1\.1 101/.test(hbuf.toString('latin1', 0, 16))) { c.reject(new Error('no 101: ' + hbuf.toString('latin1', 0, 60))); s.destroy(); return; }
    up = true;
    onBytes(hbuf.subarray(i + 4));
  });
  s.on('error', (e) => { p.lastError = e.code || e.message; c.reject(e); });
  s.on('close', () => { p.open = false; if (!p.closed) p.closed = { code: 1006, reason: 'TCP closed without a close frame' }; c.reject(new Error('closed')); });
  setTimeout(() => c.reject(new Error('no connected within 5000 ms')), 5000);
  const zeroMask = Buffer.alloc(4);
  p.send = (str) => {
    const b = Buffer.from(str);
    let h;
    if (b.length < 126) { h = Buffer.from([0x81, 0x80 | b.length]); }
    else if (b.length < 65536) { h = Buffer.alloc(4); h[0] = 0x81; h[1] = 0x80 | 126; h.writeUInt16BE(b.length, 2); }
    else { h = Buffer.alloc(10); h[0] = 0x81; h[1] = 0x80 | 127; h.writeBigUInt64BE(BigInt(b.length), 2); }
    s.write(Buffer.concat([h, zeroMask, b]));
  };
  p.isOpen = () => p.open && !s.destroyed;
  p.buffered = () => s.writableLength;
  p.bytesOut = () => s.bytesWritten;
  p.bytesIn = () => s.bytesRead;
  return p;
}

function attackerReport(c) {
  const closes = {};
  const errors = {};
  const types = {};
  let sentBytes = 0;
  let recvBytes = 0;
  let recvMsgs = 0;
  for (const p of c.conns) {
    if (p.closed && p.wasOpen) tally(closes, closeKey(p.closed));
    mergeTally(errors, p.errors);
    mergeTally(types, p.types);
    sentBytes += p.bytesOut();
    recvBytes += p.bytesIn();
    recvMsgs += p.msgs;
  }
  return {
    msgs: c.msgs, connections: c.conns.length, sentBytes, recvBytes, recvMsgs, types, errors, connectFails: c.connectFails,
    closed: Object.keys(closes).length ? fmtT(closes) : null, openPeers: c.conns.filter((p) => p.isOpen()).length,
  };
}

// Send as fast as the socket drains (under 1 MiB buffered) until `end`; next(i) gives message i.
async function blast(p, end, next, i0) {
  let msgs = 0;
  while (Date.now() < end && p.isOpen()) {
    let k = 0;
    while (p.buffered() < (1 << 20) && k++ < 16 && p.isOpen()) { p.send(next(i0 + msgs)); msgs++; }
    if (p.buffered() >= (1 << 20)) await sleep(1); else await new Promise((r) => setImmediate(r));
  }
  return msgs;
}

// One attacker for durationMs: when the server cuts it off it comes back at once with a new
// peer id (what an attacker on the open internet does), so the figures are of a sustained attack.
async function campaign(port, durationMs, next) {
  const c = { conns: [], msgs: 0, connectFails: {} };
  const end = Date.now() + durationMs;
  let first = true;
  while (Date.now() < end) {
    const p = rawWs(port);
    c.conns.push(p);
    try { await p.connected; } catch (e) { tally(c.connectFails, e.message); await sleep(50); continue; }
    if (first) { first = false; parentPort.postMessage({ t: 'ready', v: {} }); }
    c.msgs += await blast(p, end, next, c.msgs);
  }
  if (first) parentPort.postMessage({ t: 'ready', v: {} });
  await sleep(500);
  parentPort.postMessage({ t: 'done', v: attackerReport(c) });
  parentPort.on('message', (msg) => {
    if (msg === 'stop') parentPort.postMessage({ t: 'result', v: attackerReport(c) });
  });
}

// attacks 1, 2, 6: re-announce into `network` with PAD bytes of data, random or the same each time
roles.announce = async ({ port, network, random, durationMs }) => {
  const fixed = padString(PAD);
  const head = `{"type":"announce","networkName":${JSON.stringify(network)},"data":{"pad":"`;
  await campaign(port, durationMs, () => head + (random ? padString(PAD) : fixed) + '"}}');
};

// attack 3: announce "v", announce "w", goodbye, round and round
roles.switch = async ({ port, durationMs }) => {
  const seq = [
    JSON.stringify({ type: 'announce', networkName: 'v', data: { name: 'switcher', pad: 'x'.repeat(64) } }),
    JSON.stringify({ type: 'announce', networkName: 'w', data: { name: 'switcher', pad: 'x'.repeat(64) } }),
    JSON.stringify({ type: 'goodbye' }),
  ];
  await campaign(port, durationMs, (i) => seq[i % 3]);
};

// attack 4: as many WebSocket connections as possible from one local address in durationMs
roles.conns = async ({ port, localAddress, durationMs, maxConns, concurrency }) => {
  parentPort.postMessage({ t: 'ready', v: {} });
  const peers = [];
  let inflight = 0;
  const end = Date.now() + durationMs;
  while (Date.now() < end && peers.length < maxConns) {
    while (inflight < concurrency && peers.length < maxConns) {
      inflight++;
      const p = wsPeer(port, { localAddress, timeout: 4000 });
      peers.push(p);
      p.connected.then(() => { inflight--; }, () => { inflight--; });
    }
    await sleep(2);
  }
  const t0 = Date.now();
  while (inflight > 0 && Date.now() - t0 < 2000) await sleep(20);
  const report = () => {
    const closes = {};
    const errors = {};
    const serverErrors = {};
    let bytesOut = 0;
    let bytesIn = 0;
    for (const p of peers) {
      if (p.closed) tally(closes, closeKey(p.closed));
      else if (p.lastError) tally(errors, p.lastError);
      mergeTally(serverErrors, p.errors);
      bytesOut += p.bytesOut();
      bytesIn += p.bytesIn();
    }
    return {
      msgs: 0, attempted: peers.length, gotConnected: peers.filter((p) => p.gotConnected).length,
      openPeers: peers.filter((p) => p.isOpen() && p.gotConnected).length, pending: inflight,
      closes, socketErrors: errors, errors: serverErrors, sentBytes: bytesOut, recvBytes: bytesIn,
      closed: Object.keys(closes).length ? Object.entries(closes).map(([k, v]) => `${v}x ${k}`).join('; ') : null,
    };
  };
  parentPort.postMessage({ t: 'done', v: report() });
  parentPort.on('message', (msg) => {
    if (msg !== 'stop') return;
    parentPort.postMessage({ t: 'result', v: report() });
    for (const p of peers) p.ws.terminate();
  });
};

// attack 5: `conns` connections each pipelining `reqs` GET /hubs, never reading
roles.http = async ({ port, conns, reqs, holdMs }) => {
  const req = Buffer.from('GET /hubs HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(reqs));
  const socks = [];
  let closed = 0;
  let errs = {};
  await Promise.all(Array.from({ length: conns }, () => new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: ATTACK_ADDR });
    socks.push(s);
    s.on('connect', () => { s.write(req); s.pause(); resolve(); });
    s.on('error', (e) => { tally(errs, e.code || e.message); resolve(); });
    s.on('close', () => { closed++; resolve(); });
  })));
  parentPort.postMessage({ t: 'ready', v: {} });
  await sleep(holdMs);
  const report = () => ({
    msgs: conns * reqs, sentBytes: socks.reduce((a, s) => a + s.bytesWritten, 0), recvBytes: socks.reduce((a, s) => a + s.bytesRead, 0),
    errors: {}, socketErrors: errs, closed: closed ? `${closed} sockets closed (seen while not reading)` : null, openPeers: 0,
  });
  parentPort.postMessage({ t: 'done', v: report() });
  parentPort.on('message', (msg) => {
    if (msg !== 'stop') return;
    parentPort.postMessage({ t: 'result', v: report() });
    for (const s of socks) s.destroy();
  });
};

// Frames from the server (unmasked); returns the unparsed rest.
function serverFrames(buf, onFrame) {
  let off = 0;
  while (buf.length - off >= 2) {
    const b1 = buf[off + 1];
    let len = b1 & 127;
    let h = 2;
    if (len === 126) { if (buf.length - off < 4) break; len = buf.readUInt16BE(off + 2); h = 4; }
    else if (len === 127) { if (buf.length - off < 10) break; len = Number(buf.readBigUInt64BE(off + 2)); h = 10; }
    if (b1 & 0x80) h += 4;
    if (buf.length - off < h + len) break;
    onFrame(buf[off] & 15, buf.subarray(off + h, off + h + len));
    off += h + len;
  }
  return buf.subarray(off);
}

// attack 7: `conns` raw WebSocket connections; mode 'fragment': a first fragment (FIN=0, text,
// masked) of sendBytes of a message meant to be ~1 MiB, never continued; mode 'partial': one
// frame declaring frameBytes of which only sendBytes are sent.
roles.frag = async ({ port, conns, mode, sendBytes, frameBytes, holdMs }) => {
  const mask = crypto.randomBytes(4);
  const payload = Buffer.alloc(sendBytes, 0x61); // 'a': valid UTF-8 as far as it goes
  Buffer.from('{"type":"announce","networkName":"f","data":{"pad":"').copy(payload);
  for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  const head = Buffer.alloc(14);
  head[0] = mode === 'fragment' ? 0x01 : 0x81;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(mode === 'fragment' ? sendBytes : frameBytes), 2);
  mask.copy(head, 10);
  const st = { upgraded: 0, connected: 0, closeFrames: {}, eof: 0, errs: {}, sentFrame: 0 };
  const socks = [];
  await Promise.all(Array.from({ length: conns }, () => new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: ATTACK_ADDR });
    socks.push(s);
    const c = { up: false, buf: Buffer.alloc(0), closed: false, gotConnected: false };
    s.c = c;
    const key = crypto.randomBytes(16).toString('base64');
    s.on('connect', () => s.write(`GET /?peerId=${randomId()} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    s.on('data', (d) => {
      c.buf = Buffer.concat([c.buf, d]);
      if (!c.up) {
        const i = c.buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const ok = /^HTTP\/1\.1 101/.test(c.buf.toString('latin1', 0, 16));
        c.buf = c.buf.subarray(i + 4);
        c.up = true;
        if (!ok) { tally(st.errs, 'no 101'); resolve(); return; }
        st.upgraded++;
      }
      c.buf = serverFrames(c.buf, (op, body) => {
        if (op === 1 && !c.gotConnected && /"type":"connected"/.test(body.toString('latin1', 0, 64))) {
          c.gotConnected = true;
          st.connected++;
          s.write(head);
          s.write(payload);
          st.sentFrame++;
          resolve();
        } else if (op === 8 && !c.closed) {
          c.closed = true;
          tally(st.closeFrames, `${body.length >= 2 ? body.readUInt16BE(0) : ''} ${body.subarray(2).toString()}`.trim());
        }
      });
    });
    s.on('end', () => { st.eof++; resolve(); });
    s.on('error', (e) => { tally(st.errs, e.code || e.message); resolve(); });
    s.on('close', resolve);
    setTimeout(resolve, 5000);
  })));
  parentPort.postMessage({ t: 'ready', v: {} });
  await sleep(holdMs);
  const report = () => {
    const cf = Object.entries(st.closeFrames).map(([k, v]) => `${v}x ${k}`).join('; ');
    return {
      msgs: st.sentFrame, sentBytes: socks.reduce((a, s) => a + s.bytesWritten, 0), recvBytes: socks.reduce((a, s) => a + s.bytesRead, 0),
      upgraded: st.upgraded, gotConnected: st.connected, eof: st.eof, socketErrors: st.errs, errors: {},
      closed: cf || (st.eof ? `${st.eof} EOF without close frame` : null),
      openPeers: socks.filter((s) => s.c.gotConnected && !s.c.closed && !s.destroyed && !s.readableEnded).length,
    };
  };
  parentPort.postMessage({ t: 'done', v: report() });
  parentPort.on('message', (msg) => {
    if (msg !== 'stop') return;
    parentPort.postMessage({ t: 'result', v: report() });
    for (const s of socks) s.destroy();
  });
};

if (!isMainThread) {
  roles[workerData.role](workerData.args).catch((e) => {
    parentPort.postMessage({ t: 'fail', v: e && e.stack ? e.stack : String(e) });
  });
}

// ---------------------------------------------------------------- main thread

const BIN = process.env.PP_BIN || './peerpigeon';
const RSS_LIMIT_MB = +(process.env.PP_RSS_LIMIT_MB || 3000);
const ATTACK_LIMIT_MS = 60000;
const live = new Set(); // server processes

// Start the server and read its port from the `listening ... port N` line on stderr (as
// test/lib.js startServer does).
function startServer(env) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, [], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    live.add(proc);
    let log = '';
    let events = {};
    let port = 0;
    const srv = {
      proc, get port() { return port; }, get log() { return log; }, events,
      stopping: false, exit: null,
      exited: new Promise((r) => proc.on('exit', (code, sig) => { live.delete(proc); srv.exit = { code, sig, at: Date.now(), byUs: srv.stopping }; r({ code, sig }); })),
      async kill() {
        srv.stopping = true;
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 2000);
          await srv.exited;
          clearTimeout(t);
        }
        return srv.exited;
      },
    };
    let partial = '';
    proc.stderr.on('data', (d) => {
      const s = partial + d;
      const lines = s.split('\n');
      partial = lines.pop();
      for (const l of lines) {
        const m = /peerpigeon (\w+) \[([^\]]+)\]/.exec(l);
        if (m && m[1] !== 'info' && m[1] !== 'debug') tally(events, `${m[1]}[${m[2]}]`);
      }
      if (log.length < 65536) log += d;
      const m = /listening on \S+ port (\d+)/.exec(log);
      if (m && !port) { port = +m[1]; resolve(srv); }
    });
    proc.on('exit', (code) => { if (!port) reject(new Error(`server exited ${code}: ${log}`)); });
    proc.on('error', (e) => reject(e));
    setTimeout(() => { if (!port) reject(new Error('server did not start: ' + log)); }, 5000);
  });
}

function startWorker(ctx, role, args) {
  const w = new Worker(__filename, { workerData: { role, args } });
  ctx.workers.push(w);
  const d = { ready: defer(), done: defer(), result: defer() };
  const failAll = (e) => { for (const k in d) d[k].reject(e); };
  w.on('message', (m) => {
    if (m.t === 'fail') failAll(new Error(`${role} worker: ${m.v}`));
    else if (d[m.t]) d[m.t].resolve(m.v);
  });
  w.on('error', (e) => failAll(e));
  w.on('exit', (c) => failAll(new Error(`${role} worker exited ${c}`)));
  return {
    ready: (ms = 20000) => withTimeout(d.ready.p, ms, `${role} ready`),
    done: (ms = 30000) => withTimeout(d.done.p, ms, `${role} done`),
    post: (m) => w.postMessage(m),
    stop: (ms = 10000) => { w.postMessage('stop'); return withTimeout(d.result.p, ms, `${role} stop`); },
  };
}

const delta = (m0, m1, k) => (m0 && m1 ? (m1[k] || 0) - (m0[k] || 0) : null);
function closeDeltas(m0, m1, kind) {
  const out = {};
  if (!m0 || !m1) return out;
  for (const k in m1) {
    const m = new RegExp(`^connections_closed_total\\{kind="${kind}",reason="([^"]+)"\\}$`).exec(k);
    if (m) { const v = m1[k] - (m0[k] || 0); if (v) out[m[1]] = v; }
  }
  return out;
}

// One attack against a fresh server: honest groups, the control pair, the attacker, the tally.
async function runAttack(spec) {
  const ctx = { workers: [], srv: null };
  const cleanup = async () => {
    await Promise.all(ctx.workers.map((w) => w.terminate().catch(() => {})));
    if (ctx.srv) await ctx.srv.kill();
  };
  const body = async () => {
    const srv = ctx.srv = await startServer({ MAX_CONNECTIONS: '2000', ...spec.env });
    const port = srv.port;
    const poller = startWorker(ctx, 'poller', { pid: srv.proc.pid, port, limitMb: RSS_LIMIT_MB });
    await poller.ready();
    const groups = [];
    for (const g of spec.groups) {
      const w = startWorker(ctx, 'victims', { port, ...g });
      groups.push({ g, w, ready: await w.ready(30000) });
    }
    const control = startWorker(ctx, 'control', { port });
    const cready = await control.ready();
    const m0 = await metrics(port);
    const t0 = Date.now();
    control.post('go');
    const attacker = startWorker(ctx, spec.attacker.role, { port, ...spec.attacker.args });
    await attacker.ready();
    const adone = await attacker.done(45000);
    const attackMs = Date.now() - t0;
    const after = spec.after ? await spec.after(ctx, port) : null;
    const ctl = await control.stop();
    await sleep(1000); // closes in their grace period are counted when gone
    const m1 = await metrics(port, 5000).catch((e) => ({ error: e.message }));
    const poll = await poller.stop();
    const vres = [];
    for (const g of groups) vres.push({ g: g.g, ready: g.ready, res: await g.w.stop(15000).catch((e) => ({ error: e.message })) });
    const ares = await attacker.stop().catch(() => adone);
    const exited = srv.exit;
    const logTail = exited ? srv.log.split('\n').slice(-4).join(' / ') : '';
    return { logTail, spec, port, m0, m1: m1.error ? null : m1, m1err: m1.error, t0, attackMs, cready, ctl, poll, vres, adone, ares, after, exited, events: srv.events };
  };
  try {
    return await withTimeout(body(), ATTACK_LIMIT_MS, `attack ${spec.key}`);
  } catch (e) {
    return { spec, error: e && e.message ? e.message : String(e), events: ctx.srv ? ctx.srv.events : {} };
  } finally {
    await cleanup();
  }
}

const MB = (b) => (b === null || b === undefined || Number.isNaN(b) ? 'n/a' : (b / 1048576).toFixed(1));
const ms = (x) => (x === null || x === undefined ? 'n/a' : x < 10 ? x.toFixed(2) : x.toFixed(0));

function summarize(r) {
  const s = r.spec;
  if (r.error) return { key: s.key, name: s.name, error: r.error, line: `[${s.key}] ${s.name}: FAILED: ${r.error}${Object.keys(r.events).length ? ' | server log: ' + fmtT(r.events) : ''}` };
  const honest = r.vres.reduce((a, v) => a + v.ready.connected, 0);
  const seen = r.vres.reduce((a, v) => a + (v.res.closedSeen || 0), 0);
  const atk = r.adone;
  // honest peers left = connected peers now, less the attacker's open ones and the control pair
  let cutServer = null;
  if (r.m1) {
    const left = r.m1.peers - (atk.openPeers || 0) - (r.ctl.open || 0) - (r.after && r.after.connected || 0);
    cutServer = honest - left;
  }
  const sent = delta(r.m0, r.m1, 'sent_bytes_total');
  const recv = delta(r.m0, r.m1, 'received_bytes_total');
  const amp = sent !== null && atk.sentBytes ? sent / atk.sentBytes : null;
  const wsCloses = closeDeltas(r.m0, r.m1, 'websocket');
  const httpCloses = closeDeltas(r.m0, r.m1, 'http');
  const errs = fmtT(atk.errors);
  const o = {
    key: s.key, name: s.name,
    rss: Math.max(r.poll.peakKb, r.poll.hwmKb) * 1024, polled: r.poll.peakKb * 1024, hwm: r.poll.hwmKb * 1024, startRss: r.poll.startKb * 1024, queued: r.poll.peakQueued,
    atkSent: atk.sentBytes, srvSent: sent, srvRecv: recv, amp,
    honest, cutServer, seen, ctl: r.ctl,
    atkClosed: atk.closed || 'no', errs: errs || 'none',
    killed: r.poll.killed,
  };
  const extra = [];
  if (r.m0 && r.m0.peers !== honest + 2) extra.push(`peer gauge before the attack ${r.m0.peers}, expected ${honest + 2}`);
  if (atk.attempted !== undefined) extra.push(`attempted ${atk.attempted}, got connected ${atk.gotConnected}, pending ${atk.pending}${Object.keys(atk.socketErrors || {}).length ? ', socket errors ' + fmtT(atk.socketErrors) : ''}`);
  if (atk.upgraded !== undefined) extra.push(`upgraded ${atk.upgraded}, connected ${atk.gotConnected}, frames started ${atk.msgs}, still open ${atk.openPeers}`);
  if (r.after) extra.push(r.after.text);
  for (const v of r.vres) {
    if (v.res.error) continue;
    const when = v.res.firstClose ? `, closed at +${((v.res.firstClose - r.t0) / 1000).toFixed(1)}..+${((v.res.lastClose - r.t0) / 1000).toFixed(1)} s (${fmtT(v.res.closes)})` : '';
    extra.push(`${v.g.name} (${v.g.n}, ${v.g.mode}) read ${MB(v.res.bytesIn)} MB in ${v.res.msgs} msgs${when}`);
  }
  if (atk.connections !== undefined) extra.push(`attacker: ${atk.msgs} msgs on ${atk.connections} connection(s), got ${atk.recvMsgs} msgs / ${MB(atk.recvBytes)} MB back${Object.keys(atk.connectFails).length ? ', connect failures ' + fmtT(atk.connectFails) : ''}`);
  if (Object.keys(wsCloses).length) extra.push(`ws closes: ${fmtT(wsCloses)}`);
  if (Object.keys(httpCloses).length) extra.push(`http closes: ${fmtT(httpCloses)}`);
  if (r.poll.killed) extra.push(`SERVER KILLED at RSS > ${RSS_LIMIT_MB} MB`);
  if (r.exited && !r.poll.killed) extra.push(`SERVER EXITED at +${((r.exited.at - r.t0) / 1000).toFixed(1)} s, code ${r.exited.code} signal ${r.exited.sig}, not stopped by this script (a SIGTERM/SIGINT from outside gives code 0 and "server shutting down"); log tail: ${r.logTail}`);
  if (Object.keys(r.events).length) extra.push(`server log: ${fmtT(r.events)}`);
  if (r.m1err) extra.push(`metrics after: ${r.m1err}`);
  for (const v of r.vres) if (v.res.error) extra.push(`victims stop: ${v.res.error}`);
  o.notes = extra.join('; ');
  const ctl = r.ctl;
  o.line = `[${s.key}] ${s.name}: peak RSS ${MB(o.rss)} MB (polled ${MB(o.polled)}, VmHWM ${MB(o.hwm)}, start ${MB(o.startRss)}), peak queued output ${MB(o.queued)} MB | ` +
    `attacker sent ${MB(o.atkSent)} MB in ${(r.attackMs / 1000).toFixed(1)} s, server sent ${MB(sent)} MB (x${amp === null ? 'n/a' : amp.toFixed(1)}), received ${MB(recv)} MB | ` +
    `honest cut off ${cutServer === null ? 'n/a' : cutServer}/${honest} (clients saw ${seen}) | ` +
    `control p50 ${ms(ctl.p50)} ms p99 ${ms(ctl.p99)} ms max ${ms(ctl.max)} ms lost ${ctl.lost}/${ctl.sent}${ctl.closed.length ? ' CLOSED ' + ctl.closed.join(', ') : ''} | ` +
    `attacker closed: ${o.atkClosed}; errors to it: ${o.errs}` + (o.notes ? ` | ${o.notes}` : '');
  return o;
}

const SLOW80 = { name: 'victims', n: 80, network: 'v', mode: 'slow', data: { role: 'victim' } };
const ATTACKS = [
  { key: '1', name: 're-announce storm, random 16 KiB data, 80 slow victims', env: {}, groups: [SLOW80],
    attacker: { role: 'announce', args: { network: 'v', random: true, durationMs: 10000 } } },
  { key: '2', name: 'identical re-announce, same 16 KiB data, 80 slow victims', env: {}, groups: [SLOW80],
    attacker: { role: 'announce', args: { network: 'v', random: false, durationMs: 10000 } } },
  { key: '3', name: 'goodbye/network-switch storm (v, w, goodbye), 80 reading victims', env: {},
    groups: [{ ...SLOW80, mode: 'normal' }], attacker: { role: 'switch', args: { durationMs: 10000 } } },
  { key: '4', name: 'one address (127.0.0.2) opens all it can in 2 s', env: {},
    groups: [{ name: 'victims', n: 20, network: 'v', mode: 'normal' }],
    attacker: { role: 'conns', args: { localAddress: '127.0.0.2', durationMs: 2000, maxConns: 8000, concurrency: 256 } },
    // then: can an honest newcomer (127.0.0.1) still get in?
    after: async (ctx, port) => {
      const w = startWorker(ctx, 'victims', { port, n: 10, network: 'v', mode: 'normal', timeout: 3000 });
      const r = await w.ready(10000);
      return { connected: r.connected, text: `honest newcomers after the fill: ${r.connected}/10 got connected${Object.keys(r.failed).length ? ' (' + fmtT(r.failed) + ')' : ''}` };
    } },
  { key: '5', name: 'HTTP: 100 conns x 50 pipelined GET /hubs, never read (hub, 50 hubs x 16 KiB)', env: { IS_HUB: 'true' },
    groups: [{ name: 'hubs', n: 50, network: 'pigeonhub-mesh', mode: 'normal', data: { isHub: true }, hubPad: PAD },
      { name: 'victims', n: 20, network: 'v', mode: 'normal' }],
    attacker: { role: 'http', args: { conns: 100, reqs: 50, holdMs: 8000 } } },
  { key: '6', name: '100 non-reading clients in one network, attacker re-announces 16 KiB', env: {},
    groups: [{ name: 'victims', n: 100, network: 'v', mode: 'paused' }],
    attacker: { role: 'announce', args: { network: 'v', random: true, durationMs: 10000 } } },
  { key: '7', name: '200 first fragments of 512 KiB (of ~1 MiB messages) held', env: {},
    groups: [{ name: 'victims', n: 20, network: 'v', mode: 'normal' }],
    attacker: { role: 'frag', args: { conns: 200, mode: 'fragment', sendBytes: 512 << 10, holdMs: 8000 } } },
  { key: '7b', name: '200 frames declaring ~1 MiB, 512 KiB sent, held', env: {},
    groups: [{ name: 'victims', n: 20, network: 'v', mode: 'normal' }],
    attacker: { role: 'frag', args: { conns: 200, mode: 'partial', sendBytes: 512 << 10, frameBytes: (1 << 20) - 1024, holdMs: 8000 } } },
];

async function main() {
  const only = process.argv.slice(2);
  const list = only.length ? ATTACKS.filter((a) => only.includes(a.key)) : ATTACKS;
  console.log(`# bench/attack.js: ${BIN} (${fs.existsSync(BIN) ? fs.statSync(BIN).size + ' B' : 'missing'}), ${new Date().toISOString()}, ${require('os').cpus().length} CPUs, RSS limit ${RSS_LIMIT_MB} MB`);
  const rows = [];
  for (const a of list) {
    const r = await runAttack(a);
    const o = summarize(r);
    console.log(o.line);
    rows.push(o);
  }
  console.log('');
  console.log('| # | attack | peak RSS MB | peak queued MB | attacker sent MB | server sent MB | amplification | honest cut off (server / seen) | control p50 / p99 ms (lost) | attacker closed | errors to attacker |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const o of rows) {
    if (o.error) { console.log(`| ${o.key} | ${o.name} | FAILED: ${o.error.replace(/\|/g, '/').slice(0, 200)} | | | | | | | | |`); continue; }
    const c = o.ctl;
    console.log(`| ${o.key} | ${o.name} | ${MB(o.rss)}${o.killed ? ' (killed)' : ''} | ${MB(o.queued)} | ${MB(o.atkSent)} | ${MB(o.srvSent)} | ${o.amp === null ? 'n/a' : 'x' + o.amp.toFixed(1)} | ${o.cutServer === null ? 'n/a' : o.cutServer}/${o.honest} / ${o.seen} | ${ms(c.p50)} / ${ms(c.p99)} (${c.lost}/${c.sent})${c.closed.length ? ' closed' : ''} | ${String(o.atkClosed).replace(/\|/g, '/')} | ${o.errs.replace(/\|/g, '/')} |`);
  }
}

if (isMainThread) {
  const killAll = () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });
  main().catch((e) => { console.error(e); killAll(); process.exitCode = 1; }).finally(() => { killAll(); setTimeout(() => process.exit(process.exitCode || 0), 200).unref(); });
}
