// test/browser.js - a real browser against our server: Debian chromium driven by playwright-core.
// Two pages (separate browser contexts) load the package's browser bundle from a small local HTTP
// server, create PeerPigeonMesh instances in one network, connect to our signalling server,
// discover each other, open a real WebRTC data channel (the mesh connects by itself after
// discovery; host candidates on loopback, mDNS hiding disabled) and exchange messages over it.
// The pages' WebSocket frames are recorded through playwright for a wire view of the signalling.
// Everything is bounded by timeouts; the browser is always closed. No chromium = a FAIL line.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const lib = require('./lib');
const { check, eq, run, startServer } = lib;

const CHROMIUM = process.env.PP_CHROMIUM || '/usr/bin/chromium';
const DEPS = require('./lib.js').DEPS;
const BUNDLE = path.join(DEPS, 'peerpigeon', 'dist', 'peerpigeon-browser.js');
const NETWORK = 'browser-net';
const VERBOSE = !!process.env.PP_VERBOSE;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>pp</title>
<script>
  window.AUTOMATED_TEST = true;                  // one STUN server instead of five
  window.DISABLE_LOCALHOST_MEDIA_REQUEST = true; // no getUserMedia prompt on localhost
  window.ppEvents = [];
</script>
<script src="/peerpigeon-browser.js"></script>
<script>
  window.ppStart = async (url, networkName) => {
    const mesh = new PeerPigeonMesh({ networkName, enableWebDHT: false, enableCrypto: false });
    window.mesh = mesh;
    const log = (type, d) => window.ppEvents.push({ type, t: Date.now(), d: JSON.parse(JSON.stringify(d || {})) });
    for (const ev of ['peerDiscovered', 'peerConnected', 'peerDisconnected', 'messageReceived'])
      mesh.addEventListener(ev, (d) => log(ev, d));
    mesh.addEventListener('statusChanged', (d) => { if (d && (d.type === 'error' || d.type === 'connected')) log('status:' + d.type, d); });
    await mesh.init();
    await mesh.connect(url);
    return mesh.peerId;
  };
</script></head><body>pp</body></html>`;

let srv;
let web;
let browser;
const pages = []; // { page, id, frames: {sent:[], recv:[]}, console: [] }

function serveStatic() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      if (req.url === '/' || req.url.startsWith('/?')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(PAGE);
      } else if (req.url === '/peerpigeon-browser.js') {
        res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8' });
        fs.createReadStream(BUNDLE).pipe(res);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

async function openPage() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const p = { page, ctx, frames: { sent: [], recv: [] }, console: [] };
  page.on('console', (m) => p.console.push(m.text()));
  page.on('pageerror', (e) => p.console.push('pageerror: ' + e.message));
  page.on('websocket', (ws) => {
    if (!ws.url().includes(`:${srv.port}`)) return;
    const parse = (f) => { try { return JSON.parse(typeof f.payload === 'string' ? f.payload : f.payload.toString()); } catch { return { type: '<unparsable>' }; } };
    ws.on('framesent', (f) => p.frames.sent.push(parse(f)));
    ws.on('framereceived', (f) => p.frames.recv.push(parse(f)));
  });
  await page.goto(`http://127.0.0.1:${web.address().port}/`, { timeout: 15000 });
  pages.push(p);
  return p;
}

const events = (p, type) => p.page.evaluate((t) => window.ppEvents.filter((e) => e.type === t), type);

// Resolves true once the page has logged a matching event (throws on timeout).
async function waitEvent(p, type, pred, ms, what) {
  return p.page.waitForFunction(([t, src]) => {
    const f = eval(src); // eslint-disable-line no-eval
    return window.ppEvents.some((e) => e.type === t && f(e));
  }, [type, pred], { timeout: ms, polling: 100 }).then(() => true, (e) => { throw new Error(`${what}: ${e.message.split('\n')[0]}`); });
}

