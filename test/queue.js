// test/queue.js - the output-queue cap against bursts, on a build whose fixed cap is 64 KiB
// (build/peerpigeon-smallq, -DWBUF_BASE=65536) so that a few hundred peers are a "big" network:
// a newcomer's discovery list may exceed the fixed cap (conn_expect), but a client that never
// reads is still cut off as a slow reader, and the others carry on.
'use strict';
const lib = require('./lib');
const { check, eq, run, startServer, joined, sleep, raw, UPGRADE, frame, randomId } = lib;

const BIN = `${__dirname}/../build/peerpigeon-smallq`;
const N = 400;
let S;
let members = [];

run([
  ['a newcomer receives a discovery list bigger than the fixed queue cap', async () => {
    // RATE_LIMITS off: the non-reader below re-announces 120 times to fill its queue, which the
    // announce rate would stop first (limits.js tests that)
    S = await startServer({ MAX_MESSAGE_SIZE: '1024', RATE_LIMITS: 'false' }, [], BIN);
    for (let i = 0; i < N; i++) {
      members.push(await joined(S, 'big'));
      if (i % 50 === 49) await sleep(30);
    }
    await sleep(300);
    for (const m of members) m.drop('peer-discovered');
    const n = await joined(S, 'big');
    let got = 0;
    try {
      while (got < N) { await n.next('peer-discovered', 3000); got++; }
    } catch { /* counted below */ }
    eq(got, N, `newcomer gets all ${N} peer-discovered (about ${N * 250} bytes > 64 KiB cap)`);
    check(!/slow reader/.test(S.log), 'nobody was cut off as a slow reader', S.log.slice(-2000));
    members.push(n);
  }],
  ['a client that never reads is cut off; the network carries on', async () => {
    // raw socket: completes the handshake, then never reads again while re-announcing
    const r = raw(S);
    await r.connected;
    const id = randomId();
    r.write(UPGRADE(`/?peerId=${id}`));
    await r.until((b) => b.indexOf('\r\n\r\n') >= 0);
    r.sock.pause();
    const announce = frame(1, JSON.stringify({ type: 'announce', networkName: 'big' }));
    for (let i = 0; i < 120 && !/slow reader/.test(S.log); i++) {
      r.write(announce);
      await sleep(20);
    }
    check(/slow reader/.test(S.log), 'the non-reader is cut off as a slow reader', S.log.slice(-1500));
    const a = members[0];
    const b = members[1];
    const pd = await a.next('peer-disconnected', 3000).catch(() => null);
    check(pd && pd.data.peerId === id && pd.data.reason === 'slow reader', 'members are told it left (slow reader)', pd);
    b.drop('offer');
    a.send({ type: 'offer', targetPeerId: b.id, networkName: 'big', data: { sdp: 'still here' } });
    const o = await b.next('offer', 3000).catch(() => null);
    eq(o && o.data, { sdp: 'still here' }, 'signalling in the network still works');
    r.destroy();
    for (const m of members) m.ws.terminate();
    await sleep(300);
    await S.stop();
  }],
], { limitMs: 60000 });
