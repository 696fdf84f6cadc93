// test/hub.js - hub mode (PROTOCOL.md section 5) end to end: two hubs, chains and triangles,
// faults (a hub killed and restarted on the same port, bootstrap URLs that refuse, hang or
// answer garbage, bad and wss:// URLs), and interop with the JS reference hub
// (npm peerpigeon@1.1.3 PeerPigeonServer, isHub: true) in both directions, with raw `ws` clients
// and with the real SignalingClient.
//
// Everything listens on 127.0.0.1. The JS hub runs in a child process (it is chatty and installs
// globals); its log is kept and printed only with PP_VERBOSE=1 or when a JS test fails.
//
// JS-hub limitations met here (see /tmp/hubnotes.md; they are the JS hub's, not ours):
//  - A hub that dials a JS hub cannot tell the JS clients that a remote peer left: the JS hub
//    answers `peer-disconnected` on an inbound hub connection with an `error` ("does not route").
//    So in (a) below the JS client never hears that our client went; we only check that our hub
//    and the link survive the error reply.
//  - A JS hub does not cache peers pushed to it by an inbound hub (our hub dialling it), so a JS
//    client that announces later would never learn of them; our hub works around that by
//    replaying its peers on the link whenever the JS hub tells it of a new peer. The test runs
//    that order ("ours first") to cover the workaround.
//  - The JS hub may deliver the same peer-discovered more than once (no dedup on its side, and
//    our replay resends); discovery at JS clients is checked as "at least once", signalling as
//    exactly once.
//  - The JS hub waits ~1 s after start before it dials, retries at a fixed 5 s, and gives up
//    after 10 attempts over its life, so every JS test starts our hub first when the JS hub dials.
//  - The JS hub with an empty bootstrapHubs list dials ws://<host>:3000; it is given a closed
//    port instead so that nothing else on this machine is ever dialled.
'use strict';
const util = require('util');
const net = require('net');
const { spawn } = require('child_process');
const lib = require('./lib');
const { check, eq, run, startServer, joined, request, sleep, waitFor, freePort, getJson, randomId } = lib;

const PKG = `${require('./lib.js').DEPS}/peerpigeon`;
const HEX40 = /^[0-9a-f]{40}$/;
const NS = 'pigeonhub-mesh';

// ---- quiet the npm client library (it logs a lot); keep our own lines ----------------------
const realLog = console.log.bind(console);
if (!process.env.PP_VERBOSE) {
  const keep = (s) => /^FAIL |^\d+ passed, \d+ failed$|^NOTE /.test(s);
  console.log = (...a) => { const s = util.format(...a); if (keep(s)) realLog(s); };
  console.info = console.debug = console.warn = console.error = () => {};
}
const note = (s) => console.log(`NOTE ${s}`);

// ---- helpers --------------------------------------------------------------------------------
const hubEnv = (extra = {}) => ({ IS_HUB: 'true', LOG_LEVEL: 'debug', ...extra });
const short = (id) => (id ? id.slice(0, 8) : String(id));
// A hub of ours that dies: its clients are gone everywhere once it has been unheard on every
// path for ORIGIN_TIMEOUT_MS (4 s, hub.c), checked once per tick (1 s at the default ping).
const DEAD_HUB_MS = 6000;
const SIGNALS = ['offer', 'answer', 'ice-candidate'];

async function hubstats(srv) { return getJson(srv, '/hubstats'); }
async function metricsOf(srv) {
  const r = await lib.request(srv, '/metrics');
  const out = {};
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = +line.slice(i + 1);
  }
  return out;
}
// Wait until srv has n connected outbound links.
async function linksUp(srv, n = 1, ms = 5000) {
  return waitFor(async () => (await hubstats(srv)).bootstrapHubs.filter((b) => b.connected).length >= n, ms, `${n} link(s) up on :${srv.port}`);
}
// Wait until srv lists hub id `id` among its inbound hubs.
async function hasHub(srv, id, ms = 5000) {
  return waitFor(async () => (await getJson(srv, '/hubs')).hubs.some((h) => h.peerId === id), ms, `hub ${short(id)} on :${srv.port}`);
}

// All messages of a type about a peer (by data.peerId) or from a peer.
const about = (c, type, id) => c.all(type).filter((m) => m.data && m.data.peerId === id);

// Wait for a peer-discovered about `id` at client c (the message stays queued) and check its
// envelope. Returns the message.
async function discovers(c, id, network, what, ms = 2000) {
  let m;
  try {
    m = await waitFor(() => about(c, 'peer-discovered', id)[0], ms, `${what}: ${short(c.id)} discovers ${short(id)}`);
  } catch (e) {
    check(false, `${what}: ${short(c.id)} discovers ${short(id)} within ${ms} ms`, c.queue.map((x) => x.type));
    return null;
  }
  eq([m.data.peerId, m.data.isHub, m.networkName, m.fromPeerId, m.targetPeerId],
    [id, false, network, 'system', c.id], `${what}: peer-discovered envelope at ${short(c.id)}`);
  check(typeof m.timestamp === 'number', `${what}: peer-discovered has a timestamp`, m);
  return m;
}

// x sends each signal type to y (and y to x); each arrives once, exact; nothing extra after
// 300 ms. `tag` makes the data unique per call.
async function signalsCross(x, y, network, what, { both = true, ms = 2000 } = {}) {
  const pairs = both ? [[x, y], [y, x]] : [[x, y]];
  const sent = [];
  for (const [from, to] of pairs) {
    for (const type of SIGNALS) {
      const data = { type, tag: `${what}:${short(from.id)}->${short(to.id)}`, n: Math.random(), sdp: 'v=0\r\na=x:"q" \u00fc\u{1F426}' };
      from.send({ type, targetPeerId: to.id, networkName: network, data });
      sent.push({ from, to, type, data });
    }
  }
  for (const s of sent) {
    let m;
    try {
      m = await waitFor(() => s.to.all(s.type).find((q) => q.data && q.data.tag === s.data.tag && q.data.n === s.data.n), ms, 'signal');
    } catch {
      check(false, `${what}: ${s.type} ${short(s.from.id)}->${short(s.to.id)} delivered`, s.to.queue.map((q) => q.type));
      continue;
    }
    eq([m.type, m.fromPeerId, m.targetPeerId, m.networkName, m.data], [s.type, s.from.id, s.to.id, network, s.data],
      `${what}: ${s.type} ${short(s.from.id)}->${short(s.to.id)} envelope and data exact`);
  }
  await sleep(300);
  for (const s of sent) {
    const n = s.to.all(s.type).filter((q) => q.data && q.data.tag === s.data.tag && q.data.n === s.data.n).length;
    check(n === 1, `${what}: ${s.type} ${short(s.from.id)}->${short(s.to.id)} delivered exactly once`, n);
    const echo = s.from.all(s.type).filter((q) => q.data && q.data.n === s.data.n).length;
    check(echo === 0, `${what}: no echo of ${s.type} to its sender`, echo);
  }
  for (const s of sent) s.to.drop(s.type);
}

// Exactly one message of `type` about `id` at c after a 300 ms quiet period.
async function exactlyOne(c, type, id, what, ms = 2000) {
  try {
    await waitFor(() => about(c, type, id).length >= 1, ms, `${type} about ${short(id)}`);
  } catch { /* counted below */ }
  await sleep(300);
  const n = about(c, type, id).length;
  check(n === 1, `${what}: exactly one ${type} about ${short(id)} at ${short(c.id)}`, n);
  return about(c, type, id)[0];
}

const closeAll = async (...cs) => { for (const c of cs) if (c && c.ws.readyState <= 1) await c.close(); };

const runToExit = lib.runToExit;

// ---- fake bootstrap targets ------------------------------------------------------------------
// kind: 'silent' accepts and never writes; 'garbage' answers a 200 with a body and closes.
function fakeHub(kind) {
  return new Promise((resolve) => {
    const f = { kind, accepted: 0, requests: [], sockets: new Set() };
    f.server = net.createServer((s) => {
      f.accepted++;
      f.sockets.add(s);
      s.on('close', () => f.sockets.delete(s));
      s.on('error', () => {});
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.includes('\r\n\r\n')) {
          f.requests.push(buf);
          buf = '';
          if (kind === 'garbage') s.end('HTTP/1.1 200 OK\r\n\r\nhello');
        }
      });
    });
    f.server.listen(0, '127.0.0.1', () => { f.port = f.server.address().port; resolve(f); });
    f.close = () => { for (const s of f.sockets) s.destroy(); f.server.close(); };
  });
}