function dump(p, label) {
  const types = (a) => a.map((m) => m.type).join(',');
  console.log(`-- ${label} ${p.id ? p.id.slice(0, 8) : ''}: sent [${types(p.frames.sent)}] recv [${types(p.frames.recv)}]`);
  const errs = p.console.filter((s) => /error|fail|reject/i.test(s)).slice(-15);
  for (const s of (VERBOSE ? p.console : errs)) console.log(`   console: ${s.slice(0, 300)}`);
}

const tests = [
  ['chromium present', async () => {
    const ok = check(fs.existsSync(CHROMIUM), `chromium available at ${CHROMIUM} (install: apt-get install chromium)`);
    check(fs.existsSync(BUNDLE), `browser bundle present at ${BUNDLE}`);
    if (!ok) throw new Error('no chromium: browser test cannot run');
  }],

  ['two browsers connect over WebRTC through our server', async () => {
    if (!fs.existsSync(CHROMIUM)) { check(false, 'browser test skipped: chromium missing'); return; }
    srv = await startServer();
    web = await serveStatic();
    const { chromium } = require('playwright-core');
    browser = await withTimeout(chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-features=WebRtcHideLocalIpsWithMdns',
        '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
      timeout: 20000,
    }), 25000, 'chromium launch');
    check(!!browser && browser.isConnected(), 'chromium launched', browser && browser.version());

    const a = await openPage();
    const b = await openPage();
    check(await a.page.evaluate(() => typeof window.PeerPigeonMesh === 'function'), 'bundle defines PeerPigeonMesh');
    const url = srv.url();
    a.id = await withTimeout(a.page.evaluate(([u, n]) => window.ppStart(u, n), [url, NETWORK]), 15000, 'page A start');
    b.id = await withTimeout(b.page.evaluate(([u, n]) => window.ppStart(u, n), [url, NETWORK]), 15000, 'page B start');
    check(/^[0-9a-f]{40}$/.test(a.id) && /^[0-9a-f]{40}$/.test(b.id) && a.id !== b.id, 'two distinct peer ids', [a.id, b.id]);

    try {
      // discovery through the server
      const da = await waitEvent(a, 'peerDiscovered', `(e) => e.d.peerId === ${JSON.stringify(b.id)}`, 10000, 'A discovers B');
      const db = await waitEvent(b, 'peerDiscovered', `(e) => e.d.peerId === ${JSON.stringify(a.id)}`, 10000, 'B discovers A');
      check(da && db, 'both pages got peerDiscovered for the other');
      const connA = a.frames.recv.find((m) => m.type === 'connected');
      check(connA && connA.data && connA.data.peerId === a.id, 'browser got connected frame with its peerId', connA);

      // WebRTC: the mesh connects by itself after discovery
      const ca = await waitEvent(a, 'peerConnected', `(e) => e.d.peerId === ${JSON.stringify(b.id)}`, 30000, 'A peerConnected to B');
      const cb = await waitEvent(b, 'peerConnected', `(e) => e.d.peerId === ${JSON.stringify(a.id)}`, 30000, 'B peerConnected to A');
      check(ca && cb, 'both pages report peerConnected (data channel open)');

      // the signalling went through our server, with the right envelope
      const [hi, lo] = a.id > b.id ? [a, b] : [b, a]; // the larger id initiates
      const offer = lo.frames.recv.find((m) => m.type === 'offer');
      check(offer && offer.fromPeerId === hi.id && offer.targetPeerId === lo.id && offer.networkName === NETWORK &&
        offer.data && offer.data.type === 'offer' && /^v=0/.test(offer.data.sdp), 'offer relayed by our server with the right envelope',
      offer && { from: offer.fromPeerId, to: offer.targetPeerId, net: offer.networkName });
      const answer = hi.frames.recv.find((m) => m.type === 'answer');
      check(answer && answer.fromPeerId === lo.id && answer.data && answer.data.type === 'answer', 'answer relayed back', answer && answer.fromPeerId);
      const cands = [...a.frames.recv, ...b.frames.recv].filter((m) => m.type === 'ice-candidate');
      check(cands.length > 0, 'ice candidates relayed', cands.length);
      const c0 = cands.find((m) => m.data && m.data.candidate);
      console.log(`NOTE ${cands.length} ice-candidate frames, e.g. ${c0 ? c0.data.candidate : '-'}`);
      const sentOffer = hi.frames.sent.find((m) => m.type === 'offer');
      check(sentOffer && JSON.stringify(sentOffer.data) === JSON.stringify(offer && offer.data), 'offer SDP byte-identical after relay');

      // a message over the data channel: broadcast A -> B, direct B -> A
      const textA = `hello from A ✓ ${Date.now()}`;
      await a.page.evaluate((t) => window.mesh.sendMessage(t), textA);
      await waitEvent(b, 'messageReceived', `(e) => e.d.content === ${JSON.stringify(textA)}`, 10000, 'B receives A broadcast');
      const gotB = (await events(b, 'messageReceived')).find((e) => e.d.content === textA);
      eq(gotB && gotB.d.from, a.id, 'broadcast arrives at B from A');
      const textB = `direct reply from B 🐦 ${Date.now()}`;
      await b.page.evaluate(([id, t]) => window.mesh.sendDirectMessage(id, t), [a.id, textB]);
      await waitEvent(a, 'messageReceived', `(e) => e.d.content === ${JSON.stringify(textB)}`, 10000, 'A receives B direct');
      const gotA = (await events(a, 'messageReceived')).find((e) => e.d.content === textB);
      eq(gotA && gotA.d.from, b.id, 'direct message arrives at A from B');

      // the server refused nothing it routes: the only error frames are the JS server's answer to
      // types it does not route (the client sends connection-rejected when both sides offer), one
      // per such message, with the exact JS text
      for (const p of [a, b]) {
        const routed = new Set(['announce', 'offer', 'answer', 'ice-candidate', 'goodbye', 'cleanup', 'ping']);
        const unrouted = p.frames.sent.filter((m) => !routed.has(m.type)).map((m) => m.type);
        const errs = p.frames.recv.filter((m) => m.type === 'error').map((m) => m.error);
        eq(errs, unrouted.map((t) => `Signaling server does not route '${t}' messages. Use WebRTC data channels for peer-to-peer communication.`),
          'error frames only for unrouted types, JS text');
      }
      const sentTypes = new Set([...a.frames.sent, ...b.frames.sent].map((m) => m.type));
      console.log(`NOTE browsers sent: ${[...sentTypes].join(',')}; received: ${[...new Set([...a.frames.recv, ...b.frames.recv].map((m) => m.type))].join(',')}`);

      // A leaves: B's socket hears goodbye and peer-disconnected from the server
      await a.page.evaluate(() => window.mesh.disconnect());
      const t0 = Date.now();
      while (!b.frames.recv.some((m) => m.type === 'peer-disconnected') && Date.now() - t0 < 5000) await lib.sleep(50);
      const pd = b.frames.recv.find((m) => m.type === 'peer-disconnected');
      check(pd && pd.data && pd.data.peerId === a.id && pd.networkName === NETWORK, 'B gets peer-disconnected for A', pd);
      check(b.frames.recv.some((m) => m.type === 'goodbye' && m.fromPeerId === a.id && m.networkName === NETWORK), 'B gets goodbye from A');
    } catch (e) {
      for (const p of pages) dump(p, 'page');
      throw e;
    }
  }],

  ['cleanup', async () => {
    if (browser) await withTimeout(browser.close(), 10000, 'browser close').catch((e) => check(false, 'browser closes', e.message));
    browser = null;
    if (web) await new Promise((r) => { web.closeAllConnections && web.closeAllConnections(); web.close(r); });
  }],
];

run(tests, { limitMs: 70000 });
