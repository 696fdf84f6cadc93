#!/usr/bin/env node
// test/smoke.js - smoke test for a deployed PeerPigeon signalling server (or two hubs of one mesh),
// with the real npm client (peerpigeon@1.1.3's SignalingClient, as test/interop.js uses it):
//
//   node test/smoke.js [options] URL [URL2]      (npm packages: NODE_PATH, else .deps/ of this
//                                                 checkout, which test/deps.sh fills)
//
//   URL, URL2      ws:// or wss:// (http:// and https:// are taken as ws:// and wss://), any path
//                  and query, e.g. wss://signal.example.org/?token=SECRET. With URL2 the second
//                  client connects there: two hubs of one mesh, through whatever proxies.
//   --timeout S    give up after S seconds (default 20)
//   --ca FILE      trust the PEM certificate(s) in FILE for wss:// (a private or test CA);
//                  verification, host name included, still happens. NODE_EXTRA_CA_CERTS=FILE
//                  does the same for every CA Node knows.
//   --insecure     do not verify the server certificate at all (as NODE_TLS_REJECT_UNAUTHORIZED=0);
//                  prefer --ca
//   --token T      send `Authorization: Bearer T` (AUTH_TOKEN) on both connections; a token can
//                  also be put in the URL as ?token=T
//   --network N    network to announce in (default: a random smoke-<hex>, so that nobody else's
//                  peers are disturbed and nobody else's peers disturb the test)
//   --verbose      print every frame and the library's own logging
//
// Steps: both clients connect (the server's `connected` names their peerId), each discovers the
// other (peer-discovered), an offer from A reaches B and B's answer reaches A (signalling
// messages only; no WebRTC), B leaves (SignalingClient.disconnect, a close 1000) and A gets
// peer-disconnected for B. Prints one line: `smoke: OK ...` (exit 0) or
// `smoke: FAIL <step>: <why>` (exit 1); a usage error exits 2.
'use strict';
const fs = require('fs');
const path = require('path');
const util = require('util');
const crypto = require('crypto');
const { pathToFileURL } = require('url');

const out = process.stdout.write.bind(process.stdout);
function usage(msg) {
  process.stderr.write(`smoke: ${msg}\nusage: node test/smoke.js [--timeout S] [--ca FILE] [--insecure] [--token T] [--network N] [--verbose] URL [URL2]\n`);
  process.exit(2);
}

