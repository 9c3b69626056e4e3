// Scenario 7 (promise API): bodies split over many frames arrive byte-exact, including
// sizes around the frame boundary, through basic.consume and basic.get.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('../helpers');

const MiB = 1024 * 1024;

function sha(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

async function roundTrip(url, sizes, via) {
  const conn = await h.connect(url);
  try {
    const frameMax = conn.connection.frameMax;
    const concrete = sizes.map((s) => (typeof s === 'function' ? s(frameMax) : s));
    const bodies = concrete.map((n) => crypto.randomBytes(n));
    const ch = await h.channel(conn, true);
    const q = h.uid('large');
    await ch.assertQueue(q, { exclusive: true });
    bodies.forEach((b, i) => ch.sendToQueue(q, b, { messageId: `m${i}`, headers: { size: b.length } }));
    await h.withTimeout(ch.waitForConfirms(), 60000, 'confirms of the large messages');
    let got;
    if (via === 'get') {
      got = [];
      for (let i = 0; i < bodies.length; i++) {
        const m = await ch.get(q, { noAck: true });
        assert.ok(m, `message ${i} missing`);
        got.push(m);
      }
      assert.equal(await ch.get(q), false);
    } else {
      const inbox = new h.Inbox();
      await ch.consume(q, inbox.handler, { noAck: true });
      got = await inbox.waitCount(bodies.length, 60000);
    }
    for (let i = 0; i < bodies.length; i++) {
      const m = got[i];
      assert.equal(m.properties.messageId, `m${i}`, 'order');
      assert.equal(m.content.length, bodies[i].length, `length of message ${i}`);
      assert.equal(sha(m.content), sha(bodies[i]), `content of message ${i} (${bodies[i].length} bytes)`);
      assert.deepEqual(m.properties.headers, { size: bodies[i].length });
    }
    assert.deepEqual(ch.errors, []);
    return frameMax;
  } finally {
    await h.closeQuietly(conn);
  }
}

// sizes relative to the negotiated frame_max: a body frame carries at most frame_max - 8 bytes
const BOUNDARY = [0, 1, (fm) => fm - 9, (fm) => fm - 8, (fm) => fm - 7, (fm) => 2 * (fm - 8), (fm) => 2 * (fm - 8) + 1];

test('1 MiB and 5 MiB bodies through a consumer', async () => {
  const fm = await roundTrip(h.URL, [MiB, 5 * MiB, 1], 'consume');
  assert.equal(fm, 131072);
});

test('1 MiB and 5 MiB bodies through basic.get', async () => {
  await roundTrip(h.URL, [5 * MiB, MiB], 'get');
});

test('bodies at the frame boundary (empty, frame_max - 9 .. - 7, two frames, two frames + 1)', async () => {
  await roundTrip(h.URL, BOUNDARY, 'consume');
  await roundTrip(h.URL, BOUNDARY, 'get');
});

test('frame_max 4096 asked by the client: 1 MiB in 257 body frames, boundary sizes', async () => {
  const url = `${h.URL}?frameMax=4096`;
  const fm = await roundTrip(url, [MiB, ...BOUNDARY], 'consume');
  assert.equal(fm, 4096);
});
