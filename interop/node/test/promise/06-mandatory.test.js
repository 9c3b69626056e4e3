// Scenario 6 (promise API): mandatory publishes that no queue takes come back as
// basic.return 312 NO_ROUTE, ahead of their confirm; routed ones do not.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

/** Publish on a confirm channel; resolve with the returns seen before the confirm arrived. */
function publishConfirmed(ch, exchange, key, body, options) {
  return h.withTimeout(
    new Promise((resolve, reject) => {
      ch.publish(exchange, key, body, options, (err) => {
        if (err) reject(err);
        else resolve(ch.returned.slice());
      });
    }),
    h.WAIT_MS,
    'the confirm',
  );
}

test('mandatory to a direct exchange without a matching binding: basic.return 312 NO_ROUTE', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const ex = h.uid('mandatory');
    await ch.assertExchange(ex, 'direct', { autoDelete: false });
    const body = Buffer.from([0, 1, 2, 3, 255, 254, 0x41]);
    const options = {
      mandatory: true,
      contentType: 'application/octet-stream',
      messageId: 'ret-1',
      headers: { attempt: 3, who: 'node' },
    };
    const returned = await publishConfirmed(ch, ex, 'no.such.key', body, options);
    assert.equal(returned.length, 1, 'basic.return before the confirm');
    const r = returned[0];
    assert.deepEqual(r.fields, {
      replyCode: 312,
      replyText: 'NO_ROUTE',
      exchange: ex,
      routingKey: 'no.such.key',
    });
    assert.ok(r.content.equals(body), 'returned body byte-exact');
    assert.equal(r.properties.contentType, 'application/octet-stream');
    assert.equal(r.properties.messageId, 'ret-1');
    assert.deepEqual(r.properties.headers, { attempt: 3, who: 'node' });
    await ch.deleteExchange(ex);
    assert.deepEqual(ch.errors, []);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('mandatory to the default exchange with a missing queue name: returned', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const missing = h.uid('missing-queue');
    const returned = await publishConfirmed(ch, '', missing, Buffer.from('nobody'), { mandatory: true });
    assert.equal(returned.length, 1);
    assert.deepEqual(returned[0].fields, { replyCode: 312, replyText: 'NO_ROUTE', exchange: '', routingKey: missing });
    assert.equal(returned[0].content.toString(), 'nobody');
  } finally {
    await h.closeQuietly(conn);
  }
});

test('mandatory and routed: no return; not mandatory and unroutable: no return', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const ex = h.uid('mandatory-ok');
    await ch.assertExchange(ex, 'topic', { autoDelete: true });
    const q = h.uid('mandatory-ok-q');
    await ch.assertQueue(q, { exclusive: true });
    await ch.bindQueue(q, ex, 'a.*');
    assert.deepEqual(await publishConfirmed(ch, ex, 'a.b', Buffer.from('routed'), { mandatory: true }), []);
    assert.deepEqual(await publishConfirmed(ch, ex, 'z.z', Buffer.from('dropped'), { mandatory: false }), []);
    assert.deepEqual(await publishConfirmed(ch, '', q, Buffer.from('direct'), { mandatory: true }), []);
    assert.deepEqual(await h.drainBodies(ch, q), ['routed', 'direct']);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('mandatory on a plain channel (no confirms): the return event arrives', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn);
    const ex = h.uid('mandatory-plain');
    await ch.assertExchange(ex, 'fanout', { autoDelete: false });
    const got = h.once(ch, 'return', 'basic.return');
    ch.publish(ex, 'k', Buffer.from('no queue bound'), { mandatory: true });
    const r = await got;
    assert.deepEqual(r.fields, { replyCode: 312, replyText: 'NO_ROUTE', exchange: ex, routingKey: 'k' });
    assert.equal(r.content.toString(), 'no queue bound');
    await ch.deleteExchange(ex);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('mandatory via a headers exchange that matches nothing: returned, other messages routed', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const ex = h.uid('mandatory-headers');
    await ch.assertExchange(ex, 'headers', { autoDelete: true });
    const q = h.uid('mandatory-headers-q');
    await ch.assertQueue(q, { exclusive: true });
    await ch.bindQueue(q, ex, '', { 'x-match': 'all', kind: 'wanted' });
    const r1 = await publishConfirmed(ch, ex, '', Buffer.from('nope'), { mandatory: true, headers: { kind: 'other' } });
    assert.equal(r1.length, 1);
    assert.equal(r1[0].fields.replyCode, 312);
    assert.equal(r1[0].fields.replyText, 'NO_ROUTE');
    assert.equal(r1[0].content.toString(), 'nope');
    const r2 = await publishConfirmed(ch, ex, '', Buffer.from('yes'), { mandatory: true, headers: { kind: 'wanted' } });
    assert.equal(r2.length, 1, 'no second return');
    assert.deepEqual(await h.drainBodies(ch, q), ['yes']);
  } finally {
    await h.closeQuietly(conn);
  }
});
