// test/proxy.js - small Node helpers for test/proxy.sh (no curl needed):
//   node test/proxy.js port            a TCP port free on 127.0.0.1 and, if ::1 is there, on ::1
//   node test/proxy.js ipv6            exit 0 if ::1 can be bound (IPv6 loopback configured)
//   node test/proxy.js get URL [CA]    GET http(s)://...; prints "<status> <location> <body>" on
//                                      one line (body squashed, at most 300 bytes); exit 1 on a
//                                      network or TLS error (printed as "ERR <code> <message>")
//   node test/proxy.js hold URL CA MS  open a WebSocket (ws package), send nothing for MS ms;
//                                      prints "open after MS ms, N pings" (exit 0) or why it
//                                      closed (exit 1): an idle peer must outlive proxy timeouts
'use strict';
const net = require('net');
const fs = require('fs');

function listen(port, host) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.on('error', () => resolve(null));
    s.listen({ port, host, exclusive: true }, () => resolve(s));
  });
}
const close = (s) => new Promise((r) => (s ? s.close(r) : r()));

async function ipv6() {
  const s = await listen(0, '::1');
  await close(s);
  return !!s;
}

async function freePort() {
  const v6 = await ipv6();
  for (let i = 0; i < 50; i++) {
    const a = await listen(0, '127.0.0.1');
    if (!a) continue;
    const port = a.address().port;
    const b = v6 ? await listen(port, '::1') : null;
    await close(a);
    await close(b);
    if (!v6 || b) return port;
  }
  throw new Error('no free port');
}

function get(url, caFile) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? require('https') : require('http');
  const opts = { method: 'GET', agent: false, timeout: 5000 };
  if (caFile) opts.ca = fs.readFileSync(caFile);
  return new Promise((resolve) => {
    const req = mod.request(u, opts, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ ok: true, line: `${res.statusCode} ${res.headers.location || '-'} ${body.replace(/\s+/g, ' ').slice(0, 300)}` }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ ok: false, line: `ERR ${e.code || '-'} ${e.message}` }));
    req.end();
  });
}

function hold(url, caFile, ms) {
  let WS;
  try { WS = require('ws'); } catch { WS = require(require('path').join(__dirname, '..', '.deps', 'node_modules', 'ws')); }
  const id = require('crypto').randomBytes(20).toString('hex');
  const u = new URL(url);
  u.searchParams.set('peerId', id);
  return new Promise((resolve) => {
    const ws = new WS(u.toString(), { ca: caFile ? fs.readFileSync(caFile) : undefined, perMessageDeflate: false });
    let pings = 0;
    let done = false;
    const end = (ok, line) => { if (!done) { done = true; resolve({ ok, line }); try { ws.terminate(); } catch { /* gone */ } } };
    ws.on('ping', () => { pings++; });
    ws.on('open', () => setTimeout(() => end(ws.readyState === WS.OPEN, `open after ${ms} ms, ${pings} pings`), ms));
    ws.on('close', (code, reason) => end(false, `closed after ${pings} pings: ${code} ${reason}`));
    ws.on('error', (e) => end(false, `ERR ${e.code || '-'} ${e.message}`));
  });
}

(async () => {
  const [cmd, a, b] = process.argv.slice(2);
  if (cmd === 'port') console.log(await freePort());
  else if (cmd === 'ipv6') process.exit((await ipv6()) ? 0 : 1);
  else if (cmd === 'get') {
    const r = await get(a, b);
    console.log(r.line);
    process.exit(r.ok ? 0 : 1);
  } else if (cmd === 'hold') {
    const r = await hold(a, b, Number(process.argv[5]));
    console.log(r.line);
    process.exit(r.ok ? 0 : 1);
  } else {
    console.error('usage: node test/proxy.js port | ipv6 | get URL [CAFILE] | hold URL CAFILE MS');
    process.exit(2);
  }
})();