// ---- arguments ------------------------------------------------------------------------------
const opt = { timeout: 20, ca: null, insecure: false, token: null, network: null, verbose: !!process.env.PP_VERBOSE };
const urls = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
  if (a === '--timeout') { opt.timeout = Number(val()); if (!(opt.timeout > 0)) usage('--timeout: seconds > 0'); }
  else if (a === '--ca') opt.ca = val();
  else if (a === '--insecure') opt.insecure = true;
  else if (a === '--token') opt.token = val();
  else if (a === '--network') opt.network = val();
  else if (a === '--verbose' || a === '-v') opt.verbose = true;
  else if (a === '--help' || a === '-h') usage('smoke test for a deployed server');
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else urls.push(a);
}
if (urls.length < 1 || urls.length > 2) usage('one or two URLs');
for (let i = 0; i < urls.length; i++) {
  urls[i] = urls[i].replace(/^http(s?):\/\//i, 'ws$1://');
  let u;
  try { u = new URL(urls[i]); } catch { usage(`not a URL: ${urls[i]}`); }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') usage(`not ws:// or wss://: ${urls[i]}`);
}
const URL_A = urls[0];
const URL_B = urls[1] || urls[0];
let caPem;
if (opt.ca) {
  try { caPem = fs.readFileSync(opt.ca); } catch (e) { usage(`--ca: ${e.message}`); }
}
const network = opt.network || `smoke-${crypto.randomBytes(4).toString('hex')}`;

// ---- quiet the library (it logs through console) --------------------------------------------
const noise = [];
if (!opt.verbose) {
  console.log = console.info = console.debug = console.warn = console.error = (...a) => { noise.push(util.format(...a)); };
}
const vlog = (s) => { if (opt.verbose) out(`smoke: ${s}\n`); };

// ---- steps, timeout, result -----------------------------------------------------------------
let step = 'start';
const t0 = Date.now();
let finished = false;
function finish(ok, detail) {
  if (finished) return;
  finished = true;
  const redact = (s) => String(s).replace(/([?&]token=)[^&\s#]*/gi, '$1...');
  out(ok ? `smoke: OK ${detail}\n` : `smoke: FAIL ${step}: ${redact(detail)}\n`);
  process.exit(ok ? 0 : 1);
}
const timer = setTimeout(() => finish(false, `timeout (${opt.timeout} s)`), opt.timeout * 1000);
timer.unref();
process.on('unhandledRejection', (e) => finish(false, e && e.message ? e.message : String(e)));
process.on('uncaughtException', (e) => finish(false, e && e.message ? e.message : String(e)));

// ---- a WebSocket for the library: ws with our TLS options, recording every frame -------------
// npm packages: from NODE_PATH or the usual places, else from this repository's .deps/ (so that
// `node test/smoke.js URL` works from a checkout after test/deps.sh without NODE_PATH)
const LOCAL = path.join(__dirname, '..', '.deps', 'node_modules');
function resolvePkg(name) {
  try { return require.resolve(name); } catch { /* try .deps */ }
  try { return require.resolve(path.join(LOCAL, name)); } catch { return null; }
}
let WS;
const wsPath = resolvePkg('ws');
if (!wsPath) finish(false, "npm package 'ws' not found (NODE_PATH=.deps/node_modules; test/deps.sh installs it)");
else WS = require(wsPath);
const sockets = [];
class SmokeWS extends WS {
  constructor(url, protocols, o) {
    const tls = {};
    if (caPem) tls.ca = caPem;
    if (opt.insecure) tls.rejectUnauthorized = false;
    const headers = opt.token ? { Authorization: `Bearer ${opt.token}` } : undefined;
    super(url, protocols, { perMessageDeflate: false, handshakeTimeout: 10000, headers, ...tls, ...(o || {}) });
    this.frames = []; // incoming, parsed
    this.failure = null; // why the handshake failed, from ws
    sockets.push(this);
    this.on('message', (d) => {
      let m;
      try { m = JSON.parse(d.toString()); } catch { m = { type: '<unparsable>', raw: d.toString().slice(0, 200) }; }
      this.frames.push(m);
      vlog(`<- ${d.toString().slice(0, 300)}`);
    });
    this.on('unexpected-response', (req, res) => {
      this.failure = `HTTP ${res.statusCode} ${res.statusMessage || ''} instead of 101`.trim();
      req.destroy();
      this.emit('error', new Error(this.failure));
    });
    this.on('error', (e) => { if (!this.failure) this.failure = e.code ? `${e.code}: ${e.message}` : e.message; });
    this.on('close', (code, reason) => { this.closeInfo = { code, reason: reason.toString() }; });
  }
  send(d, ...a) { vlog(`-> ${String(d).slice(0, 300)}`); return super.send(d, ...a); }
}
globalThis.WebSocket = SmokeWS;

// ---- the npm package ------------------------------------------------------------------------
function pkgDir() {
  const p = resolvePkg('peerpigeon/package.json');
  return p ? path.dirname(p) : null;
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
async function until(pred, what) {
  for (;;) {
    const v = pred();
    if (v) return v;
    if (finished) return null;
    await sleep(20);
  }
}
const short = (id) => id.slice(0, 8);

async function client(SignalingClient, name, url) {
  const id = crypto.randomBytes(20).toString('hex');
  const sc = new SignalingClient(id, 10, { networkName: network });
  const c = { name, id, sc, url, msgs: [] };
  sc.addEventListener('signalingMessage', (m) => c.msgs.push(m));
  step = `connect ${name}`;
  const nsock = sockets.length;
  // the library's connect() does not always settle on a failed handshake (ws reports a refused
  // connection in state CLOSING, and the library then only schedules a reconnect): watch the
  // socket too
  let err = null;
  sc.connect(url).catch((e) => { err = e; });
  const ws = await until(() => sockets[nsock]);
  await until(() => sc.isConnected() || err || ws.failure || ws.closeInfo);
  if (!sc.isConnected()) finish(false, `${url}: ${ws.failure || (ws.closeInfo && `closed ${JSON.stringify(ws.closeInfo)}`) || err.message}`);
  c.ws = sc.websocket;
  // `connected` from the server, with our peerId; a close right after the 101 (bad peerId,
  // too many connections) shows up here too
  const conn = await until(() => c.ws.frames.find((m) => m.type === 'connected') || c.ws.closeInfo, 'connected');
  if (!conn || conn.code !== undefined) finish(false, `${url}: closed before 'connected' ${JSON.stringify(c.ws.closeInfo)}`);
  if (!conn.data || conn.data.peerId !== id) finish(false, `'connected' does not carry our peerId: ${JSON.stringify(conn)}`);
  c.of = (type) => c.msgs.filter((m) => m.type === type);
  c.errors = () => c.ws.frames.filter((m) => m.type === 'error');
  return c;
}

async function main() {
  const dir = pkgDir();
  if (!dir) finish(false, "npm package 'peerpigeon' not found (NODE_PATH=.deps/node_modules; test/deps.sh installs peerpigeon@1.1.3)");
  step = 'load peerpigeon';
  const { SignalingClient } = await import(pathToFileURL(path.join(dir, 'index.js')).href);

  const a = await client(SignalingClient, 'A', URL_A);
  const b = await client(SignalingClient, 'B', URL_B);

  // discovery both ways (the library drops frames of other networks, targets or itself)
  const discovered = (x, y) => x.of('peer-discovered').find((m) => m.data && m.data.peerId === y.id);
  for (const [x, y] of [[a, b], [b, a]]) {
    step = `discovery ${x.name}<-${y.name}`;
    const m = await until(() => discovered(x, y) || (x.errors()[0] && { err: x.errors()[0] }));
    if (m.err) finish(false, `server error: ${JSON.stringify(m.err)}`);
    if (m.networkName !== network || m.fromPeerId !== 'system') finish(false, `bad envelope ${JSON.stringify(m)}`);
  }

  // offer and answer cross (opaque data: the server forwards it unchanged)
  const tag = crypto.randomBytes(6).toString('hex');
  const offer = { type: 'offer', sdp: `v=0\r\no=- ${tag} 2 IN IP4 127.0.0.1\r\ns=smoke\r\nt=0 0\r\n` };
  step = 'offer A->B';
  await a.sc.sendSignalingMessage({ type: 'offer', data: offer, targetPeerId: b.id });
  const got = await until(() => b.of('offer').find((m) => m.data && m.data.sdp === offer.sdp));
  if (got.fromPeerId !== a.id || got.targetPeerId !== b.id) finish(false, `bad envelope ${JSON.stringify(got)}`);
  const answer = { type: 'answer', sdp: offer.sdp.replace(' 2 IN', ' 3 IN') };
  step = 'answer B->A';
  await b.sc.sendSignalingMessage({ type: 'answer', data: answer, targetPeerId: a.id });
  const ans = await until(() => a.of('answer').find((m) => m.data && m.data.sdp === answer.sdp));
  if (ans.fromPeerId !== b.id || ans.targetPeerId !== a.id) finish(false, `bad envelope ${JSON.stringify(ans)}`);

  // B leaves; A hears of it
  step = 'leave B, seen by A';
  b.sc.disconnect();
  const pd = await until(() => a.of('peer-disconnected').find((m) => m.data && m.data.peerId === b.id));
  if (pd.networkName !== network) finish(false, `bad envelope ${JSON.stringify(pd)}`);
  const reason = pd.data.reason !== undefined ? ` (${pd.data.reason})` : '';

  step = 'disconnect A';
  a.sc.disconnect();
  const where = URL_A === URL_B ? 'one server' : 'two servers';
  finish(true, `${where}: A=${short(a.id)} B=${short(b.id)} network=${network}: connected, discovered both ways, offer/answer crossed, ` +
    `leave seen${reason}; ${Date.now() - t0} ms`);
}

main().catch((e) => finish(false, e && e.message ? e.message : String(e)));
