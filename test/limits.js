// test/limits.js - the open-internet limits of README "Limits", each as an attack over real
// sockets: message rates, identical re-announces, per-address limits (behind a proxy too), the
// HTTP connection limit and one answer in flight, input held within the memory budget, and
// producers held back instead of their receivers cut off. Each test asserts the attacker's
// answer and that a control pair of ordinary clients keeps signalling.
'use strict';
const fs = require('fs');
const net = require('net');
const lib = require('./lib');
const { check, eq, run, startServer, client, joined, request, sleep, randomId, frame, UPGRADE, WebSocket } = lib;

// a WebSocket from a chosen local address (127.0.0.2... are loopback too, but not exempt)
function from(srv, localAddress, { id = randomId(), headers } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/?peerId=${id}`, { localAddress, headers, perMessageDeflate: false });
    const r = { ws, id, status: 0, msgs: [] };
    ws.on('message', (d) => { r.msgs.push(JSON.parse(d.toString())); if (r.msgs.length === 1) resolve(r); });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { r.status = res.statusCode; r.body = body; resolve(r); });
    });
    ws.on('error', (e) => { r.error = e.message; resolve(r); });
    ws.on('close', (code, reason) => { r.code = code; r.reason = reason.toString(); resolve(r); });
  });
}

async function metrics(srv) {
  const text = (await request(srv, '/metrics')).body;
  const get = (name, labels = '') => {
    const re = new RegExp(`^peerpigeon_${name}${labels ? `\\{${labels.replace(/[{}"]/g, (c) => '\\' + c)}\\}` : ''} (\\d+)$`, 'm');
    const m = re.exec(text);
    return m ? +m[1] : null;
  };
  return { text, get };
}

// RSS bound for every attack here (the sanitizer build's own overhead included: its shadow
// memory and quarantine roughly double the heap); the unsanitized figures are in bench/RESULTS.md
const RSS_BOUND_KB = 256 * 1024;
function rssKB(srv) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8'));
  return m ? +m[1] : 0;
}

// Two ordinary clients exchanging an offer every 50 ms while an attack runs.
async function controlPair(srv) {
  const netName = `ctl-${randomId().slice(0, 6)}`;
  const a = await joined(srv, netName);
  const b = await joined(srv, netName);
  await b.next('peer-discovered');
  const lat = [];
  let sent = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const t0 = process.hrtime.bigint();
      a.send({ type: 'offer', targetPeerId: b.id, networkName: netName, data: { n: sent++ } });
      try { await b.next('offer', 2000); lat.push(Number(process.hrtime.bigint() - t0) / 1e6); } catch { /* lost */ }
      await sleep(50);
    }
  })();
  return {
    a, b,
    async stop() {
      stop = true;
      await loop;
      lat.sort((x, y) => x - y);
      const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : Infinity);
      return { sent, got: lat.length, p50: q(0.5), p99: q(0.99), open: a.ws.readyState === 1 && b.ws.readyState === 1 };
    },
  };
}

function controlOk(r, what, p99 = 500) {
  check(r.open && r.got === r.sent && r.sent >= 5 && r.p99 < p99,
    `${what}: the control pair kept signalling (${r.got}/${r.sent} offers, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms)`, r);
}

const closedP = (ws) => new Promise((r) => {
  if (ws.readyState === 3) return r({ code: -1, reason: 'already closed' });
  ws.on('close', (code, reason) => r({ code, reason: reason.toString() }));
});

// A storm's stage: a server, 10 members of network "v", a control pair, and the attacker
// connected (its close as a promise).
async function storm() {
  const S = await startServer();
  const members = [];
  for (let i = 0; i < 10; i++) members.push(await joined(S, 'v'));
  const ctl = await controlPair(S);
  const att = client(S);
  await att.opened;
  await att.next('connected');
  return { S, members, ctl, att, closed: closedP(att.ws) };
}

const tests = [];
const test = (name, fn) => tests.push([name, fn]);

// ---- message rates ----

test('announce storm with fresh 16 KiB data: one error naming the limit, then 1008; members hear of it at most once per allowed announce', async () => {
  const { S, members, ctl, att, closed } = await storm();
  const t0 = Date.now();
  let n = 0;
  while (att.ws.readyState === 1 && n < 2000) {
    att.send({ type: 'announce', networkName: 'v', data: { pad: randomId().repeat(400), n: n++ } });
    if (n % 20 === 0) await sleep(5);
  }
  const c = await Promise.race([closed, sleep(5000).then(() => null)]);
  eq(c && { code: c.code, reason: c.reason }, { code: 1008, reason: 'Rate limit exceeded' }, `the storm is closed 1008 (after ${n} announces, ${Date.now() - t0} ms)`);
  const errs = att.all('error');
  check(errs.length === 1 && /Rate limit: at most 5 announce messages at once, then 1 per second/.test(errs[0].error), 'one error names the announce limit', errs.map((e) => e.error));
  await sleep(300);
  const heard = members[0].all('peer-discovered').filter((m) => m.data.peerId === att.id).length;
  check(heard >= 1 && heard <= 7, `a member heard of the attacker ${heard} times (at most the burst of 5, +2 refills), not ${n}`);
  controlOk(await ctl.stop(), 'announce storm');
  check(rssKB(S) < RSS_BOUND_KB, `announce storm: server RSS ${rssKB(S)} KiB (bound ${RSS_BOUND_KB})`);
  const m = await metrics(S);
  check(m.get('rate_limited_total', 'kind="announce"') >= 19, 'rate_limited_total{kind="announce"} counts the drops', m.get('rate_limited_total', 'kind="announce"'));
  for (const x of members) x.ws.terminate();
  await S.stop();
});

test('identical re-announce: the announcer gets its list each time, the network hears once', async () => {
  const S = await startServer();
  const members = [];
  for (let i = 0; i < 5; i++) members.push(await joined(S, 'same'));
  const a = await joined(S, 'same', undefined, { pad: 'x'.repeat(16000) });
  for (let i = 0; i < 4; i++) a.send({ type: 'announce', networkName: 'same', data: { pad: 'x'.repeat(16000) } });
  a.send({ type: 'ping' });
  await a.next('pong');
  await sleep(200);
  eq(a.all('peer-discovered').length, 25, 'the announcer got the 5 members 5 times');
  const heard = members[0].all('peer-discovered').filter((m) => m.data.peerId === a.id).length;
  eq(heard, 1, 'a member heard of the 5 identical announces once');
  members[0].drop('peer-discovered');
  await sleep(1100); /* the announce allowance (a burst of 5) refills one a second */
  a.send({ type: 'announce', networkName: 'same', data: { pad: 'y'.repeat(16000) } });
  const d = await members[0].next('peer-discovered');
  check(d.data.peerId === a.id && d.data.pad === 'y'.repeat(16000), 'a changed announce is broadcast', d.data.peerId);
  const m = await metrics(S);
  eq(m.get('announce_repeats_total'), 4, 'announce_repeats_total counts the repeats');
  for (const x of [...members, a]) x.ws.terminate();
  await S.stop();
});

test('goodbye and network-switch storm: limited, then 1008; others unaffected', async () => {
  const { S, members, ctl, att, closed } = await storm();
  let n = 0;
  while (att.ws.readyState === 1 && n < 3000) {
    att.send({ type: 'announce', networkName: n % 2 ? 'v' : 'w' });
    att.send({ type: 'goodbye' });
    n++;
    if (n % 20 === 0) await sleep(5);
  }
  const c = await Promise.race([closed, sleep(5000).then(() => null)]);
  eq(c && c.code, 1008, `the switch storm is closed 1008 (after ${n} rounds)`);
  await sleep(300);
  const heard = members[0].all('peer-discovered').filter((m) => m.data.peerId === att.id).length;
  check(heard <= 7, `a member heard of the attacker ${heard} times, not ${n / 2}`);
  controlOk(await ctl.stop(), 'switch storm');
  check(rssKB(S) < RSS_BOUND_KB, `switch storm: server RSS ${rssKB(S)} KiB (bound ${RSS_BOUND_KB})`);
  for (const x of members) x.ws.terminate();
  await S.stop();
});

test('a client sending only bad messages gets at most the error burst, then 1008', async () => {
  const S = await startServer();
  const att = client(S);
  await att.opened;
  await att.next('connected');
  const closed = closedP(att.ws);
  for (let i = 0; i < 200 && att.ws.readyState === 1; i++) att.send('not json');
  const c = await Promise.race([closed, sleep(5000).then(() => null)]);
  eq(c && { code: c.code, reason: c.reason }, { code: 1008, reason: 'Rate limit exceeded' }, 'garbage flood -> 1008 Rate limit exceeded');
  const errs = att.all('error');
  check(errs.length <= 31 && errs.some((e) => /at most 30 error messages/.test(e.error)), `${errs.length} error replies (the burst of 30, and the one naming the limit)`);
  await S.stop();
});

test('rates do not touch real use: 1500 ice candidates at once, pings, announces across networks', async () => {
  const S = await startServer();
  const a = await joined(S, 'r');
  const b = await joined(S, 'r');
  await a.next('peer-discovered');
  for (let i = 0; i < 1500; i++) a.send({ type: 'ice-candidate', targetPeerId: b.id, networkName: 'r', data: { candidate: `c${i}` } });
  let got = 0;
  try { while (got < 1500) { await b.next('ice-candidate', 3000); got++; } } catch { /* counted */ }
  eq(got, 1500, 'all 1500 ice candidates delivered');
  for (let i = 0; i < 10; i++) a.send({ type: 'ping' });
  for (let i = 0; i < 10; i++) await a.next('pong');
  check(a.all('error').length === 0 && a.ws.readyState === 1, 'no error, still open');
  await S.stop();
});

test('RATE_LIMITS=false: no message rate', async () => {
  const S = await startServer({ RATE_LIMITS: 'false' });
  const a = await joined(S, 'r');
  for (let i = 0; i < 100; i++) a.send({ type: 'announce', networkName: 'r', data: { n: i } });
  a.send({ type: 'ping' });
  await a.next('pong');
  check(a.all('error').length === 0 && a.ws.readyState === 1, '100 announces at once: no error, open');
  await S.stop();
});

// ---- per address ----

test('MAX_CONNECTIONS_PER_IP: the next one from that address gets 429; other addresses and loopback are free', async () => {
  const S = await startServer({ MAX_CONNECTIONS_PER_IP: '5' });
  const ok = [];
  for (let i = 0; i < 5; i++) ok.push(await from(S, '127.0.0.2'));
  check(ok.every((r) => r.msgs[0] && r.msgs[0].type === 'connected'), '5 connections from 127.0.0.2');
  const sixth = await from(S, '127.0.0.2');
  check(sixth.status === 429 && /Too many connections from your address/.test(sixth.body), 'the 6th from 127.0.0.2: 429 naming the limit', { status: sixth.status, body: sixth.body, error: sixth.error });
  const other = await from(S, '127.0.0.3');
  check(other.msgs[0] && other.msgs[0].type === 'connected', 'another address connects');
  const lo = [];
  for (let i = 0; i < 8; i++) lo.push(await from(S, '127.0.0.1'));
  check(lo.every((r) => r.msgs[0] && r.msgs[0].type === 'connected'), 'loopback (where a local proxy connects from) is not limited');
  ok[0].ws.close();
  await sleep(200);
  const again = await from(S, '127.0.0.2');
  check(again.msgs[0] && again.msgs[0].type === 'connected', 'after one closed, 127.0.0.2 connects again');
  const m = await metrics(S);
  check(m.get('refused_total', 'reason="per_ip"') === 1, 'refused_total{reason="per_ip"} is 1', m.get('refused_total', 'reason="per_ip"'));
  for (const r of [...ok, other, ...lo, again]) r.ws.terminate();
  await S.stop();
});

test('CONNECT_RATE_PER_IP: a burst, then 429 "too fast" until the allowance refills', async () => {
  const S = await startServer({ MAX_CONNECTIONS_PER_IP: '4', CONNECT_RATE_PER_IP: '2' });
  let accepted = 0;
  let fast = null;
  for (let i = 0; i < 10; i++) {
    const r = await from(S, '127.0.0.4');
    if (r.msgs[0]) accepted++;
    else if (r.status === 429 && /too fast/.test(r.body)) { fast = r; break; }
    r.ws.terminate();
    await sleep(20);
  }
  check(accepted === 4 && fast, `connect, close, connect...: ${accepted} (the burst of 4), then 429 too fast`, fast && fast.body);
  await sleep(1100);
  const r = await from(S, '127.0.0.4');
  check(r.msgs[0] && r.msgs[0].type === 'connected', 'after a second (2 per second), it connects again');
  r.ws.terminate();
  await S.stop();
});

test('a one-address flood does not fill MAX_CONNECTIONS', async () => {
  const S = await startServer({ MAX_CONNECTIONS: '200' });
  const fds = () => fs.readdirSync(`/proc/${S.proc.pid}/fd`).length;
  await sleep(100);
  const base = fds();
  const socks = [];
  const t0 = Date.now();
  const tries = [];
  for (let i = 0; i < 400; i++) tries.push(from(S, '127.0.0.5'));
  const rs = await Promise.all(tries);
  const got = rs.filter((r) => r.msgs[0] && r.msgs[0].type === 'connected').length;
  socks.push(...rs);
  check(got <= 256 && got < 200 + 1, `400 at once from one address: ${got} admitted (MAX_CONNECTIONS_PER_IP 256 default, connect burst) in ${Date.now() - t0} ms`);
  const held = fds() - base;
  check(held <= got + 5, `the refused ones hold no descriptor: ${held} more than at start for ${got} admitted`);
  const other = await from(S, '127.0.0.6');
  check(got < 200 ? other.msgs[0] && other.msgs[0].type === 'connected' : true, 'another address still gets in');
  for (const r of [...socks, other]) if (r.ws) r.ws.terminate();
  await S.stop();
});

test('TRUST_PROXY: the limits apply to the forwarded address, only when the proxy sent it', async () => {
  const S = await startServer({ TRUST_PROXY: 'true', MAX_CONNECTIONS_PER_IP: '2' });
  const viaProxy = (ip, local = '127.0.0.1') => from(S, local, { headers: { 'X-Forwarded-For': `198.51.100.1, ${ip}` } });
  const a = [await viaProxy('203.0.113.9'), await viaProxy('203.0.113.9')];
  check(a.every((r) => r.msgs[0]), 'two clients forwarded as 203.0.113.9 connect');
  const third = await viaProxy('203.0.113.9');
  check(third.status === 429, 'a third forwarded as 203.0.113.9: 429', third.status);
  const other = await viaProxy('203.0.113.10');
  check(other.msgs[0], 'forwarded as 203.0.113.10: connects');
  // from a non-proxy address the header is the client's say: ignored
  const b = [await viaProxy('203.0.113.20', '127.0.0.7'), await viaProxy('203.0.113.21', '127.0.0.7')];
  const b3 = await viaProxy('203.0.113.22', '127.0.0.7');
  check(b.every((r) => r.msgs[0]) && b3.status === 429, 'from 127.0.0.7 (not a proxy) X-Forwarded-For is ignored: its own address is limited', b3.status);
  for (const r of [...a, other, ...b]) r.ws.terminate();
  await S.stop();
  const P = await startServer({ MAX_CONNECTIONS_PER_IP: '2' });
  const c = [];
  for (let i = 0; i < 4; i++) c.push(await from(P, '127.0.0.1', { headers: { 'X-Forwarded-For': '203.0.113.9' } }));
  check(c.every((r) => r.msgs[0]), 'TRUST_PROXY off: the header means nothing (4 from loopback connect)');
  for (const r of c) r.ws.terminate();
  await P.stop();
});

test('TRUST_PROXY with a list: those addresses are proxies too; a bad list is refused at start', async () => {
  const S = await startServer({ TRUST_PROXY: '127.0.0.8, ::2', MAX_CONNECTIONS_PER_IP: '1' });
  const p = [await from(S, '127.0.0.8', { headers: { 'X-Forwarded-For': '203.0.113.1' } }),
    await from(S, '127.0.0.8', { headers: { 'X-Forwarded-For': '203.0.113.2' } })];
  check(p.every((r) => r.msgs[0]), 'a listed proxy is not limited itself; its clients count by forwarded address');
  const p3 = await from(S, '127.0.0.8', { headers: { 'X-Forwarded-For': '203.0.113.1' } });
  eq(p3.status, 429, 'the same forwarded address twice: 429');
  for (const r of p) r.ws.terminate();
  await S.stop();
  const bad = await lib.runToExit({ TRUST_PROXY: 'proxy.example' });
  check(bad.code === 2 && /TRUST_PROXY/.test(bad.log), 'TRUST_PROXY=proxy.example: exit 2 naming it', bad);
});

// ---- HTTP ----

test('MAX_HTTP_CONNECTIONS: idle HTTP connections beyond it get 503; upgraded ones do not count', async () => {
  const S = await startServer({ MAX_HTTP_CONNECTIONS: '5' });
  const ws = [];
  for (let i = 0; i < 6; i++) ws.push(await joined(S, 'h'));
  check(ws.every((c) => c.ws.readyState === 1), '6 WebSocket clients (upgraded: not HTTP connections)');
  const idle = [];
  for (let i = 0; i < 5; i++) {
    const s = net.connect(S.port, '127.0.0.1');
    await new Promise((r) => s.on('connect', r));
    s.on('error', () => {});
    idle.push(s);
  }
  await sleep(100);
  const r = await request(S, '/health').catch((e) => ({ error: e.message }));
  check(r.status === 503 && /too many HTTP connections/.test(r.body), '5 idle HTTP connections held: the next request gets 503', r);
  idle[0].destroy();
  await sleep(100);
  const r2 = await request(S, '/health');
  eq(r2.status, 200, 'one idle closed: served again');
  const m = await metrics(S);
  check(m.get('refused_total', 'reason="http_connections"') >= 1, 'refused_total{reason="http_connections"}');
  for (const s of idle) s.destroy();
  for (const c of ws) c.ws.terminate();
  await S.stop();
});

test('pipelined requests: one answer in flight; a reader that never reads holds no pile of answers', async () => {
  const S = await startServer();
  const socks = [];
  const req = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(400);
  for (let i = 0; i < 20; i++) {
    const s = net.connect(S.port, '127.0.0.1');
    await new Promise((r) => s.on('connect', r));
    s.on('error', () => {});
    s.pause();
    s.write(req);
    socks.push(s);
  }
  await sleep(1000);
  const m = await metrics(S);
  const q = m.get('queued_output_bytes');
  check(q !== null && q < 20 * 16384, `20 connections x 400 pipelined /metrics, none read: ${q} bytes queued (at most about one answer each)`);
  check(rssKB(S) < RSS_BOUND_KB, `pipelining: server RSS ${rssKB(S)} KiB (bound ${RSS_BOUND_KB})`);
  // and a client that reads gets every answer, in order
  const s = net.connect(S.port, '127.0.0.1');
  let got = '';
  s.on('data', (d) => { got += d.toString('latin1'); });
  await new Promise((r) => s.on('connect', r));
  s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(30) + 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await new Promise((r) => s.on('close', r));
  const statuses = [...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((x) => +x[1]);
  check(statuses.length === 31 && statuses.slice(0, 30).every((x) => x === 200) && statuses[30] === 404, `31 pipelined requests answered in order (${statuses.length})`);
  for (const x of socks) x.destroy();
  await S.stop();
});

test('/hubs outside hub mode and without hub rights: empty, small', async () => {
  const S = await startServer();
  for (let i = 0; i < 20; i++) await joined(S, 'x', undefined, { isHub: true, pad: 'p'.repeat(16000) });
  const r = await request(S, '/hubs');
  const body = JSON.parse(r.body);
  check(r.status === 200 && r.body.length < 1000 && (Array.isArray(body) ? body.length === 0 : (body.hubs || []).length === 0), `/hubs: ${r.body.length} bytes, no hubs listed`, r.body.slice(0, 200));
  await S.stop();
});

// ---- memory ----

test('MAX_MEMORY: messages being assembled beyond a quarter of it get 1013; others carry on', async () => {
  const S = await startServer({ MAX_MEMORY: '16M', MAX_MESSAGE_SIZE: '1048576' });
  const ctl = await controlPair(S);
  const socks = [];
  const part = Buffer.alloc(512 * 1024, 0x20);
  let refused = 0;
  for (let i = 0; i < 16; i++) {
    const r = lib.raw(S);
    await r.connected;
    r.write(UPGRADE(`/?peerId=${randomId()}`));
    await r.until((b) => b.indexOf('"connected"') >= 0);
    // the first fragment of a text message that never ends
    r.write(frame(1, Buffer.concat([Buffer.from('{"type":"ping","x":"'), part]), { fin: false }));
    socks.push(r);
    await sleep(30);
  }
  await sleep(500);
  for (const r of socks) if (r.buf.indexOf(Buffer.from([0x88])) >= 0 && /Server busy/.test(r.buf.toString('latin1'))) refused++;
  const m = await metrics(S);
  const acc = m.get('memory_accounted_bytes');
  check(refused >= 8, `16 x 512 KiB unfinished messages with a 16 MiB budget: ${refused} got 1013 "Server busy"`);
  check(acc < 16 * 1024 * 1024, `accounted memory ${acc} bytes stays under the budget`);
  controlOk(await ctl.stop(), 'held fragments');
  check(rssKB(S) < RSS_BOUND_KB, `held fragments: server RSS ${rssKB(S)} KiB (bound ${RSS_BOUND_KB})`);
  for (const r of socks) r.destroy();
  await S.stop();
});

test('a receiver reading slowly is not cut off: the sender flooding it is held back', async () => {
  const S = await startServer({ PING_INTERVAL: '2' });
  const ctl = await controlPair(S);
  const recv = await joined(S, 'slow');
  const send = await joined(S, 'slow');
  await recv.next('peer-discovered');
  const sock = recv.ws._socket;
  let reading = true;
  const pacer = setInterval(() => { if (reading) { sock.pause(); reading = false; } else { sock.resume(); reading = true; setTimeout(() => { sock.pause(); reading = false; }, 50); } }, 400);
  const big = 'o'.repeat(32 * 1024);
  const t0 = Date.now();
  let n = 0;
  while (Date.now() - t0 < 4000 && send.ws.readyState === 1) {
    if (send.ws.bufferedAmount < 1 << 20) { send.send({ type: 'offer', targetPeerId: recv.id, networkName: 'slow', data: { sdp: big, n: n++ } }); } else await sleep(5);
    if (n % 50 === 0) await sleep(1);
  }
  clearInterval(pacer);
  sock.resume();
  await sleep(1500);
  check(recv.ws.readyState === 1, `the slow receiver is still connected after ${n} x 32 KiB offers (${(n * 32 / 1024).toFixed(0)} MiB)`);
  check(!/slow reader/.test(S.log), 'nobody cut off as a slow reader', S.log.slice(-800));
  const m = await metrics(S);
  check(m.get('held_back_total') > 0, `the sender was held back (held_back_total ${m.get('held_back_total')})`);
  controlOk(await ctl.stop(), 'slow receiver flood', 1500);
  await S.stop();
});

test('memory past half the budget: producers are held back and the budget holds', async () => {
  const S = await startServer({ MAX_MEMORY: '16M', PING_INTERVAL: '2' });
  const ctl = await controlPair(S);
  // 6 receivers that never read, each flooded by its own sender; each queue cap is 2 MiB
  const pairs = [];
  for (let i = 0; i < 6; i++) {
    const r = await joined(S, `m${i}`);
    const s = await joined(S, `m${i}`);
    await r.next('peer-discovered');
    r.ws._socket.pause();
    pairs.push({ r, s });
  }
  const big = 'o'.repeat(64 * 1024);
  const t0 = Date.now();
  let peak = 0;
  while (Date.now() - t0 < 3000) {
    pairs.forEach(({ r, s }, i) => { if (s.ws.readyState === 1 && s.ws.bufferedAmount < 512 * 1024) s.send({ type: 'offer', targetPeerId: r.id, networkName: `m${i}`, data: { sdp: big } }); });
    await sleep(2);
    if ((Date.now() - t0) % 200 < 3) peak = Math.max(peak, (await metrics(S)).get('memory_accounted_bytes'));
  }
  const m = await metrics(S);
  peak = Math.max(peak, m.get('memory_accounted_bytes'));
  check(peak <= 16 * 1024 * 1024, `accounted memory peaked at ${(peak / 1048576).toFixed(1)} MiB of 16`);
  check(m.get('held_back_total') > 0, `producers held back (${m.get('held_back_total')})`);
  controlOk(await ctl.stop(), 'memory pressure', 2000);
  check(rssKB(S) < RSS_BOUND_KB, `memory pressure: server RSS ${rssKB(S)} KiB (bound ${RSS_BOUND_KB})`);
  for (const { r, s } of pairs) { r.ws.terminate(); s.ws.terminate(); }
  await S.stop();
});

test('MAX_MEMORY: bad values exit 2; the ready line names the budget', async () => {
  for (const v of ['1M', 'lots', '12X', '']) {
    const r = await lib.runToExit({ MAX_MEMORY: v });
    check(r.code === 2 && /MAX_MEMORY/.test(r.log), `MAX_MEMORY=${JSON.stringify(v)}: exit 2`, r.log.slice(0, 200));
  }
  const S = await startServer({ MAX_MEMORY: '64M' });
  await lib.waitFor(() => /ready: /.test(S.log), 3000).catch(() => {});
  check(/memory budget 64 MiB \(MAX_MEMORY\)/.test(S.log), 'ready line: memory budget 64 MiB (MAX_MEMORY)', S.log);
  const m = await metrics(S);
  eq(m.get('memory_budget_bytes'), 64 * 1048576, '/metrics memory_budget_bytes');
  await S.stop();
  const D = await startServer();
  await lib.waitFor(() => /ready: /.test(D.log), 3000).catch(() => {});
  check(/memory budget \d+ MiB \(half the (RAM|cgroup's memory.max)\)/.test(D.log), 'unset: half the RAM or the cgroup limit', D.log);
  await D.stop();
});

run(process.env.PP_ONLY ? tests.filter(([n]) => new RegExp(process.env.PP_ONLY).test(n)) : tests, { limitMs: 30000 });
