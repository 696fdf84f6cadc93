// test/interop.js - the real JS client (npm peerpigeon@1.1.3) in Node against our server.
//
// How the client runs in Node: the package is ESM, loaded with import(). Its SignalingClient uses
// a global WebSocket when one exists, so we install `ws` (wrapped to record every frame in both
// directions) as globalThis.WebSocket. SignalingClient is used directly with a stub mesh
// ({networkName}); it is all the client's signalling behaviour (announce on open, network
// filtering, reconnect logic). PeerPigeonMesh is used as well: init() works without WebRTC
// (@koush/wrtc is installed with --ignore-scripts, so it has no native binary; PigeonRTC logs an
// error and the mesh carries on), connect(), discovery events, goodbye and sendSignalingMessage
// all work; only its attempts to open RTCPeerConnections fail ("WebRTC not supported"), which
// sends nothing to the server. The real data-channel path is covered by test/browser.js.
//
// The library prints a lot (console.log/error); that is kept out of the output unless
// PP_VERBOSE=1, so the runner's grep for FAIL/Error only sees this suite's lines.
'use strict';
const util = require('util');
const lib = require('./lib');
const { check, eq, run, startServer, sleep } = lib;
const WS = lib.WebSocket;

const PKG = `${require('./lib.js').DEPS}/peerpigeon`;
const UNROUTED = (t) => `Signaling server does not route '${t}' messages. Use WebRTC data channels for peer-to-peer communication.`;

// ---- quiet the library ----------------------------------------------------------------------
const realLog = console.log.bind(console);
const noise = [];
if (!process.env.PP_VERBOSE) {
  const keep = (s) => /^FAIL |^\d+ passed, \d+ failed$|^NOTE /.test(s);
  console.log = (...a) => { const s = util.format(...a); if (keep(s)) realLog(s); else noise.push(s); };
  console.info = console.debug = console.warn = console.error = (...a) => { noise.push(util.format(...a)); };
}
const note = (s) => console.log(`NOTE ${s}`);

// ---- a recording WebSocket for the library ---------------------------------------------------
const sockets = [];
class CapWS extends WS {
  constructor(url, protocols, opts) {
    super(url, protocols, { perMessageDeflate: false, ...(opts || {}) });
    this.cap = []; // [{dir:'in'|'out', msg}]
    this.url_ = url;
    sockets.push(this);
    this.on('message', (d) => {
      let m;
      try { m = JSON.parse(d.toString()); } catch { m = { type: '<unparsable>', raw: d.toString() }; }
      this.cap.push({ dir: 'in', msg: m });
    });
    this.on('error', () => {});
  }
  send(d, ...a) {
    try { this.cap.push({ dir: 'out', msg: JSON.parse(String(d)) }); } catch { this.cap.push({ dir: 'out', msg: String(d) }); }
    return super.send(d, ...a);
  }
}
globalThis.WebSocket = CapWS;

let PP; // the imported package
async function pkg() {
  if (!PP) PP = await import(`${PKG}/index.js`);
  return PP;
}

async function waitFor(pred, ms, what) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
}

// ---- SignalingClient with a stub mesh --------------------------------------------------------
const live = new Set();
async function sigClient(srv, network = 'global', id = lib.randomId()) {
  const { SignalingClient } = await pkg();
  const sc = new SignalingClient(id, 10, { networkName: network });
  const c = { id, sc, network, msgs: [], connectedEvents: 0, disconnectedEvents: 0 };
  sc.addEventListener('signalingMessage', (m) => c.msgs.push(m));
  sc.addEventListener('connected', () => c.connectedEvents++);
  sc.addEventListener('disconnected', () => c.disconnectedEvents++);
  await sc.connect(srv.url());
  c.ws = sc.websocket;
  c.of = (type) => c.msgs.filter((m) => m.type === type);
  c.raw = (type, dir = 'in') => c.ws.cap.filter((e) => e.dir === dir && (!type || e.msg.type === type)).map((e) => e.msg);
  c.discovered = () => c.of('peer-discovered').map((m) => m.data && m.data.peerId);
  c.close = () => { sc.disconnect(); live.delete(c); };
  c.kill = () => { sc.deliberateDisconnect = true; sc.websocket.terminate(); live.delete(c); };
  live.add(c);
  return c;
}

function closeAll() {
  for (const c of live) { try { c.close(); } catch { /* already gone */ } }
  live.clear();
}

