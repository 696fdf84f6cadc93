// bench/mesh.js - how the hub mesh converges and what it costs, for 3, 5 and 8 hubs of ours in a
// ring with chords (hub i dials i-1 round the ring, and every even hub the one opposite): the
// hub-to-hub messages one announce costs (sum of peerpigeon_hub_floods_discovered_total over
// all hubs), the time until a client on every other hub has discovered it, the heartbeat
// traffic, and the time until every other hub's client is told that the client of a hub killed
// with SIGKILL is gone (bounded by the 4 s origin timeout + a 1 s tick). Prints figures, asserts
// nothing. Usage: NODE_PATH=.deps/node_modules node bench/mesh.js   (PP_BIN: default ./peerpigeon)
'use strict';
process.env.PP_BIN = process.env.PP_BIN || `${__dirname}/../peerpigeon`;
const lib = require('../test/lib.js');
const { startServer, joined, sleep, waitFor, getJson, request } = lib;

async function metric(srv, name) {
  const r = await request(srv, '/metrics');
  const m = new RegExp(`^peerpigeon_${name} (\\d+)$`, 'm').exec(r.body);
  return m ? +m[1] : 0;
}
async function sum(hubs, name) {
  let s = 0;
  for (const h of hubs) s += await metric(h, name);
  return s;
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function mesh(n) {
  const hubs = [];
  const env = { IS_HUB: 'true', LOG_LEVEL: 'info' };
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await lib.freePort());
  for (let i = 0; i < n; i++) {
    const targets = [ports[(i - 1 + n) % n]]; // the ring
    if (n > 3 && i % 2 === 0) targets.push(ports[(i + Math.floor(n / 2)) % n]); // chords
    hubs.push(await startServer({ ...env, PORT: String(ports[i]), BOOTSTRAP_HUBS: targets.map((p) => `ws://127.0.0.1:${p}`).join(',') }));
  }
  await waitFor(async () => {
    for (const h of hubs) {
      const s = await getJson(h, '/hubstats');
      if (!s.bootstrapHubs.every((x) => x.connected)) return false;
    }
    return true;
  }, 15000, 'links up');
  let links = 0;
  for (const h of hubs) links += (await getJson(h, '/hubstats')).bootstrapHubs.length;
  await sleep(1500); // heartbeats and routes settle
  const watchers = [];
  for (const h of hubs) watchers.push(await joined(h, 'bench'));
  await sleep(500);
  const res = { hubs: n, links, announce: [], discover: [], gone: [] };
  for (let t = 0; t < 3; t++) {
    const before = await sum(hubs, 'hub_floods_discovered_total');
    const t0 = Date.now();
    const c = await joined(hubs[t % n], 'bench');
    const others = watchers.filter((w, i) => i !== t % n);
    await waitFor(() => others.every((w) => w.all('peer-discovered').some((m) => m.data.peerId === c.id)), 5000, 'discovered');
    res.discover.push(Date.now() - t0);
    await sleep(300);
    res.announce.push(await sum(hubs, 'hub_floods_discovered_total') - before);
    await c.close();
    await sleep(300);
  }
  const hb0 = await sum(hubs, 'hub_heartbeats_sent_total');
  await sleep(3000);
  res.heartbeatsPerSec = Math.round((await sum(hubs, 'hub_heartbeats_sent_total') - hb0) / 3);
  // a hub dies with a client: how long until every other hub's client is told
  const victim = hubs[n - 1];
  const vc = await joined(victim, 'bench');
  const rest = watchers.slice(0, n - 1);
  await waitFor(() => rest.every((w) => w.all('peer-discovered').some((m) => m.data.peerId === vc.id)), 5000, 'victim discovered');
  const k0 = Date.now();
  await victim.kill('SIGKILL');
  await waitFor(() => rest.every((w) => w.all('peer-disconnected').some((m) => m.data.peerId === vc.id)), 10000, 'gone').catch(() => {});
  res.gone.push(Date.now() - k0);
  for (const w of watchers.slice(0, n - 1)) w.ws.terminate();
  for (const h of hubs.slice(0, n - 1)) await h.kill('SIGTERM');
  return res;
}

(async () => {
  console.log('hubs links  msgs/announce  announce->all hubs (ms, median/worst of 3)  heartbeats/s  hub killed->all told (ms)');
  for (const n of [3, 5, 8]) {
    const r = await mesh(n);
    console.log(`${String(r.hubs).padStart(4)} ${String(r.links).padStart(5)}  ${String(median(r.announce)).padStart(13)}  ${String(median(r.discover)).padStart(6)} / ${String(Math.max(...r.discover)).padEnd(32)}  ${String(r.heartbeatsPerSec).padStart(12)}  ${r.gone[0]}`);
  }
  process.exit(0);
})();