// A scripted hub that accepts our hub's dial: completes the handshake, records the (masked)
// frames it gets, sends what the test says, and never answers pings (so it goes half-open).
function scriptedHub() {
  const crypto = require('crypto');
  return new Promise((resolve) => {
    const f = { conns: [], onOpen: null };
    f.server = net.createServer((s) => {
      const c = { s, req: '', frames: [], unmasked: 0, buf: Buffer.alloc(0), open: false };
      f.conns.push(c);
      s.on('error', () => {});
      s.on('data', (d) => {
        c.buf = Buffer.concat([c.buf, d]);
        if (!c.open) {
          const i = c.buf.indexOf('\r\n\r\n');
          if (i < 0) return;
          c.req = c.buf.subarray(0, i).toString('latin1');
          c.buf = c.buf.subarray(i + 4);
          const key = /sec-websocket-key: *(\S+)/i.exec(c.req)[1];
          const acc = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
          s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acc}\r\n\r\n`);
          c.open = true;
          if (f.onOpen) f.onOpen(c);
        }
        // client frames: masked
        for (;;) {
          const b = c.buf;
          if (b.length < 2) break;
          let len = b[1] & 127;
          let h = 2;
          if (len === 126) { if (b.length < 4) break; len = b.readUInt16BE(2); h = 4; } else if (len === 127) { if (b.length < 10) break; len = Number(b.readBigUInt64BE(2)); h = 10; }
          const masked = !!(b[1] & 0x80);
          if (!masked) c.unmasked++;
          const mk = masked ? b.subarray(h, h + 4) : null;
          if (masked) h += 4;
          if (b.length < h + len) break;
          const pl = Buffer.from(b.subarray(h, h + len));
          if (mk) for (let k = 0; k < pl.length; k++) pl[k] ^= mk[k & 3];
          c.frames.push({ opcode: b[0] & 15, text: pl.toString() });
          c.buf = b.subarray(h + len);
        }
      });
      c.send = (obj) => {
        const p = Buffer.from(JSON.stringify(obj));
        const head = p.length < 126 ? Buffer.from([0x81, p.length]) : Buffer.from([0x81, 126, p.length >> 8, p.length & 255]);
        s.write(Buffer.concat([head, p]));
      };
      c.msgs = () => c.frames.filter((x) => x.opcode === 1).map((x) => JSON.parse(x.text));
    });
    f.server.listen(0, '127.0.0.1', () => { f.port = f.server.address().port; resolve(f); });
    f.close = () => { for (const c of f.conns) c.s.destroy(); f.server.close(); };
  });
}

// ---- the JS reference hub in a child process -------------------------------------------------
const JSHUB = `
const { PeerPigeonServer } = await import(process.env.PP_PKG + '/server/index.js');
const s = new PeerPigeonServer(JSON.parse(process.env.PP_JSOPTS));
process.on('SIGTERM', () => process.exit(0));
await s.start();
console.log('JSHUB-READY ' + s.port + ' ' + s.hubPeerId);
`;
const jsHubs = new Set();
async function startJsHub(opts) {
  const port = await freePort();
  const hubPeerId = randomId();
  const o = { port, host: '127.0.0.1', isHub: true, hubPeerId, ...opts };
  const proc = spawn(process.execPath, ['--input-type=module', '-e', JSHUB], {
    env: { ...process.env, PP_PKG: PKG, PP_JSOPTS: JSON.stringify(o) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const j = { proc, hubPeerId, get log() { return log; }, port: 0, url: () => `ws://127.0.0.1:${j.port}/` };
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  jsHubs.add(j);
  j.stop = () => { jsHubs.delete(j); proc.kill('SIGKILL'); };
  await waitFor(() => /started on ws:\/\/[^:]+:(\d+)/.test(log) || proc.exitCode !== null, 8000, 'JS hub start');
  const m = /started on ws:\/\/[^:]+:(\d+)/.exec(log);
  if (!m) throw new Error('JS hub did not start: ' + log.slice(-2000));
  j.port = +m[1];
  return j;
}
process.on('exit', () => { for (const j of jsHubs) j.proc.kill('SIGKILL'); });

// ---- the real client (npm SignalingClient) in this process -----------------------------------
const WS = lib.WebSocket;
class QuietWS extends WS {
  constructor(url, protocols, opts) { super(url, protocols, { perMessageDeflate: false, ...(opts || {}) }); this.on('error', () => {}); }
}
let PP;
async function sigClient(srv, network) {
  if (!PP) {
    globalThis.WebSocket = QuietWS;
    PP = await import(`${PKG}/index.js`);
  }
  const id = randomId();
  const sc = new PP.SignalingClient(id, 10, { networkName: network });
  const c = { id, sc, msgs: [] };
  sc.addEventListener('signalingMessage', (m) => c.msgs.push(m));
  await sc.connect(srv.url());
  c.of = (type) => c.msgs.filter((m) => m.type === type);
  c.discovered = () => c.of('peer-discovered').map((m) => m.data && m.data.peerId);
  c.close = () => { try { sc.disconnect(); } catch { /* gone */ } };
  return c;
}

// ---- 1. two hubs ------------------------------------------------------------------------------
const B_ID = randomId();
let A;
let B;

async function twoHubsOrder(first) {
  const net1 = `two-${first}`;
  const a = await joined(A, undefined);
  const b = await joined(B, undefined);
  const other = await joined(A, 'elsewhere'); // another network on A: must hear nothing of net1
  const [x, y] = first === 'A' ? [a, b] : [b, a];
  const t0 = Date.now();
  x.send({ type: 'announce', networkName: net1, data: { peerId: x.id } });
  await sleep(100);
  y.send({ type: 'announce', networkName: net1, data: { peerId: y.id } });
  const what = `two hubs, ${first} announces first`;
  await discovers(a, b.id, net1, what);
  await discovers(b, a.id, net1, what);
  check(Date.now() - t0 < 2200, `${what}: discovery within 2 s`, Date.now() - t0);
  await sleep(300);
  check(about(a, 'peer-discovered', b.id).length === 1 && about(b, 'peer-discovered', a.id).length === 1,
    `${what}: each discovered exactly once`, [about(a, 'peer-discovered', b.id).length, about(b, 'peer-discovered', a.id).length]);
  eq(a.all('peer-discovered').length + b.all('peer-discovered').length, 2, `${what}: no other peer-discovered`);
  a.drop('peer-discovered');
  b.drop('peer-discovered');
  await signalsCross(a, b, net1, what);

  // a late joiner on A discovers B's client (and vice versa), once
  const late = await joined(A, net1);
  await discovers(late, b.id, net1, `${what}, late joiner on A`);
  await discovers(late, a.id, net1, `${what}, late joiner on A`);
  await discovers(b, late.id, net1, `${what}, late joiner on A`);
  await sleep(300);
  eq(about(b, 'peer-discovered', late.id).length, 1, `${what}: B's client hears of the late joiner once`);
  eq(about(late, 'peer-discovered', b.id).length, 1, `${what}: late joiner hears of B's client once`);
  await signalsCross(late, b, net1, `${what}, late joiner`, { both: true });

  // B's client leaves: exactly one peer-disconnected at each A client of net1
  await b.close();
  const pd = await exactlyOne(a, 'peer-disconnected', b.id, `${what}, B client leaves`);
  if (pd) {
    eq([pd.networkName, pd.fromPeerId, pd.targetPeerId, pd.data.isHub], [net1, 'system', a.id, false], `${what}: peer-disconnected envelope`);
    check(typeof pd.data.reason === 'string', `${what}: peer-disconnected has a reason`, pd.data);
  }
  await exactlyOne(late, 'peer-disconnected', b.id, `${what}, B client leaves`);
  // isolation: the client of another network on A got nothing at all
  check(other.queue.length === 0, `${what}: a client of another network on A hears nothing`, other.queue.map((m) => [m.type, m.data && short(m.data.peerId)]));
  await closeAll(a, late, other);
  await sleep(100);
}

// ---- 3. faults: helpers shared by two tests --------------------------------------------------
let badHub;
let fakes;
let refusedPort;

// Run fn with the JS hub J and our hub O; both are stopped afterwards, and the JS hub's log is
// shown on failure with PP_VERBOSE.
async function withJsHub(J, O, fn) {
  try {
    await fn();
  } catch (e) {
    if (process.env.PP_VERBOSE) realLog(J.log);
    throw e;
  } finally {
    J.stop();
    await O.stop();
  }
}

// The real npm client on the JS hub J and on ours O (jsFirst: which connects first): they
// discover each other and signals cross.
async function realBothSides(J, O, tag, jsFirst) {
  const first = await sigClient(jsFirst ? J : O, `j${tag}-real`);
  await sleep(200);
  const second = await sigClient(jsFirst ? O : J, `j${tag}-real`);
  const [sj, so] = jsFirst ? [first, second] : [second, first];
  const met = await waitFor(() => so.discovered().includes(sj.id) && sj.discovered().includes(so.id), 3000, `(${tag}) real clients discover each other`)
    .then(() => true, () => false);
  check(met, `(${tag}) real clients discover each other`, [so.discovered(), sj.discovered()]);
  await realSignals(sj, so, `(${tag}) real`);
  so.close();
  sj.close();
}

// Both announce orders between a client of the JS hub J and one of ours on O: each discovers the
// other exactly once, nobody is told about itself, signals cross; then leave() checks a departure.
async function jsBothOrders(J, O, tag, leave) {
  for (const first of ['js', 'ours']) {
    const what = `(${tag}) ${first} announces first`;
    const network = `j${tag}-${first}`;
    const jc = await joined(J, undefined);
    const oc = await joined(O, undefined);
    const [x, y] = first === 'js' ? [jc, oc] : [oc, jc];
    x.send({ type: 'announce', networkName: network, data: { peerId: x.id } });
    await sleep(300);
    y.send({ type: 'announce', networkName: network, data: { peerId: y.id } });
    await discovers(oc, jc.id, network, what);
    await discovers(jc, oc.id, network, what, 3000);
    await sleep(300);
    eq(about(oc, 'peer-discovered', jc.id).length, 1, `${what}: our client discovers the JS client exactly once`);
    eq(about(jc, 'peer-discovered', jc.id).length, 0, `${what}: the JS client is never told about itself (split horizon)`);
    await signalsCross(oc, jc, network, what);
    await leave(jc, oc, what, network);
  }
}

// ---- a fake DNS server (UDP on 127.0.0.1, random port) -----------------------------------------
// answer(q) returns the datagrams to send for query q = { id, name, qtype, raw }; [] = silent.
// The hub finds it through the test hooks PP_RESOLV_CONF (a resolv.conf naming 127.0.0.1) and
// PP_DNS_PORT.
const dgram = require('dgram');
function fakeDns(answer) {
  return new Promise((resolve) => {
    const d = { queries: [] };
    d.sock = dgram.createSocket('udp4');
    d.sock.on('message', (buf, rinfo) => {
      let off = 12;
      const labels = [];
      while (off < buf.length && buf[off] !== 0) { labels.push(buf.subarray(off + 1, off + 1 + buf[off]).toString('latin1')); off += 1 + buf[off]; }
      const q = { id: buf.readUInt16BE(0), flags: buf.readUInt16BE(2), name: labels.join('.'), qtype: buf.readUInt16BE(off + 1), raw: buf, at: Date.now() };
      d.queries.push(q);
      for (const out of answer(q)) d.sock.send(out, rinfo.port, rinfo.address);
    });
    d.sock.bind(0, '127.0.0.1', () => { d.port = d.sock.address().port; resolve(d); });
    d.close = () => d.sock.close();
  });
}
// A response to q: rcode, and A records (dotted quads) for the question's name.
function dnsReply(q, { rcode = 0, a = [], id = q.id, cutAt } = {}) {
  const qlen = q.raw.length - 12;
  const hdr = Buffer.alloc(12);
  hdr.writeUInt16BE(id, 0);
  hdr.writeUInt16BE(0x8180 | rcode, 2);
  hdr.writeUInt16BE(1, 4);
  hdr.writeUInt16BE(a.length, 6);
  const rrs = a.map((ip) => Buffer.from([0xc0, 0x0c, 0, q.qtype, 0, 1, 0, 0, 0, 60, 0, 4, ...ip.split('.').map(Number)]));
  const b = Buffer.concat([hdr, q.raw.subarray(12, 12 + qlen), ...rrs]);
  return cutAt === undefined ? b : b.subarray(0, cutAt);
}
let resolvConf;
function dnsEnv(d, extra = {}) {
  if (!resolvConf) {
    resolvConf = require('path').join(require('os').tmpdir(), `pp-resolv-${process.pid}.conf`);
    require('fs').writeFileSync(resolvConf, '# the fake DNS server of test/hub.js\nnameserver 127.0.0.1\n');
    process.on('exit', () => { try { require('fs').unlinkSync(resolvConf); } catch { /* gone */ } });
  }
  return hubEnv({ PP_RESOLV_CONF: resolvConf, PP_DNS_PORT: String(d.port), ...extra });
}
// /health answered within ms, n times in a row, spaced by gap ms; resolves the slowest time.
async function healthFast(srv, n, gap) {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    const r = await request(srv, '/health');
    worst = Math.max(worst, r.status === 200 ? Date.now() - t0 : Infinity);
    await sleep(gap);
  }
  return worst;
}

const tests = [
  ['two hubs: link, stats, HUB_PEER_ID', async () => {
    A = await startServer(hubEnv());
    B = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${A.port}`, HUB_PEER_ID: B_ID }));
    await linksUp(B);
    await hasHub(A, B_ID);
    const hs = await hubstats(B);
    eq(hs.bootstrapHubs.length, 1, 'B /hubstats: one bootstrap hub');
    const bh = hs.bootstrapHubs[0];
    eq([bh.uri, bh.connected, bh.attemptNumber], [`ws://127.0.0.1:${A.port}`, true, 0], 'B /hubstats bootstrap uri/connected/attemptNumber (reset on open)');
    check(typeof bh.lastAttempt === 'number' && Math.abs(Date.now() - bh.lastAttempt) < 10000, 'B /hubstats lastAttempt is a recent wall-clock ms', bh.lastAttempt);
    const sb = await getJson(B, '/stats');
    eq([sb.isHub, sb.hubPeerId, sb.bootstrapHubs], [true, B_ID, { total: 1, connected: 1 }], 'B /stats isHub, hubPeerId = HUB_PEER_ID, bootstrapHubs');
    eq(sb.hubMeshNamespace, NS, 'B /stats hubMeshNamespace');
    const sa = await getJson(A, '/stats');
    check(sa.isHub === true && HEX40.test(sa.hubPeerId) && sa.hubPeerId !== B_ID, 'A /stats isHub and a random 40-hex hubPeerId', sa.hubPeerId);
    eq([sa.bootstrapHubs, sa.hubs], [{ total: 0, connected: 0 }, 1], 'A /stats: no bootstrap hubs, one hub connected');
    const ha = await getJson(A, '/hubs');
    eq(ha.totalHubs, 1, 'A /hubs totalHubs');
    const h = ha.hubs[0];
    eq([h.peerId, h.networkName, h.data.isHub, h.data.port, h.data.host, h.data.capabilities], [B_ID, NS, true, B.port, '127.0.0.1', ['signaling', 'relay']],
      'A /hubs entry: B by HUB_PEER_ID, in the mesh namespace, with its announce data');
    const hsa = await hubstats(A);
    eq([hsa.totalHubs, hsa.hubs.length && hsa.hubs[0].peerId, hsa.bootstrapHubs], [1, B_ID, []], 'A /hubstats lists B as hub, no bootstrap hubs');
    check(/bootstrap hub ws:\/\/127\.0\.0\.1:\d+: connected/.test(B.log), 'B logs the link as connected');
  }],
  ['two hubs: A client announces first', () => twoHubsOrder('A')],
  ['two hubs: B client announces first', () => twoHubsOrder('B')],
  ['two hubs: global network (no networkName) crosses too', async () => {
    const a = await joined(A, undefined);
    const b = await joined(B, undefined);
    a.send({ type: 'announce', data: { peerId: a.id } });
    b.send({ type: 'announce', data: { peerId: b.id } });
    await discovers(a, b.id, 'global', 'global');
    await discovers(b, a.id, 'global', 'global');
    await signalsCross(a, b, 'global', 'global', { both: true });
    // a signal labelled with the wrong network is not delivered across hubs
    a.send({ type: 'offer', targetPeerId: b.id, networkName: 'not-global', data: { x: 1 } });
    check(await b.none('offer', 400), 'offer with another network is not delivered across hubs', b.all('offer'));
    await closeAll(a, b);
    await A.stop();
    await B.stop();
  }],

  ['scripted hub: wire shape, hub rights, hop limit, half-open link dropped with its peers', async () => {
    const f = await scriptedHub();
    const P = randomId();
    const H = randomId();
    f.onOpen = (c) => {
      if (f.conns.length !== 1) return; // only the first connection tells of P
      c.send({ type: 'connected', data: { peerId: 'x' }, fromPeerId: 'system' });
      c.send({ type: 'peer-discovered', data: { peerId: P, isHub: false, nick: 'p' }, networkName: 'ho', fromPeerId: 'system', timestamp: 1 });
      c.send({ type: 'peer-discovered', data: { peerId: H, isHub: true }, networkName: 'ho', fromPeerId: 'system', timestamp: 1 });
    };
    const O = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${f.port}`, PING_INTERVAL: '400ms' }));
    const hid = (await getJson(O, '/stats')).hubPeerId;
    const c = await joined(O, 'ho');
    await waitFor(() => f.conns.length >= 1 && f.conns[0].msgs().some((m) => m.type === 'announce'), 3000, 'announce at scripted hub');
    const c0 = f.conns[0];
    check(c0.req.startsWith(`GET /?peerId=${hid} HTTP/1.1`), 'dial request line: / with peerId=<hub id>', c0.req.split('\r\n')[0]);
    const ann = c0.msgs().find((m) => m.type === 'announce');
    eq([ann.networkName, ann.data.isHub, ann.data.port, ann.data.host, ann.data.capabilities, typeof ann.data.timestamp],
      [NS, true, O.port, '127.0.0.1', ['signaling', 'relay'], 'number'], 'hub announce on link open (shape)');
    const disc = await discovers(c, P, 'ho', 'scripted');
    if (disc) eq(disc.data, { peerId: P, isHub: false, nick: 'p' }, 'remote peer data passed on');
    await sleep(200);
    eq(about(c, 'peer-discovered', H).length, 0, 'a peer-discovered marked isHub is not delivered to clients');
    // our client's announce reaches the scripted hub as peer-discovered, without targetPeerId
    const up = await waitFor(() => c0.msgs().find((m) => m.type === 'peer-discovered' && m.data.peerId === c.id), 2000, 'pd at scripted').catch(() => null);
    check(up && up.networkName === 'ho' && up.fromPeerId === 'system' && !('targetPeerId' in up) && up.data.isHub === false,
      'local client announced to the hub link (peer-discovered, network, no target)', up);
    check(!c0.msgs().some((m) => m.type === 'peer-discovered' && m.data.peerId === P), 'split horizon: P is never sent back to the hub it came from');
    // signals from the hub: delivered with fromPeerId kept; hop limit; none for our own hub id
    c0.send({ type: 'offer', data: { k: 1 }, fromPeerId: P, targetPeerId: c.id, networkName: 'ho', hubHops: 1 });
    const o = await c.next('offer', 2000).catch(() => null);
    eq(o && [o.fromPeerId, o.targetPeerId, o.networkName, o.data], [P, c.id, 'ho', { k: 1 }], 'hub signal delivered with its fromPeerId');
    c0.send({ type: 'offer', data: { k: 2 }, fromPeerId: P, targetPeerId: c.id, networkName: 'ho', hubHops: 1 });
    c0.send({ type: 'offer', data: { k: 2 }, fromPeerId: P, targetPeerId: c.id, networkName: 'ho', hubHops: 1 });
    await sleep(300);
    eq(c.all('offer').map((m) => m.data), [{ k: 2 }], 'the same hub signal twice within the window: delivered once');
    c.drop('offer');
    const far = randomId();
    c0.send({ type: 'offer', data: { k: 3 }, fromPeerId: P, targetPeerId: far, networkName: 'ho', hubHops: 8 });
    c0.send({ type: 'answer', data: { k: 4 }, fromPeerId: P, targetPeerId: hid, networkName: NS });
    await sleep(300);
    check(!c0.msgs().some((m) => m.data && (m.data.k === 3 || m.data.k === 4)), 'no relay past the hop limit, none for our own hub id');
    check(c0.unmasked === 0, 'all frames on the link are masked (client side)', c0.unmasked);
    // the scripted hub never answers pings: the link is dropped after ~2 intervals with its peers
    const pd = await exactlyOne(c, 'peer-disconnected', P, 'half-open hub link', 3000);
    if (pd) eq([pd.networkName, pd.targetPeerId], ['ho', c.id], 'half-open link: peer-disconnected envelope');
    check(c0.frames.some((x) => x.opcode === 9), 'hub link was pinged', c0.frames.map((x) => x.opcode));
    await waitFor(() => f.conns.length >= 2, 5000, 'redial after the half-open link').catch(() => {});
    check(f.conns.length >= 2, 'link dialled again after the timeout', f.conns.length);
    await sleep(300);
    const late = await joined(O, 'ho');
    await sleep(300);
    eq(about(late, 'peer-discovered', P).length, 0, 'late joiner: the dropped peer is gone');
    await closeAll(c, late);
    await O.stop();
    f.close();
  }],
  ['dialling hub killed; re-announce and goodbye cross hubs', async () => {
    const a0 = await startServer(hubEnv());
    const b0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${a0.port}` }));
    await linksUp(b0);
    await hasHub(a0, (await getJson(b0, '/stats')).hubPeerId);
    const a = await joined(a0, 'm1');
    const a2 = await joined(a0, 'm2');
    const b = await joined(b0, 'm1');
    const bb = await joined(b0, 'm2');
    await discovers(b, a.id, 'm1', 'move');
    await discovers(bb, a2.id, 'm2', 'move');
    // a moves from m1 to m2: B's m1 client hears it left, B's m2 client discovers it
    a.send({ type: 'announce', networkName: 'm2', data: { peerId: a.id } });
    await exactlyOne(b, 'peer-disconnected', a.id, 're-announce into another network');
    await discovers(bb, a.id, 'm2', 're-announce into another network');
    await signalsCross(a, bb, 'm2', 'after the move');
    // goodbye on A: B's client gets exactly one peer-disconnected
    a2.send({ type: 'goodbye', networkName: 'm2' });
    await exactlyOne(bb, 'peer-disconnected', a2.id, 'goodbye across hubs');
    // the dialling hub dies: A's clients hear that its peers went, once
    const r = await b0.kill('SIGKILL');
    eq(r.sig, 'SIGKILL', 'B killed');
    await exactlyOne(a, 'peer-disconnected', bb.id, 'dialling hub killed', DEAD_HUB_MS);
    eq(about(a, 'peer-disconnected', b.id).length, 0, 'dialling hub killed: no peer-disconnected for a peer of another network');
    await waitFor(async () => (await getJson(a0, '/hubs')).totalHubs === 0, 3000, 'hub gone from /hubs').catch(() => {});
    eq((await getJson(a0, '/hubs')).totalHubs, 0, 'A /hubs: the dead dialler is gone');
    const late = await joined(a0, 'm2');
    await sleep(400);
    eq(late.all('peer-discovered').map((m) => m.data.peerId), [a.id], 'late joiner on A: only the live local peer');
    await closeAll(a, a2, late);
    await a0.stop();
  }],

  ['a client that moves to another hub is not reported gone when its old connection closes', async () => {
    const a0 = await startServer(hubEnv());
    const b0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${a0.port}` }));
    await linksUp(b0);
    await hasHub(a0, (await getJson(b0, '/stats')).hubPeerId);
    const y = await joined(a0, 'mv');
    const xb = await joined(b0, 'mv');
    await discovers(y, xb.id, 'mv', 'move hubs');
    const xa = await joined(a0, 'mv', xb.id); // same id on A (failover) while B still has it
    await waitFor(() => about(y, 'peer-discovered', xb.id).length >= 2, 2000, 're-discovery').catch(() => {});
    await xb.close();
    await sleep(500);
    eq(about(y, 'peer-disconnected', xb.id).length, 0, 'moved client: no peer-disconnected at its new hub when the old connection closes');
    const late = await joined(a0, 'mv');
    await sleep(300);
    eq(about(late, 'peer-discovered', xb.id).length, 1, 'moved client: a late joiner discovers it exactly once');
    y.send({ type: 'offer', targetPeerId: xa.id, networkName: 'mv', data: { m: 1 } });
    await sleep(300);
    eq(xa.all('offer').map((m) => m.data), [{ m: 1 }], 'moved client: signalling reaches it once');
    await closeAll(y, xa, late);
    await a0.stop();
    await b0.stop();
  }],

  ['a moved client: its old hub and a third hub keep it, without a flap, and route to its new hub', async () => {
    const a0 = await startServer(hubEnv());
    const b0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${a0.port}` }));
    const c0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${b0.port}` }));
    await linksUp(b0);
    await linksUp(c0);
    await waitFor(async () => (await getJson(b0, '/hubs')).totalHubs === 1 && (await getJson(a0, '/hubs')).totalHubs === 1, 3000, 'inbound hubs registered');
    const zb = await joined(b0, 'mv2');
    const zc = await joined(c0, 'mv2');
    const xb = await joined(b0, 'mv2');
    await discovers(zb, xb.id, 'mv2', 'moved client, old hub');
    await discovers(zc, xb.id, 'mv2', 'moved client, third hub');
    const xa = await joined(a0, 'mv2', xb.id); // moves to A while B still holds the old connection
    await sleep(300);
    eq(about(zb, 'peer-discovered', xb.id).length, 1, 'moved client: hidden at its old hub while the old connection lives');
    zb.drop('peer-discovered');
    zc.drop('peer-discovered');
    await xb.close();
    await sleep(800);
    // it never left the network: no client that knows it is told it left, or told it again
    eq([about(zb, 'peer-disconnected', xb.id).length, about(zb, 'peer-discovered', xb.id).length], [0, 0], 'moved client: its old hub keeps it in view, no leave and no re-announce, once the old connection is gone');
    eq([about(zc, 'peer-disconnected', xb.id).length, about(zc, 'peer-discovered', xb.id).length], [0, 0], 'moved client: a third hub keeps it in view, no flap');
    const late = await joined(b0, 'mv2');
    await discovers(late, xb.id, 'mv2', 'moved client, late joiner on the old hub');
    late.send({ type: 'offer', targetPeerId: xa.id, networkName: 'mv2', data: { m: 2 } });
    zc.send({ type: 'offer', targetPeerId: xa.id, networkName: 'mv2', data: { m: 3 } });
    await sleep(400);
    eq(xa.all('offer').map((m) => m.data).sort((p, q) => p.m - q.m), [{ m: 2 }, { m: 3 }], 'moved client: signals from its old hub and a third hub reach it once each');
    await closeAll(zb, zc, xa, late);
    for (const s of [c0, b0, a0]) await s.stop();
  }],

  ['mesh: one dead path withdraws no live peer (triangle, the middle hub killed)', async () => {
    // H0, H1, H2 all linked; X on H0. Killing H1 must not take X from H2, whose link to H0 is up.
    const h0 = await startServer(hubEnv());
    const h1 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${h0.port}` }));
    const h2 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${h0.port},ws://127.0.0.1:${h1.port}` }));
    await linksUp(h1);
    await linksUp(h2, 2);
    await hasHub(h0, (await getJson(h2, '/stats')).hubPeerId);
    await hasHub(h1, (await getJson(h2, '/stats')).hubPeerId);
    const x = await joined(h0, 'tri');
    const y = await joined(h2, 'tri');
    const z = await joined(h1, 'tri');
    await discovers(y, x.id, 'tri', 'triangle');
    await discovers(y, z.id, 'tri', 'triangle');
    await h1.kill('SIGKILL');
    await exactlyOne(y, 'peer-disconnected', z.id, 'triangle: the dead hub\'s client goes', DEAD_HUB_MS);
    await sleep(500);
    eq(about(y, 'peer-disconnected', x.id).length, 0, 'triangle: X (on H0, link H0-H2 up) is not withdrawn at H2');
    eq(about(x, 'peer-disconnected', y.id).length, 0, 'triangle: Y (on H2) is not withdrawn at H0');
    const late = await joined(h2, 'tri');
    await discovers(late, x.id, 'tri', 'triangle: a new client on H2 sees X');
    await sleep(300);
    eq(late.all('peer-discovered').map((m) => m.data.peerId).sort(), [x.id, y.id].sort(), 'triangle: a new client on H2 sees exactly the live peers');
    late.send({ type: 'offer', targetPeerId: x.id, networkName: 'tri', data: { t: 1 } });
    await sleep(400);
    eq(x.all('offer').map((m) => m.data), [{ t: 1 }], 'triangle: an offer from H2 reaches X on H0 once');
    await closeAll(x, y, late);
    await h0.stop();
    await h2.stop();
  }],

  ['mesh: a client that moves two hubs away stays visible and reachable (chain, old socket half-open)', async () => {
    // chain H0 - H1 - H2; X moves from H0 to H2 while its old socket stays open, then it closes
    const h0 = await startServer(hubEnv());
    const h1 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${h0.port}` }));
    const h2 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${h1.port}` }));
    await linksUp(h1);
    await linksUp(h2);
    await hasHub(h1, (await getJson(h2, '/stats')).hubPeerId);
    await hasHub(h0, (await getJson(h1, '/stats')).hubPeerId);
    const w0 = await joined(h0, 'ch');
    const w1 = await joined(h1, 'ch');
    const w2 = await joined(h2, 'ch');
    const xOld = await joined(h0, 'ch');
    for (const w of [w1, w2]) await discovers(w, xOld.id, 'ch', 'chain');
    const xNew = await joined(h2, 'ch', xOld.id); // moved; the old socket lingers on H0
    await sleep(500);
    await xOld.close();
    await sleep(800);
    for (const [w, name] of [[w0, 'H0'], [w1, 'H1'], [w2, 'H2']])
      eq(about(w, 'peer-disconnected', xOld.id).length, 0, `chain: no client on ${name} is told X left`);
    const late0 = await joined(h0, 'ch');
    await discovers(late0, xOld.id, 'ch', 'chain: a late joiner on the old hub');
    const late1 = await joined(h1, 'ch');
    await discovers(late1, xOld.id, 'ch', 'chain: a late joiner in the middle');
    w0.send({ type: 'offer', targetPeerId: xNew.id, networkName: 'ch', data: { from: 0 } });
    w1.send({ type: 'offer', targetPeerId: xNew.id, networkName: 'ch', data: { from: 1 } });
    w2.send({ type: 'offer', targetPeerId: xNew.id, networkName: 'ch', data: { from: 2 } });
    await sleep(500);
    eq(xNew.all('offer').map((m) => m.data.from).sort(), [0, 1, 2], 'chain: offers from all three hubs reach X at its new hub, once each');
    await closeAll(w0, w1, w2, xNew, late0, late1);
    for (const srv of [h2, h1, h0]) await srv.stop();
  }],

  ['a peer-discovered still travelling after the withdrawal (same originSeq) brings no ghost back', async () => {
    const f = await scriptedHub();
    const O = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${f.port}` }));
    const B = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${O.port}` }));
    await linksUp(O);
    await linksUp(B);
    await waitFor(() => f.conns.length >= 1 && f.conns[0].msgs().some((m) => m.type === 'announce'), 3000, 'O linked to the scripted hub');
    const y = await joined(O, 'gh');
    const x = await joined(B, 'gh');
    await discovers(y, x.id, 'gh', 'ghost test');
    const c0 = f.conns[0];
    const seen = await waitFor(() => c0.msgs().find((m) => m.type === 'peer-discovered' && m.data.peerId === x.id), 2000, 'X flooded to the scripted hub').catch(() => null);
    check(seen && typeof seen.originSeq === 'number' && seen.originSeq > 0, 'floods between hubs carry the originSeq of the announcement', seen);
    await x.close();
    await exactlyOne(y, 'peer-disconnected', x.id, 'ghost test: X leaves');
    y.drop('peer-discovered');
    const stale = { ...seen, timestamp: Date.now() };
    c0.send(stale); // the same announcement, arriving late round a ring of hubs
    await sleep(400);
    eq(about(y, 'peer-discovered', x.id).length, 0, 'a stale peer-discovered (originSeq already withdrawn) is dropped');
    const late = await joined(O, 'gh');
    await sleep(300);
    eq(about(late, 'peer-discovered', x.id).length, 0, 'no ghost: a late joiner is not told of the peer that left');
    c0.send({ ...seen, originSeq: seen.originSeq + 1, timestamp: Date.now() }); // a newer announcement
    await discovers(y, x.id, 'gh', 'ghost test: a newer announcement is taken');
    await closeAll(y, late);
    await B.stop();
    await O.stop();
    f.close();
  }],

  // ---- 2. chain and triangle ----
  ['chain A-B-C: discovery and signalling end to end', async () => {
    const a0 = await startServer(hubEnv());
    const b0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${a0.port}` }));
    const c0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${b0.port}` }));
    await linksUp(b0);
    await linksUp(c0);
    await waitFor(async () => (await getJson(b0, '/hubs')).totalHubs === 1 && (await getJson(a0, '/hubs')).totalHubs === 1, 3000, 'inbound hubs registered');
    const a = await joined(a0, 'chain');
    await sleep(100);
    const c = await joined(c0, 'chain');
    await discovers(a, c.id, 'chain', 'chain');
    await discovers(c, a.id, 'chain', 'chain');
    const mid = await joined(b0, 'chain'); // the middle hub's client sees both
    await discovers(mid, a.id, 'chain', 'chain middle');
    await discovers(mid, c.id, 'chain', 'chain middle');
    await sleep(300);
    eq([about(a, 'peer-discovered', c.id).length, about(c, 'peer-discovered', a.id).length], [1, 1], 'chain: discovered exactly once');
    await signalsCross(a, c, 'chain', 'chain A<->C');
    check(mid.all('offer').length === 0 && mid.all('answer').length === 0, 'chain: the middle client sees none of the A<->C signals');
    // a client on C leaving reaches A through B, once
    await c.close();
    await exactlyOne(a, 'peer-disconnected', c.id, 'chain C client leaves');
    await closeAll(a, mid);
    for (const s of [c0, b0, a0]) await s.stop();
  }],
  ['AUTH_TOKEN: hubs present it as Bearer; a hub without it is refused', async () => {
    const a0 = await startServer(hubEnv({ AUTH_TOKEN: 'tok-1' }));
    const b0 = await startServer(hubEnv({ AUTH_TOKEN: 'tok-1', BOOTSTRAP_HUBS: `ws://127.0.0.1:${a0.port}` }));
    const c0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${a0.port}` }));
    await linksUp(b0);
    await waitFor(async () => (await hubstats(c0)).bootstrapHubs[0].attemptNumber >= 2, 5000, 'tokenless hub retried');
    const cs = (await hubstats(c0)).bootstrapHubs[0];
    eq(cs.connected, false, 'AUTH_TOKEN: a hub that presents no token gets no link');
    eq((await getJson(a0, '/hubs')).totalHubs, 1, 'AUTH_TOKEN: only the hub with the token is a hub of A');
    const withToken = async (srv) => {
      const c = lib.client(srv, randomId(), { query: '&token=tok-1' });
      await c.opened;
      await c.next('connected');
      c.send({ type: 'announce', networkName: 'auth', data: { peerId: c.id } });
      return c;
    };
    const a = await withToken(a0);
    const b = await withToken(b0);
    await discovers(a, b.id, 'auth', 'AUTH_TOKEN hubs');
    await discovers(b, a.id, 'auth', 'AUTH_TOKEN hubs');
    await signalsCross(a, b, 'auth', 'AUTH_TOKEN hubs');
    await closeAll(a, b);
    for (const s of [c0, b0, a0]) await s.stop();
  }],
  ['triangle A->C, B->A, C->B: discovery and signalling exactly once', async () => {
    const pA = await freePort();
    const b0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${pA}` }));
    const c0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${b0.port}` }));
    const a0 = await startServer(hubEnv({ PORT: String(pA), BOOTSTRAP_HUBS: `ws://127.0.0.1:${c0.port}` }));
    eq(a0.port, pA, 'triangle: A on its reserved port');
    await Promise.all([linksUp(a0), linksUp(b0, 1, 8000), linksUp(c0)]);
    await waitFor(async () => {
      const t = await Promise.all([a0, b0, c0].map((s) => getJson(s, '/hubs')));
      return t.every((x) => x.totalHubs === 1);
    }, 3000, 'each hub has one inbound hub');
    const a = await joined(a0, 'tri');
    const b = await joined(b0, 'tri');
    const c = await joined(c0, 'tri');
    for (const [x, ys] of [[a, [b, c]], [b, [a, c]], [c, [a, b]]]) for (const y of ys) await discovers(x, y.id, 'tri', 'triangle');
    await sleep(300);
    const counts = [a, b, c].map((x) => x.all('peer-discovered').length);
    eq(counts, [2, 2, 2], 'triangle: each client discovered its two peers exactly once');
    await signalsCross(a, c, 'tri', 'triangle A<->C');
    await signalsCross(b, c, 'tri', 'triangle B<->C');
    check(b.all('offer').length === 0, 'triangle: B client saw none of the A<->C offers');
    // a target no hub has heard of (never announced, so network "global") is flooded to every
    // link; around the triangle the copies meet again and must be dropped (dedup window)
    const ux = await joined(a0, undefined);
    const uy = await joined(c0, undefined);
    const d = { sdp: 'to an unannounced peer', n: Math.random() };
    ux.send({ type: 'offer', targetPeerId: uy.id, data: d });
    await waitFor(() => uy.all('offer').length >= 1, 2000, 'offer to unannounced').catch(() => {});
    await sleep(400);
    eq(uy.all('offer').map((m) => [m.fromPeerId, m.networkName, m.data]), [[ux.id, 'global', d]], 'triangle: offer to an unannounced peer on a far hub delivered exactly once');
    await closeAll(ux, uy);
    await b.close();
    await exactlyOne(a, 'peer-disconnected', b.id, 'triangle B client leaves');
    await exactlyOne(c, 'peer-disconnected', b.id, 'triangle B client leaves');
    // a late joiner on C learns of A's client, once
    const late = await joined(c0, 'tri');
    await discovers(late, a.id, 'tri', 'triangle late joiner');
    await sleep(300);
    eq(late.all('peer-discovered').length, 2, 'triangle late joiner: exactly a and c, once each');
    await closeAll(a, c, late);
    for (const s of [a0, b0, c0]) await s.stop();
  }],

  // ---- 3. faults ----
  ['bad bootstrap targets: the hub keeps serving (refused, silent, garbage)', async () => {
    refusedPort = await freePort();
    fakes = { silent: await fakeHub('silent'), garbage: await fakeHub('garbage') };
    badHub = await startServer(hubEnv({
      BOOTSTRAP_HUBS: `ws://127.0.0.1:${refusedPort}, ws://127.0.0.1:${fakes.silent.port}/s,ws://127.0.0.1:${fakes.garbage.port}/g?x=1`,
    }));
    badHub.t0 = Date.now();
    const hid = (await getJson(badHub, '/stats')).hubPeerId;
    // local service is unaffected
    const x = await joined(badHub, 'solo');
    const y = await joined(badHub, 'solo');
    await discovers(x, y.id, 'solo', 'bad targets');
    await discovers(y, x.id, 'solo', 'bad targets');
    await signalsCross(x, y, 'solo', 'bad targets local');
    const health = await request(badHub, '/health');
    check(health.status === 200 && JSON.parse(health.body).status === 'healthy', '/health answers while links fail', health.status);
    // attempts grow on the refused and garbage links; none is connected
    const first = await hubstats(badHub);
    eq(first.bootstrapHubs.map((b) => b.uri), [`ws://127.0.0.1:${refusedPort}`, `ws://127.0.0.1:${fakes.silent.port}/s`, `ws://127.0.0.1:${fakes.garbage.port}/g?x=1`], 'bad targets: /hubstats uris as given');
    const s2 = await waitFor(async () => {
      const s = await hubstats(badHub);
      return s.bootstrapHubs[0].attemptNumber >= 3 && s.bootstrapHubs[2].attemptNumber >= 3 && s;
    }, 9000, 'attempts >= 3 on refused and garbage links').catch(() => null);
    check(s2, 'refused and garbage links: attemptNumber reaches 3 (retries with backoff)', s2 || await hubstats(badHub));
    const s = s2 || await hubstats(badHub);
    check(s.bootstrapHubs.every((b) => b.connected === false), 'bad targets: none connected', s.bootstrapHubs);
    check(s.bootstrapHubs[0].attemptNumber > first.bootstrapHubs[0].attemptNumber, 'refused link: attemptNumber grows', [first.bootstrapHubs[0], s.bootstrapHubs[0]]);
    check(s.bootstrapHubs.every((b) => b.lastAttempt > 0 && !('error' in b)), 'bad targets: lastAttempt set, no unsupported error', s.bootstrapHubs);
    eq((await getJson(badHub, '/stats')).bootstrapHubs, { total: 3, connected: 0 }, 'bad targets: /stats bootstrapHubs 3 / 0');
    check(fakes.garbage.accepted >= 3, 'garbage target dialled again after each failure', fakes.garbage.accepted);
    const req = fakes.garbage.requests[0] || '';
    check(req.startsWith(`GET /g?x=1&peerId=${hid} HTTP/1.1\r\n`), 'dial keeps path and query and appends peerId=<hub id>', req.split('\r\n')[0]);
    check(/\r\nupgrade: websocket\r\n/i.test(req) && /\r\nsec-websocket-version: 13\r\n/i.test(req) && /\r\nsec-websocket-key: [A-Za-z0-9+/]{22}==\r\n/i.test(req),
      'dial sends a proper upgrade request', req);
    check(/no upgrade: HTTP\/1\.1 200 OK/.test(badHub.log), 'garbage answer logged as "no upgrade"', badHub.log.slice(-1500));
    eq(fakes.silent.accepted, 1, 'silent target: one connection, waiting for the handshake');
    await closeAll(x, y);
  }],
  ['hub killed mid-traffic and restarted on the same port', async () => {
    const a0 = await startServer(hubEnv());
    const port = a0.port;
    const b0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${port}` }));
    await linksUp(b0);
    await hasHub(a0, (await getJson(b0, '/stats')).hubPeerId);
    const a = await joined(a0, 'f');
    const b = await joined(b0, 'f');
    await discovers(a, b.id, 'f', 'before kill');
    await discovers(b, a.id, 'f', 'before kill');
    // traffic both ways, then SIGKILL A in the middle of it
    let n = 0;
    const timer = setInterval(() => {
      n++;
      if (a.ws.readyState === 1) a.send({ type: 'ice-candidate', targetPeerId: b.id, networkName: 'f', data: { seq: n } });
      b.send({ type: 'ice-candidate', targetPeerId: a.id, networkName: 'f', data: { seq: n } });
    }, 5);
    await waitFor(() => b.all('ice-candidate').length >= 20, 3000, 'traffic flowing').catch(() => {});
    const r = await a0.kill('SIGKILL');
    eq(r.sig, 'SIGKILL', 'A killed by SIGKILL');
    await sleep(100);
    clearInterval(timer);
    const seqs = b.all('ice-candidate').map((m) => m.data.seq);
    check(seqs.length >= 20, 'candidates crossed before the kill', seqs.length);
    check(seqs.every((v, i) => i === 0 || v > seqs[i - 1]), 'candidates in order, none twice', seqs.slice(0, 50));
    const pd = await exactlyOne(b, 'peer-disconnected', a.id, 'A killed', DEAD_HUB_MS);
    if (pd) eq([pd.networkName, pd.targetPeerId], ['f', b.id], 'peer-disconnected for the dead hub\'s client: envelope');
    const down = await hubstats(b0);
    check(down.bootstrapHubs[0].connected === false, 'B /hubstats: link down after the kill', down.bootstrapHubs[0]);
    check(/bootstrap hub \S+: disconnected/.test(b0.log), 'B logs the link as disconnected');
    // B's traffic for the dead client goes nowhere and B stays up
    b.send({ type: 'offer', targetPeerId: a.id, networkName: 'f', data: { lost: 1 } });
    check((await request(b0, '/health')).status === 200, 'B healthy with its link down');
    await sleep(1500); // let B's backoff grow a little
    const a1 = await startServer(hubEnv({ PORT: String(port) }));
    eq(a1.port, port, 'A restarted on the same port');
    const t0 = Date.now();
    await linksUp(b0, 1, 31000);
    const took = Date.now() - t0;
    check(took <= 31000, 'link back within the backoff cap', took);
    note(`link back ${took} ms after A restarted`);
    // no stale peers: a fresh client on B learns nothing of the dead client
    const fresh = await joined(b0, 'f');
    await discovers(fresh, b.id, 'f', 'after restart');
    await sleep(500);
    eq(fresh.all('peer-discovered').map((m) => m.data.peerId), [b.id], 'fresh client on B: only the live peer, not the dead one');
    check(about(b, 'peer-discovered', a.id).length === 1, 'B client: the dead peer not rediscovered', about(b, 'peer-discovered', a.id).length);
    // a new client on A: discovery and signalling work again, once
    const a2 = await joined(a1, 'f');
    await discovers(a2, b.id, 'f', 'after restart');
    await discovers(a2, fresh.id, 'f', 'after restart');
    await discovers(b, a2.id, 'f', 'after restart');
    await sleep(300);
    eq([about(b, 'peer-discovered', a2.id).length, a2.all('peer-discovered').length], [1, 2], 'after restart: discovery exactly once');
    check(a2.all('offer').length === 0, 'the offer sent while A was down is not delivered later');
    b.drop('ice-candidate');
    await signalsCross(a2, b, 'f', 'after restart');
    eq(about(b, 'peer-disconnected', a.id).length, 1, 'after restart: still exactly one peer-disconnected for the dead client');
    await closeAll(a2, b, fresh);
    await a1.stop();
    await b0.stop();
  }],
  ['bad bootstrap targets: silent handshake times out and is retried', async () => {
    const left = 11500 - (Date.now() - badHub.t0); // handshake timeout is 10 s
    await waitFor(async () => (await hubstats(badHub)).bootstrapHubs[1].attemptNumber >= 2, Math.max(left, 0) + 4000, 'silent link retried').catch(() => {});
    const s = await hubstats(badHub);
    check(s.bootstrapHubs[1].attemptNumber >= 2 && !s.bootstrapHubs[1].connected, 'silent target: not connected, attemptNumber grows after the handshake timeout', s.bootstrapHubs[1]);
    check(fakes.silent.accepted >= 2, 'silent target dialled again', fakes.silent.accepted);
    check(s.bootstrapHubs[0].attemptNumber >= 4, 'refused target still being retried', s.bootstrapHubs[0]);
    const x = await joined(badHub, 'solo2');
    const y = await joined(badHub, 'solo2');
    await discovers(y, x.id, 'solo2', 'bad targets later');
    await closeAll(x, y);
    await badHub.stop();
    fakes.silent.close();
    fakes.garbage.close();
  }],
  ['bad BOOTSTRAP_HUBS URLs exit 2 with a clear message', async () => {
    for (const [url, why] of [['http://x', /ws:\/\//], ['ws://', /host/], ['ws://h:99999', /port/], ['ws://h:1/a b', /character/]]) {
      const r = await runToExit({ IS_HUB: 'true', BOOTSTRAP_HUBS: url });
      eq(r.code, 2, `BOOTSTRAP_HUBS=${url}: exit code 2`);
      check(r.log.includes('BOOTSTRAP_HUBS') && r.log.includes(url) && why.test(r.log), `BOOTSTRAP_HUBS=${url}: message names the variable, the URL and the problem`, r.log);
      check(!/Sanitizer|runtime error/.test(r.log), `BOOTSTRAP_HUBS=${url}: sanitizer-clean`, r.log.slice(-1000));
    }
  }],
  ['wss:// bootstrap hub is reported unsupported', async () => {
    const s0 = await startServer(hubEnv({ BOOTSTRAP_HUBS: 'wss://127.0.0.1:9/x' }));
    await sleep(1200);
    const s = await hubstats(s0);
    const b = s.bootstrapHubs[0];
    check(b && b.uri === 'wss://127.0.0.1:9/x' && b.connected === false && b.attemptNumber === 0, 'wss:// link listed, never dialled', b);
    check(b && typeof b.error === 'string' && /TLS/.test(b.error), '/hubstats error says TLS is unsupported', b);
    check(/wss:\/\/127\.0\.0\.1:9\/x not dialled: .*TLS/.test(s0.log), 'log says the wss:// hub is not dialled and why', s0.log);
    const x = await joined(s0, 'w');
    const y = await joined(s0, 'w');
    await discovers(y, x.id, 'w', 'wss hub serves locally');
    await closeAll(x, y);
    await s0.stop();
  }],

  // ---- 4. interop with the JS hub ----
  ['JS interop (a): our hub dials the JS hub; raw clients, both orders', async () => {
    const deadPort = await freePort();
    const J = await startJsHub({ bootstrapHubs: [`ws://127.0.0.1:${deadPort}`] });
    const O = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${J.port}`, PING_INTERVAL: '300ms' }));
    await withJsHub(J, O, async () => {
      await linksUp(O);
      await sleep(1000); // quiet link (the JS hub never pings) survives > 2 ping intervals: it pongs
      check((await hubstats(O)).bootstrapHubs[0].connected, '(a) link to the JS hub survives a quiet period with PING_INTERVAL=300ms');
      await jsBothOrders(J, O, 'a', async (jc, oc, what) => {
        // the JS client leaves: our client hears it exactly once (JS sends two copies to a dialler)
        await jc.close();
        await exactlyOne(oc, 'peer-disconnected', jc.id, `${what}, JS client leaves`);
        await oc.close();
      });
      // our client leaving: the JS hub answers our peer-disconnected with an error (limitation);
      // the link must stay up
      await sleep(300);
      check((await hubstats(O)).bootstrapHubs[0].connected, '(a) link still up after the JS hub\'s error replies');
      if (/hub link: 'error' ignored/.test(O.log)) note('(a) the JS hub answered our peer-disconnected with an error (it does not route it on an inbound hub link)');
      await realBothSides(J, O, 'a', true);
      await sleep(100);
      check((await hubstats(O)).bootstrapHubs[0].connected, '(a) link up at the end');
    });
  }],
  ['JS interop (b): the JS hub dials ours; raw clients, both orders', async () => {
    const O = await startServer(hubEnv({ PING_INTERVAL: '300ms' }));
    const J = await startJsHub({ bootstrapHubs: [`ws://127.0.0.1:${O.port}`] });
    await withJsHub(J, O, async () => {
      await hasHub(O, J.hubPeerId, 5000);
      const h = (await getJson(O, '/hubs')).hubs.find((x) => x.peerId === J.hubPeerId);
      eq([h.networkName, h.data.isHub, h.data.port], [NS, true, J.port], '(b) the JS hub is listed in our /hubs with its announce data');
      await sleep(1000);
      check((await getJson(O, '/hubs')).hubs.some((x) => x.peerId === J.hubPeerId), '(b) JS hub link survives a quiet period with PING_INTERVAL=300ms');
      await jsBothOrders(J, O, 'b', async (jc, oc, what, network) => {
        // our client leaves: on a link the JS hub dialled, it passes peer-disconnected on
        await oc.close();
        await waitFor(() => about(jc, 'peer-disconnected', oc.id).length >= 1, 2000, 'pd').catch(() => {});
        const pd = about(jc, 'peer-disconnected', oc.id).find((m) => m.networkName === network);
        check(pd && pd.targetPeerId === jc.id, `${what}: JS client told that our client left`, jc.all('peer-disconnected'));
        await jc.close();
      });
      // a JS client that leaves: our client hears it once
      const jc = await joined(J, 'jb-leave');
      const oc = await joined(O, 'jb-leave');
      await discovers(oc, jc.id, 'jb-leave', '(b) leave');
      await jc.close();
      await exactlyOne(oc, 'peer-disconnected', jc.id, '(b) JS client leaves');
      await oc.close();
      await realBothSides(J, O, 'b', false);
    });
  }],
  // ---- hub rights are scoped: what a hub link may do, secret or not ----
  ['scoped rights: a rogue hub cannot withdraw, reroute, plant from the future or speak for others', async () => {
    const A = await startServer(hubEnv());
    const B = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${A.port}` }));
    await linksUp(B);
    await hasHub(A, (await getJson(B, '/stats')).hubPeerId);
    const x = await joined(B, 'sc'); // a real peer of B
    const a = await joined(A, 'sc');
    await discovers(a, x.id, 'sc', 'scoped');
    const F = await joined(A, NS, undefined, { isHub: true }); // open mode: a rogue "hub"
    await sleep(200);
    // 1. it withdraws a peer it did not teach: nothing happens
    F.send({ type: 'peer-disconnected', data: { peerId: x.id, isHub: false, reason: 'gone' }, networkName: 'sc', fromPeerId: 'system' });
    // 2. it re-announces it without originSeq to take its route: nothing changes
    F.send({ type: 'peer-discovered', data: { peerId: x.id, isHub: false }, networkName: 'sc', fromPeerId: 'system' });
    await sleep(300);
    eq(about(a, 'peer-disconnected', x.id).length, 0, 'rogue hub: cannot withdraw a peer another hub taught');
    a.send({ type: 'offer', targetPeerId: x.id, networkName: 'sc', data: { r: 1 } });
    await sleep(300);
    eq([x.all('offer').length, F.all('offer').length], [1, 0], 'rogue hub: offers to the peer still go to its own hub, not to the rogue');
    // 3. an announcement from the future is refused, and plants nothing that blocks the real one
    const y = randomId();
    F.send({ type: 'peer-discovered', data: { peerId: y, isHub: false }, networkName: 'sc', originSeq: 18446744073709551615, fromPeerId: 'system' });
    F.send({ type: 'peer-disconnected', data: { peerId: y, isHub: false }, networkName: 'sc', originSeq: 18446744073709551615, fromPeerId: 'system' });
    await sleep(200);
    eq(about(a, 'peer-discovered', y).length, 0, 'rogue hub: originSeq 2^64-1 is refused');
    const yb = await joined(B, 'sc', y); // the real y appears on B
    await discovers(a, y, 'sc', 'rogue hub: a withdrawal of a peer it never taught plants no tombstone');
    // 4. a signal with someone else's fromPeerId: a local peer of A, or an unknown id
    F.send({ type: 'offer', fromPeerId: a.id, targetPeerId: x.id, networkName: 'sc', data: { spoof: 1 } });
    F.send({ type: 'offer', fromPeerId: randomId(), targetPeerId: a.id, networkName: 'sc', data: { spoof: 2 } });
    await sleep(300);
    eq(x.all('offer').filter((m) => m.data.spoof).length, 0, 'rogue hub: cannot send as a local peer of ours');
    eq(a.all('offer').filter((m) => m.data.spoof).length, 0, 'rogue hub: cannot send as a peer it never taught');
    // 5. it teaches its own peers, up to the quota (1000)
    for (let i = 0; i < 1100; i++)
      F.send({ type: 'peer-discovered', data: { peerId: randomId(), isHub: false }, networkName: 'flood', fromPeerId: 'system' });
    await sleep(500);
    const rp = await waitFor(async () => { const m = await metricsOf(A); return m.peerpigeon_remote_peers >= 1000 ? m : null; }, 3000, 'remote peers').catch(() => null);
    check(rp && rp.peerpigeon_remote_peers <= 1003, 'rogue hub: at most 1000 peers from one teller', rp && rp.peerpigeon_remote_peers);
    const z = await joined(B, 'sc');
    await discovers(a, z.id, 'sc', 'after the flood a real newcomer on B is still discovered');
    await closeAll(a, x, F, yb, z);
    await B.stop();
    await A.stop();
  }],
  ['an offer to an unknown id costs one copy per hub, not one per path', async () => {
    const h = [await startServer(hubEnv())];
    h.push(await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${h[0].port}` })));
    h.push(await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${h[0].port},ws://127.0.0.1:${h[1].port}` })));
    h.push(await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${h[0].port},ws://127.0.0.1:${h[1].port},ws://127.0.0.1:${h[2].port}` })));
    await linksUp(h[3], 3);
    await linksUp(h[2], 2);
    await sleep(500);
    const before = [];
    for (const s of h) before.push((await metricsOf(s)).peerpigeon_hub_relayed_signals_total || 0);
    const c = await joined(h[0], 'unk');
    for (let i = 0; i < 10; i++) c.send({ type: 'offer', targetPeerId: randomId(), networkName: 'unk', data: { i } });
    await sleep(500);
    let sent = 0;
    for (let i = 0; i < h.length; i++) sent += ((await metricsOf(h[i])).peerpigeon_hub_relayed_signals_total || 0) - before[i];
    eq(sent, 30, '4-hub full mesh: 10 offers to unknown ids are relayed 30 times (H-1 each), not 90');
    await closeAll(c);
    for (const s of h.reverse()) await s.stop();
  }],
  // ---- HUB_SECRET: hub rights need the secret ----
  ['HUB_SECRET: a stranger claiming isHub is a plain peer (no dump, no slot, no rights)', async () => {
    const A = await startServer(hubEnv({ HUB_SECRET: 'mesh-s3cret' }));
    const y = await joined(A, 'private-net');
    const st = await joined(A, NS, undefined, { isHub: true }); // claims to be a hub, no secret
    await sleep(300);
    eq(about(st, 'peer-discovered', y.id).length, 0, 'secret mode: the stranger is not sent the peers of other networks');
    eq(st.all('hub-info').length, 0, 'secret mode: the stranger is not greeted as a hub');
    eq((await getJson(A, '/hubs')).hubs.length, 0, 'secret mode: the stranger is not in /hubs');
    eq((await hubstats(A)).hubRights, 'secret', '/hubstats: rights need the secret');
    check(!/no HUB_SECRET/.test(A.log), 'no open-rights warning with a secret');
    // its hub messages are those of a client: a fake peer is not planted, a fake fromPeerId is not honoured
    const z = await joined(A, 'private-net');
    const fake = randomId();
    st.send({ type: 'peer-discovered', data: { peerId: fake, isHub: false }, networkName: 'private-net', fromPeerId: 'system' });
    st.send({ type: 'offer', targetPeerId: y.id, fromPeerId: z.id, networkName: NS, data: { x: 1 } });
    await sleep(300);
    eq(about(z, 'peer-discovered', fake).length, 0, 'secret mode: a stranger\'s peer-discovered plants nothing');
    eq(y.all('offer').length, 0, 'secret mode: a stranger\'s offer with another fromPeerId is not delivered as that peer');
    await closeAll(y, st, z);
    await A.stop();
  }],
  ['HUB_SECRET: our hubs with the secret link; a hub without it gets no rights', async () => {
    const A = await startServer(hubEnv({ HUB_SECRET: 'mesh-s3cret' }));
    const B = await startServer(hubEnv({ HUB_SECRET: 'mesh-s3cret', BOOTSTRAP_HUBS: `ws://127.0.0.1:${A.port}` }));
    const C = await startServer(hubEnv({ BOOTSTRAP_HUBS: `ws://127.0.0.1:${A.port}` })); // no secret
    await linksUp(B);
    await linksUp(C);
    await hasHub(A, (await getJson(B, '/stats')).hubPeerId);
    const a = await joined(A, 'sec');
    const b = await joined(B, 'sec');
    const c = await joined(C, 'sec');
    await discovers(a, b.id, 'sec', 'secret mesh: A learns B');
    await discovers(b, a.id, 'sec', 'secret mesh: B learns A');
    await sleep(500);
    eq([about(a, 'peer-discovered', c.id).length, about(c, 'peer-discovered', a.id).length], [0, 0], 'a hub without the secret: no peers either way');
    check(!(await getJson(A, '/hubs')).hubs.some((h) => h.peerId === (C.hubId || '')), 'C is not in A\'s /hubs');
    eq((await getJson(A, '/hubs')).hubs.length, 1, 'only B has hub rights at A');
    await closeAll(a, b, c);
    for (const srv of [C, B, A]) await srv.stop();
  }],
  ['HUB_SECRET: a JS hub dials us through the secret path /hub/<secret>', async () => {
    const O = await startServer(hubEnv({ HUB_SECRET: 'js-path-secret' }));
    const J = await startJsHub({ bootstrapHubs: [`ws://127.0.0.1:${O.port}/hub/js-path-secret`] });
    await withJsHub(J, O, async () => {
      await hasHub(O, J.hubPeerId, 5000);
      const oc = await joined(O, 'jsec');
      const jc = await joined(J, 'jsec');
      await discovers(oc, jc.id, 'jsec', 'secret path: our client learns the JS hub\'s');
      await discovers(jc, oc.id, 'jsec', 'secret path: the JS client learns ours');
      await closeAll(oc, jc);
    });
    const O2 = await startServer(hubEnv({ HUB_SECRET: 'js-path-secret' }));
    const J2 = await startJsHub({ bootstrapHubs: [`ws://127.0.0.1:${O2.port}/hub/wrong`] });
    await withJsHub(J2, O2, async () => {
      await sleep(1500);
      check(!(await getJson(O2, '/hubs')).hubs.some((h) => h.peerId === J2.hubPeerId), 'wrong secret path: the JS hub gets no rights');
    });
  }],
  // ---- 5. names resolved by the non-blocking DNS stub (dns.c) ----
  ['DNS: a bootstrap hub by name, resolved via the (fake) nameserver', async () => {
    const d = await fakeDns((q) => [q.name.toLowerCase() === 'hub-a.test' && q.qtype === 1 ? dnsReply(q, { a: ['127.0.0.1'] }) : dnsReply(q, { rcode: 3 })]);
    const a0 = await startServer(hubEnv());
    const b0 = await startServer(dnsEnv(d, { BOOTSTRAP_HUBS: `ws://hub-a.test:${a0.port}` }));
    try {
      await linksUp(b0, 1, 5000);
      const hs = await hubstats(b0);
      eq([hs.bootstrapHubs[0].uri, hs.bootstrapHubs[0].connected], [`ws://hub-a.test:${a0.port}`, true], 'DNS: link to ws://hub-a.test up');
      const q = d.queries[0];
      check(q && q.name === 'hub-a.test' && q.qtype === 1 && (q.flags & 0x0100) && q.raw.length === 12 + 12 + 4,
        'DNS: one A query for hub-a.test with RD set', q && { name: q.name, qtype: q.qtype, flags: q.flags, len: q.raw.length });
      await hasHub(a0, (await getJson(b0, '/stats')).hubPeerId);
      const a = await joined(a0, 'dns');
      const b = await joined(b0, 'dns');
      await discovers(a, b.id, 'dns', 'DNS-resolved link');
      await discovers(b, a.id, 'dns', 'DNS-resolved link');
      await signalsCross(a, b, 'dns', 'DNS-resolved link', { both: false });
      await closeAll(a, b);
    } finally {
      await b0.stop();
      await a0.stop();
      d.close();
    }
  }],
  ['DNS: a nameserver that never answers does not stall the loop; the lookup is retried', async () => {
    const d = await fakeDns(() => []);
    const h0 = await startServer(dnsEnv(d, { BOOTSTRAP_HUBS: 'ws://hub-silent.test:4000' }));
    try {
      await waitFor(() => d.queries.length >= 1, 3000, 'first query');
      // while the query is pending (2 s timeout, one resend), HTTP answers at once
      const worst = await healthFast(h0, 15, 150);
      check(worst < 200, '/health answers in < 200 ms while a DNS lookup is pending', worst);
      const x = await joined(h0, 'ds');
      const y = await joined(h0, 'ds');
      await discovers(y, x.id, 'ds', 'silent DNS: local service');
      await closeAll(x, y);
      const s = await waitFor(async () => { const v = await hubstats(h0); return v.bootstrapHubs[0].attemptNumber >= 2 && v; }, 8000, 'lookup retried').catch(() => null);
      check(s && s.bootstrapHubs[0].connected === false && !('error' in s.bootstrapHubs[0]), 'silent DNS: link not connected, attemptNumber grows', s || await hubstats(h0));
      const first = d.queries.filter((q) => q.id === d.queries[0].id);
      check(first.length === 2 && first.every((q) => q.name === 'hub-silent.test' && q.qtype === 1), 'silent DNS: the query is sent once more (same id), no more', first.length);
      check(new Set(d.queries.map((q) => q.id)).size >= 2, 'silent DNS: a new attempt uses a new id', d.queries.map((q) => q.id));
      check(/cannot resolve hub-silent\.test: no answer \(timeout\)/.test(h0.log), 'silent DNS: the timeout is logged as a warning', h0.log.slice(-1500));
    } finally {
      await h0.stop();
      d.close();
    }
  }],
  ['DNS: garbage, wrong ids, spoofs and truncated answers are ignored; no crash, retried', async () => {
    const live = await startServer(hubEnv());
    const d = await fakeDns((q) => [
      Buffer.from('not dns at all'),
      Buffer.alloc(0),
      require('crypto').randomBytes(40),
      dnsReply(q, { id: q.id ^ 0x5a5a, a: ['127.0.0.1'] }),       // wrong id, points at a live hub
      dnsReply({ ...q, raw: Buffer.concat([q.raw.subarray(0, 12), Buffer.from('\x04evil\x04test\x00\x00\x01\x00\x01', 'latin1')]) }, { a: ['127.0.0.1'] }), // another question
      dnsReply(q, { a: ['127.0.0.1'], cutAt: q.raw.length + 8 }),  // right id, cut inside the record
      Buffer.concat([dnsReply(q, {}).subarray(0, 6), Buffer.from([0, 1]), dnsReply(q, {}).subarray(8), Buffer.from([0xc0, 0x30])]), // pointer forward
    ]);
    const h0 = await startServer(dnsEnv(d, { BOOTSTRAP_HUBS: `ws://hub-g.test:${live.port}` }));
    try {
      const s = await waitFor(async () => { const v = await hubstats(h0); return v.bootstrapHubs[0].attemptNumber >= 2 && v; }, 8000, 'lookup retried').catch(() => null);
      check(s && s.bootstrapHubs[0].connected === false, 'garbage DNS: not connected (nothing accepted), attemptNumber grows', s || await hubstats(h0));
      eq((await getJson(live, '/hubs')).totalHubs, 0, 'garbage DNS: the spoofed answer (wrong id) was not followed');
      check((await request(h0, '/health')).status === 200, 'garbage DNS: server healthy');
      check(/DNS datagram ignored/.test(h0.log), 'garbage DNS: datagrams logged as ignored (debug)');
    } finally {
      await h0.stop();
      await live.stop();
      d.close();
    }
  }],
  ['DNS: NXDOMAIN fails at once; no A record asks for AAAA; a refused port is no hang', async () => {
    const d = await fakeDns((q) => [q.name === 'nx.test' ? dnsReply(q, { rcode: 3 }) : dnsReply(q, {})]);
    const deadPort = await freePort();
    const h0 = await startServer(dnsEnv(d, { BOOTSTRAP_HUBS: 'ws://nx.test:4000,ws://v6.test:4000' }));
    const h1 = await startServer(dnsEnv({ port: deadPort }, { BOOTSTRAP_HUBS: 'ws://refused.test:4000' }));
    try {
      await waitFor(() => /cannot resolve nx\.test: no such name/.test(h0.log) && /cannot resolve v6\.test: no address/.test(h0.log), 4000, 'both logged').catch(() => {});
      check(/cannot resolve nx\.test: no such name/.test(h0.log), 'NXDOMAIN: logged as "no such name"', h0.log.slice(-1500));
      check(/cannot resolve v6\.test: no address/.test(h0.log), 'no A, no AAAA: logged as "no address"', h0.log.slice(-1500));
      const v6 = d.queries.filter((q) => q.name === 'v6.test');
      eq(v6.slice(0, 2).map((q) => q.qtype), [1, 28], 'no A record: an AAAA query follows');
      eq(d.queries.filter((q) => q.name === 'nx.test').map((q) => q.qtype).slice(0, 1), [1], 'NXDOMAIN: no AAAA query after it');
      await waitFor(() => /cannot resolve refused\.test: connection refused/.test(h1.log), 3000, 'refused').catch(() => {});
      check(/cannot resolve refused\.test: connection refused/.test(h1.log), 'no nameserver on the port: the ICMP refusal ends the lookup', h1.log.slice(-1500));
      const s = await waitFor(async () => { const v = await hubstats(h0); return v.bootstrapHubs.every((b) => b.attemptNumber >= 2) && v; }, 6000, 'retried').catch(() => null);
      check(s && s.bootstrapHubs.every((b) => !b.connected), 'failed lookups are retried with the backoff', s || await hubstats(h0));
    } finally {
      await h0.stop();
      await h1.stop();
      d.close();
    }
  }],
  ['DNS: HOST as a name is looked up at start the same way (no libc resolver); NXDOMAIN and silence exit 1', async () => {
    const d = await fakeDns((q) => [q.name === 'me.test' && q.qtype === 1 ? dnsReply(q, { a: ['127.0.0.1'] }) : q.name === 'silent.test' ? null : dnsReply(q, { rcode: 3 })].filter(Boolean));
    try {
      const h = await startServer({ ...dnsEnv(d), HOST: 'me.test' });
      check(/listening on 127\.0\.0\.1 port \d+/.test(h.log), 'HOST=me.test: listening on the address DNS gave', h.log.slice(0, 300));
      eq((await request(h, '/health')).status, 200, 'HOST=me.test: served');
      await h.stop();
      const nx = await runToExit({ ...dnsEnv(d), HOST: 'nx.test' }, 8000);
      check(nx.code === 1 && /cannot resolve HOST 'nx\.test'/.test(nx.log), 'HOST=nx.test (NXDOMAIN): exit 1 naming it', nx);
      const t0 = Date.now();
      const sl = await runToExit({ ...dnsEnv(d), HOST: 'silent.test' }, 12000);
      check(sl.code === 1 && /cannot resolve HOST/.test(sl.log) && Date.now() - t0 < 6000, `HOST=silent.test (no answer): exit 1 after the retries (${Date.now() - t0} ms)`, sl);
      const hc = await runToExit({ ...dnsEnv(d), HOST: 'nx.test' }, 8000, undefined, ['--health-check']);
      check(hc.code === 1, '--health-check with an unresolvable HOST: exit 1', hc);
    } finally {
      d.close();
    }
  }],
];