// ---- PeerPigeonMesh ------------------------------------------------------------------------
const meshes = new Set();
async function mesh(srv, network) {
  const { PeerPigeonMesh } = await pkg();
  const m = new PeerPigeonMesh({ networkName: network, enableWebDHT: false, enableCrypto: false });
  const r = { m, discovered: [], msgs: [], status: [] };
  m.addEventListener('peerDiscovered', (d) => r.discovered.push(d.peerId));
  m.addEventListener('statusChanged', (d) => r.status.push(d));
  await m.init();
  m.signalingClient.addEventListener('signalingMessage', (msg) => r.msgs.push(msg));
  await m.connect(srv.url());
  r.ws = m.signalingClient.websocket;
  r.id = m.peerId;
  meshes.add(r);
  return r;
}
function closeMeshes() {
  for (const r of meshes) { try { r.m.disconnect(); } catch { /* ignore */ } }
  meshes.clear();
}

const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

// Every client sees exactly the other members of its group, once, with the right envelope.
function checkDiscovery(group, what) {
  for (const c of group) {
    const others = group.filter((o) => o !== c).map((o) => o.id);
    const got = c.discovered();
    check(sameSet(got, others), `${what}: ${c.id.slice(0, 6)} discovered exactly its ${others.length} network peers`,
      { got: got.map((x) => x && x.slice(0, 6)), want: others.map((x) => x.slice(0, 6)) });
    const bad = c.of('peer-discovered').filter((m) => m.networkName !== c.network || m.targetPeerId !== c.id ||
      m.fromPeerId !== 'system' || typeof m.timestamp !== 'number');
    check(bad.length === 0, `${what}: peer-discovered envelopes right (network, target, system, timestamp)`, bad[0]);
  }
}