// Offer one way, answer back, through the real client's sendSignalingMessage; exactly once each.
async function realSignals(sj, so, what) {
  const offer = { type: 'offer', sdp: `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=${what} \u2713\r\n` };
  await sj.sc.sendSignalingMessage({ type: 'offer', data: offer, targetPeerId: so.id });
  const answer = { type: 'answer', sdp: 'v=0\r\ns=back\r\n' };
  await so.sc.sendSignalingMessage({ type: 'answer', data: answer, targetPeerId: sj.id });
  const cand = { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
  await so.sc.sendSignalingMessage({ type: 'ice-candidate', data: cand, targetPeerId: sj.id });
  await waitFor(() => so.of('offer').length && sj.of('answer').length && sj.of('ice-candidate').length, 3000, `${what} signals`).catch(() => {});
  await sleep(300);
  const o = so.of('offer');
  const a = sj.of('answer');
  const c = sj.of('ice-candidate');
  eq([o.length, a.length, c.length], [1, 1, 1], `${what}: offer JS->ours, answer and candidate ours->JS, exactly once each`);
  if (o[0]) eq([o[0].fromPeerId, o[0].targetPeerId, o[0].networkName, o[0].data], [sj.id, so.id, so.sc.mesh.networkName, offer], `${what}: offer envelope and data`);
  if (a[0]) eq([a[0].fromPeerId, a[0].targetPeerId, a[0].networkName, a[0].data], [so.id, sj.id, sj.sc.mesh.networkName, answer], `${what}: answer envelope and data`);
  if (c[0]) eq(c[0].data, cand, `${what}: candidate data`);
}

run(process.env.PP_ONLY ? tests.filter(([n]) => new RegExp(process.env.PP_ONLY).test(n)) : tests, { limitMs: 45000 });