// PP_REFERENCE=1: run the same suite against the JS reference server (server/start.js) to see
// where the two differ; failures there are expected where PROTOCOL.md makes a CHOICE.
async function startReference() {
  const { spawn } = require('child_process');
  const proc = spawn(process.execPath, [`${PKG}/server/start.js`], {
    env: { ...process.env, PORT: String(20000 + Math.floor(Math.random() * 20000)), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const r = { proc, port: 0, get log() { return ''; }, url: () => `ws://127.0.0.1:${r.port}/`, stop() { proc.kill('SIGTERM'); } };
  const onData = (d) => { log += d; };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  await waitFor(() => /started on ws:\/\/[^:]+:(\d+)/.test(log), 5000, 'reference server start');
  r.port = +/started on ws:\/\/[^:]+:(\d+)/.exec(log)[1];
  process.on('exit', () => proc.kill('SIGTERM'));
  return r;
}

let srv;

const tests = [
  ['server starts', async () => {
    srv = process.env.PP_REFERENCE ? await startReference() : await startServer();
    check(srv.port > 0, 'server port');
  }],

  ['two SignalingClients discover each other', async () => {
    const a = await sigClient(srv, 'alpha');
    const b = await sigClient(srv, 'alpha');
    await waitFor(() => a.discovered().length >= 1 && b.discovered().length >= 1, 3000, 'discovery of two');
    await sleep(150);
    checkDiscovery([a, b], 'two');
    eq(a.discovered(), [b.id], 'a discovered b');
    eq(b.discovered(), [a.id], 'b discovered a');
    // wire: the server's connected message and what the client sent
    const conn = a.raw('connected')[0];
    check(conn && conn.data && conn.data.peerId === a.id && conn.fromPeerId === 'system', 'connected message carries our peerId', conn);
    const ann = a.raw('announce', 'out')[0];
    check(ann && ann.networkName === 'alpha' && ann.data.peerId === a.id && ann.maxPeers === 10,
      'client announce shape (networkName, data.peerId, maxPeers)', ann);
    const disc = b.of('peer-discovered')[0];
    check(disc && disc.data && disc.data.isHub === false, 'peer-discovered data.isHub false for a client', disc);
    check(a.connectedEvents === 1 && a.sc.isConnected(), 'client reports connected', a.connectedEvents);
    check(!a.raw().some((m) => m.type === 'error'), 'no error frames during announce', a.raw('error'));
    closeAll();
  }],

  ['ten SignalingClients in one network', async () => {
    const group = [];
    for (let i = 0; i < 10; i++) group.push(await sigClient(srv, 'ten'));
    await waitFor(() => group.every((c) => c.discovered().length >= 9), 5000, 'ten-way discovery');
    await sleep(200);
    checkDiscovery(group, 'ten');
    closeAll();
  }],

  ['two networks of five: no cross-network discovery', async () => {
    const red = [];
    const blue = [];
    for (let i = 0; i < 5; i++) { red.push(await sigClient(srv, 'red')); blue.push(await sigClient(srv, 'blue')); }
    await waitFor(() => [...red, ...blue].every((c) => c.discovered().length >= 4), 5000, 'discovery in two networks');
    await sleep(300);
    checkDiscovery(red, 'red');
    checkDiscovery(blue, 'blue');
    // raw frames: nothing about the other network reached the socket at all (the client would
    // filter a mislabelled frame, which would hide a leak)
    const ids = (g) => new Set(g.map((c) => c.id));
    for (const [g, other] of [[red, ids(blue)], [blue, ids(red)]]) {
      for (const c of g) {
        const leak = c.raw().filter((m) => (m.data && other.has(m.data.peerId)) || other.has(m.fromPeerId));
        check(leak.length === 0, `${c.network} ${c.id.slice(0, 6)}: no frame about the other network`, leak[0]);
      }
    }
    closeAll();
  }],

  ['PeerPigeonMesh: two then ten discover each other (peerDiscovered)', async () => {
    const two = [await mesh(srv, 'mesh-two'), await mesh(srv, 'mesh-two')];
    await waitFor(() => two.every((r) => r.discovered.length >= 1), 4000, 'mesh discovery of two');
    eq(two[0].discovered, [two[1].id], 'mesh 0 peerDiscovered mesh 1');
    eq(two[1].discovered, [two[0].id], 'mesh 1 peerDiscovered mesh 0');
    check(two.every((r) => r.m.connected && r.status.some((s) => s.type === 'connected')), 'meshes report connected');
    closeMeshes();
    await sleep(100);
    const ten = [];
    for (let i = 0; i < 10; i++) ten.push(await mesh(srv, 'mesh-ten'));
    await waitFor(() => ten.every((r) => r.discovered.length >= 9), 6000, 'mesh discovery of ten');
    await sleep(200);
    for (const r of ten) {
      const others = ten.filter((o) => o !== r).map((o) => o.id);
      check(sameSet(r.discovered, others), `mesh ${r.id.slice(0, 6)} peerDiscovered all 9 others exactly once`, r.discovered.length);
      const known = r.m.peerDiscovery.getDiscoveredPeers().map((p) => p.peerId);
      check(sameSet(known, others), `mesh ${r.id.slice(0, 6)} discovered-peer list holds the 9 others`, known.length);
    }
    // what the mesh sent to the server: only types the server routes or answers
    const sent = new Set(ten.flatMap((r) => r.ws.cap.filter((e) => e.dir === 'out').map((e) => e.msg.type)));
    note(`mesh sent types: ${[...sent].join(',')}`);
    const errs = ten.flatMap((r) => r.ws.cap.filter((e) => e.dir === 'in' && e.msg.type === 'error').map((e) => e.msg));
    check(errs.length === 0, 'no server errors for what ten meshes sent', errs[0]);
    closeMeshes();
  }],

  ['PeerPigeonMesh: two networks of five stay apart', async () => {
    const red = [];
    const blue = [];
    for (let i = 0; i < 5; i++) { red.push(await mesh(srv, 'mred')); blue.push(await mesh(srv, 'mblue')); }
    await waitFor(() => [...red, ...blue].every((r) => r.discovered.length >= 4), 6000, 'mesh discovery in two networks');
    await sleep(300);
    for (const [g, other] of [[red, blue], [blue, red]]) {
      const otherIds = new Set(other.map((o) => o.id));
      for (const r of g) {
        const mine = g.filter((o) => o !== r).map((o) => o.id);
        check(sameSet(r.discovered, mine), `mesh ${r.m.networkName} ${r.id.slice(0, 6)} discovered exactly its 4`, r.discovered.length);
        const leak = r.ws.cap.filter((e) => e.dir === 'in' && ((e.msg.data && otherIds.has(e.msg.data.peerId)) || otherIds.has(e.msg.fromPeerId)));
        check(leak.length === 0, `mesh ${r.m.networkName}: no frame about the other network`, leak[0] && leak[0].msg);
      }
    }
    closeMeshes();
  }],

  ['signalling exchange arrives intact', async () => {
    const a = await sigClient(srv, 'sig');
    const b = await sigClient(srv, 'sig');
    const bystander = await sigClient(srv, 'sig');
    await waitFor(() => a.discovered().length >= 2 && b.discovered().length >= 2, 3000, 'discovery');
    const sdp = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n' +
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:+/=\\"x\r\n' +
      'a=fingerprint:sha-256 AB:CD:EF\r\na=sctp-port:5000\r\n';
    const offer = {
      type: 'offer', sdp,
      meta: { uni: 'ünïcødé 🐦 中文 \u2028 \u0000 "quoted" \\back\\ \t', nested: { a: [1, { b: null, c: true, d: -1.5e-7 }], e: {} },
        big: 9007199254740991, empty: '', arr: [[], [[]], 'x'] },
    };
    await a.sc.sendSignalingMessage({ type: 'offer', data: offer, targetPeerId: b.id });
    await waitFor(() => b.of('offer').length >= 1, 3000, 'offer at b');
    const got = b.of('offer')[0];
    eq(got.data, offer, 'offer data unchanged (same keys, order, unicode, escapes)');
    eq([got.fromPeerId, got.targetPeerId, got.networkName], [a.id, b.id, 'sig'], 'offer envelope from/target/network');
    check(typeof got.timestamp === 'number' && Math.abs(got.timestamp - Date.now()) < 10000, 'offer timestamp is ms now', got.timestamp);
    const rawOffer = b.raw('offer')[0];
    check(rawOffer && !('maxPeers' in rawOffer), 'forwarded offer carries no client-only keys (maxPeers)', rawOffer && Object.keys(rawOffer));

    const answer = { type: 'answer', sdp: sdp.replace('4611731400430051336', '99'), extra: { 'ключ': ['значение', { '🗝': '🔒' }] } };
    await b.sc.sendSignalingMessage({ type: 'answer', data: answer, targetPeerId: a.id });
    await waitFor(() => a.of('answer').length >= 1, 3000, 'answer at a');
    const ans = a.of('answer')[0];
    eq(ans.data, answer, 'answer data unchanged');
    eq([ans.fromPeerId, ans.targetPeerId, ans.networkName], [b.id, a.id, 'sig'], 'answer envelope');

    const cands = [];
    for (let i = 0; i < 25; i++) {
      cands.push({ candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 ${50000 + i} typ host generation 0 ufrag x`, sdpMid: '0', sdpMLineIndex: 0, usernameFragment: null, n: i });
    }
    for (const c of cands) a.sc.sendSignalingMessage({ type: 'ice-candidate', data: c, targetPeerId: b.id });
    await waitFor(() => b.of('ice-candidate').length >= 25, 3000, '25 candidates at b');
    eq(b.of('ice-candidate').map((m) => m.data), cands, 'ice candidates intact and in order');
    check(b.of('ice-candidate').every((m) => m.fromPeerId === a.id && m.targetPeerId === b.id && m.networkName === 'sig'),
      'ice-candidate envelopes right');
    await sleep(150);
    check(!bystander.raw().some((m) => ['offer', 'answer', 'ice-candidate'].includes(m.type)), 'bystander got none of the exchange');
    check(!a.raw('offer').length && !b.raw('answer').length, 'senders get no echo of their own messages');
    check(b.of('ice-candidate').length === 25, 'no duplicated candidates', b.of('ice-candidate').length);

    // a target in another network does not get the offer
    const far = await sigClient(srv, 'elsewhere');
    await a.sc.sendSignalingMessage({ type: 'offer', data: offer, targetPeerId: far.id });
    await sleep(300);
    check(far.raw('offer').length === 0, 'offer to a peer of another network is not delivered', far.raw('offer'));
    check(a.sc.isConnected(), 'sender still connected after cross-network offer');
    closeAll();
  }],

  ['mesh.sendSignalingMessage reaches the other mesh', async () => {
    const x = await mesh(srv, 'msig');
    const y = await mesh(srv, 'msig');
    await waitFor(() => x.discovered.length >= 1 && y.discovered.length >= 1, 4000, 'mesh discovery');
    const data = { type: 'offer', sdp: 'v=0\r\nnot a real offer ✓\r\n', nested: { k: [1, 2, { z: 'ß' }] } };
    await x.m.sendSignalingMessage({ type: 'offer', data }, y.id);
    await waitFor(() => y.msgs.some((m) => m.type === 'offer'), 3000, 'offer at mesh y');
    const got = y.msgs.find((m) => m.type === 'offer');
    eq(got.data, data, 'mesh offer data intact');
    eq([got.fromPeerId, got.targetPeerId, got.networkName], [x.id, y.id, 'msig'], 'mesh offer envelope');
    closeMeshes();
  }],

  ['disconnect yields peer-disconnected at the others', async () => {
    const a = await sigClient(srv, 'bye');
    const b = await sigClient(srv, 'bye');
    const c = await sigClient(srv, 'bye');
    const other = await sigClient(srv, 'not-bye');
    await waitFor(() => [a, b, c].every((x) => x.discovered().length >= 2), 3000, 'discovery');
    // clean close (SignalingClient.disconnect: close 1000)
    a.close();
    await waitFor(() => b.of('peer-disconnected').length >= 1 && c.of('peer-disconnected').length >= 1, 3000, 'peer-disconnected after close');
    await sleep(200);
    for (const x of [b, c]) {
      const pd = x.of('peer-disconnected');
      check(pd.length === 1, `${x.id.slice(0, 6)}: exactly one peer-disconnected`, pd.length);
      const m = pd[0];
      check(m.data && m.data.peerId === a.id && m.networkName === 'bye' && m.targetPeerId === x.id && m.fromPeerId === 'system',
        'peer-disconnected envelope (data.peerId, network, target, system)', m);
      check(m.data && m.data.isHub === false && typeof m.data.reason === 'string', 'peer-disconnected data.isHub/reason', m.data);
    }
    check(!other.raw('peer-disconnected').length, 'another network hears nothing of the disconnect', other.raw('peer-disconnected'));
    // abrupt: TCP reset without a close frame
    b.kill();
    await waitFor(() => c.of('peer-disconnected').length >= 2, 3000, 'peer-disconnected after abrupt close');
    check(c.of('peer-disconnected')[1].data.peerId === b.id, 'abrupt close reported with the right peerId', c.of('peer-disconnected')[1]);
    closeAll();
  }],

  ['mesh disconnect: goodbye then peer-disconnected; others forget the peer', async () => {
    const x = await mesh(srv, 'mbye');
    const y = await mesh(srv, 'mbye');
    const z = await mesh(srv, 'mbye');
    await waitFor(() => [x, y, z].every((r) => r.discovered.length >= 2), 4000, 'mesh discovery');
    x.m.disconnect();
    meshes.delete(x);
    await waitFor(() => [y, z].every((r) => r.msgs.some((m) => m.type === 'peer-disconnected')), 3000, 'peer-disconnected at meshes');
    for (const r of [y, z]) {
      const gb = r.msgs.filter((m) => m.type === 'goodbye');
      check(gb.length === 1 && gb[0].fromPeerId === x.id && gb[0].networkName === 'mbye', 'mesh got goodbye from leaver', gb);
      const pd = r.msgs.filter((m) => m.type === 'peer-disconnected');
      check(pd.length === 1 && pd[0].data.peerId === x.id, 'mesh got one peer-disconnected for leaver', pd);
      const known = r.m.peerDiscovery.getDiscoveredPeers().map((p) => p.peerId);
      check(!known.includes(x.id), 'leaver removed from mesh discovered peers (via goodbye)', known);
    }
    closeMeshes();
  }],

  ['SignalingClient.sendGoodbyeMessage (no networkName on the wire) is scoped to its network', async () => {
    const a = await sigClient(srv, 'gb');
    const b = await sigClient(srv, 'gb');
    const g = await sigClient(srv); // global
    await waitFor(() => a.discovered().length >= 1 && b.discovered().length >= 1, 3000, 'discovery');
    a.sc.sendGoodbyeMessage();
    const out = a.raw('goodbye', 'out')[0];
    check(out && !('networkName' in out), 'client goodbye carries no networkName (as the library sends it)', out);
    await waitFor(() => b.of('goodbye').length >= 1, 3000, 'goodbye at b (client drops it unless networkName is gb)');
    const m = b.of('goodbye')[0];
    eq([m.fromPeerId, m.networkName], [a.id, 'gb'], 'goodbye envelope');
    await waitFor(() => b.of('peer-disconnected').length >= 1, 3000, 'peer-disconnected after goodbye');
    check(b.of('peer-disconnected')[0].data.peerId === a.id, 'peer-disconnected after goodbye names the leaver');
    await sleep(150);
    check(!g.raw('goodbye').length && !g.raw('peer-disconnected').length, 'global peer hears nothing of gb goodbye');
    check(a.sc.isConnected(), 'socket stays open after goodbye');
    closeAll();
  }],

  ['unrouted types get the JS error text; the client keeps working', async () => {
    const a = await sigClient(srv); // global: the client only passes on frames of its own network
    const b = await sigClient(srv);
    const n = await sigClient(srv, 'named');
    await waitFor(() => a.discovered().includes(b.id), 3000, 'discovery');
    const types = ['connection-rejected', 'renegotiation-offer', 'renegotiation-answer', 'ice-restart-offer',
      'ice-restart-answer', 'recovery-offer', 'cleanup-all'];
    for (const t of types) {
      await a.sc.sendSignalingMessage({ type: t, data: { reason: 'x', peerId: a.id }, ...(t === 'cleanup-all' ? {} : { targetPeerId: b.id }) });
    }
    await waitFor(() => a.of('error').length >= types.length, 3000, 'errors for unrouted types');
    eq(a.of('error').map((m) => m.error), types.map(UNROUTED), 'error text per unrouted type, in order');
    check(a.of('error').every((m) => typeof m.timestamp === 'number'), 'error has timestamp');
    check(!b.raw().some((m) => types.includes(m.type)), 'target got none of the unrouted messages');
    // cleanup: accepted, no reply
    await a.sc.sendCleanupMessage(b.id);
    await sleep(300);
    check(a.raw('error').length === types.length, 'cleanup gets no error', a.raw('error').length);
    check(!b.raw('cleanup').length, 'cleanup not forwarded');
    // still working
    check(a.sc.isConnected() && a.disconnectedEvents === 0, 'client still connected');
    await a.sc.sendSignalingMessage({ type: 'offer', data: { type: 'offer', sdp: 'v=0 after errors' }, targetPeerId: b.id });
    await waitFor(() => b.of('offer').length >= 1, 3000, 'offer after errors');
    eq(b.of('offer')[0].data.sdp, 'v=0 after errors', 'offer after errors delivered');
    a.ws.send(JSON.stringify({ type: 'ping' }));
    await waitFor(() => a.raw('pong').length >= 1, 3000, 'pong');
    check(a.raw('pong')[0].targetPeerId === a.id, 'pong targets us', a.raw('pong')[0]);
    // a client in a named network: the error has no networkName, so the client filters it
    // (same as with the JS server); it arrives on the wire though
    await n.sc.sendSignalingMessage({ type: 'renegotiation-offer', data: {}, targetPeerId: a.id });
    await waitFor(() => n.raw('error').length >= 1, 3000, 'error on the wire for a named-network client');
    eq(n.raw('error')[0].error, UNROUTED('renegotiation-offer'), 'named-network client gets the error text on the wire');
    check(n.sc.isConnected(), 'named-network client still connected');
    closeAll();
  }],

  ['server restart: the client reconnects by itself and rediscovers', async () => {
    if (process.env.PP_REFERENCE) return;
    const a = await sigClient(srv, 'rc');
    const b = await sigClient(srv, 'rc');
    await waitFor(() => a.discovered().length >= 1 && b.discovered().length >= 1, 3000, 'discovery');
    const port = srv.port;
    await srv.stop(); // SIGTERM: also checks sanitizer-clean and exit 0
    await waitFor(() => a.disconnectedEvents >= 1 && b.disconnectedEvents >= 1, 3000, 'clients notice the shutdown');
    srv = await startServer({ PORT: String(port) });
    // first reconnect attempt after 1 s; announce again on open
    await waitFor(() => a.connectedEvents >= 2 && b.connectedEvents >= 2, 8000, 'clients reconnect');
    await waitFor(() => a.discovered().length >= 2 && b.discovered().length >= 2, 3000, 'rediscovery');
    eq([a.discovered()[1], b.discovered()[1]], [b.id, a.id], 'peers rediscovered after the restart');
    check(a.sc.websocket.cap.filter((e) => e.dir === 'in' && e.msg.type === 'connected').length === 1, 'new socket got its connected');
    closeAll();
  }],

  ['server log clean of client-caused warnings', async () => {
    check(!/malformed|invalid json|protocol error/i.test(srv.log), 'no protocol complaints in server log', srv.log.slice(-2000));
  }],
];

run(tests, { limitMs: 30000 }).finally(() => { closeAll(); closeMeshes(); });
process.on('exit', () => {
  if (process.env.PP_VERBOSE) return;
  const crit = noise.filter((s) => /TypeError|ReferenceError|Unhandled/.test(s));
  if (crit.length) realLog(`NOTE library printed ${crit.length} exception lines, first: ${crit[0].split('\n')[0].slice(0, 200)}`);
});
