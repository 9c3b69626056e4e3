// Scenario 4 (promise API): basic.nack and basic.reject, with requeue (the message comes
// back with redelivered=true, at its old place in the queue) and without (it is gone).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

async function setup(conn, bodies) {
  const ch = await h.channel(conn, true);
  const q = h.uid('nack');
  await ch.assertQueue(q, { exclusive: true });
  for (const b of bodies) ch.sendToQueue(q, Buffer.from(b));
  await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
  return { ch, q };
}

const summary = (m) => [m.content.toString(), m.fields.redelivered];

async function withConn(fn) {
  const conn = await h.connect();
  try {
    await fn(conn);
    assert.deepEqual(conn.errors, []);
  } finally {
    await h.closeQuietly(conn);
  }
}

test('basic.reject requeue=true: same message again, redelivered, at the head of the queue', async () => {
  await withConn(async (conn) => {
    const { ch, q } = await setup(conn, ['one', 'two']);
    const first = await ch.get(q, { noAck: false });
    assert.deepEqual(summary(first), ['one', false]);
    assert.equal(first.fields.messageCount, 1);
    ch.reject(first, true);
    const again = await ch.get(q, { noAck: false });
    assert.deepEqual(summary(again), ['one', true]);
    assert.equal(again.fields.deliveryTag, first.fields.deliveryTag + 1);
    assert.equal(again.fields.messageCount, 1);
    ch.ack(again);
    const second = await ch.get(q, { noAck: false });
    assert.deepEqual(summary(second), ['two', false]);
    ch.ack(second);
    assert.equal(await ch.get(q), false);
    assert.deepEqual(ch.errors, []);
  });
});

test('basic.reject requeue=false: the message is gone', async () => {
  await withConn(async (conn) => {
    const { ch, q } = await setup(conn, ['doomed', 'kept']);
    const m = await ch.get(q, { noAck: false });
    ch.reject(m, false);
    assert.deepEqual(await ch.checkQueue(q), { queue: q, messageCount: 1, consumerCount: 0 });
    const rest = await h.drain(ch, q);
    assert.deepEqual(rest.map(summary), [['kept', false]]);
  });
});

test('basic.nack requeue=true (single) and requeue=false (single)', async () => {
  await withConn(async (conn) => {
    const { ch, q } = await setup(conn, ['n1', 'n2']);
    const m1 = await ch.get(q, { noAck: false });
    ch.nack(m1, false, true);
    const back = await ch.get(q, { noAck: false });
    assert.deepEqual(summary(back), ['n1', true]);
    ch.nack(back, false, false);
    const m2 = await ch.get(q, { noAck: false });
    assert.deepEqual(summary(m2), ['n2', false]);
    ch.nack(m2, false, false);
    assert.deepEqual(await ch.checkQueue(q), { queue: q, messageCount: 0, consumerCount: 0 });
    assert.equal(await ch.get(q), false);
  });
});

test('basic.nack multiple requeue=true with a consumer: all come back redelivered, in order', async () => {
  await withConn(async (conn) => {
    const { ch, q } = await setup(conn, ['a', 'b', 'c', 'd']);
    const cons = await h.channel(conn);
    await cons.prefetch(3);
    const inbox = new h.Inbox();
    const { consumerTag } = await cons.consume(q, inbox.handler);
    const firstThree = await inbox.waitCount(3);
    assert.deepEqual(firstThree.map(summary), [
      ['a', false],
      ['b', false],
      ['c', false],
    ]);
    // nack a, b and c at once: they go back to the front, ahead of d
    cons.nack(firstThree[2], true, true);
    const next = await inbox.waitCount(6);
    assert.deepEqual(next.slice(3).map(summary), [
      ['a', true],
      ['b', true],
      ['c', true],
    ]);
    cons.ack(next[5], true);
    const all = await inbox.waitCount(7);
    assert.deepEqual(summary(all[6]), ['d', false]);
    cons.ack(all[6]);
    await cons.cancel(consumerTag);
    assert.deepEqual(await ch.checkQueue(q), { queue: q, messageCount: 0, consumerCount: 0 });
    assert.deepEqual(cons.errors, []);
  });
});

test('basic.nack multiple requeue=false and nackAll: messages are dropped', async () => {
  await withConn(async (conn) => {
    const { ch, q } = await setup(conn, ['p', 'q', 'r', 's', 't']);
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await ch.get(q, { noAck: false }));
    ch.nack(got[1], true, false); // p and q dropped, r still unacked
    ch.reject(got[2], true); // r back, redelivered
    const r = await ch.get(q, { noAck: false });
    assert.deepEqual(summary(r), ['r', true]);
    const s = await ch.get(q, { noAck: false });
    assert.deepEqual(summary(s), ['s', false]);
    ch.nackAll(false); // r and s dropped
    assert.deepEqual((await h.drain(ch, q)).map(summary), [['t', false]]);
  });
});

test('consumer reject requeue=true: the message is redelivered before later ones', async () => {
  await withConn(async (conn) => {
    const { ch, q } = await setup(conn, ['first', 'second']);
    const cons = await h.channel(conn);
    await cons.prefetch(1);
    const inbox = new h.Inbox();
    await cons.consume(q, inbox.handler);
    const m = await inbox.next();
    assert.deepEqual(summary(m), ['first', false]);
    cons.reject(m, true);
    const again = await inbox.next();
    assert.deepEqual(summary(again), ['first', true]);
    cons.ack(again);
    const m2 = await inbox.next();
    assert.deepEqual(summary(m2), ['second', false]);
    cons.ack(m2);
    assert.deepEqual(ch.errors, []);
  });
});

test('basic.recover requeue: unacked deliveries come back redelivered', async () => {
  await withConn(async (conn) => {
    const { q } = await setup(conn, ['r1', 'r2']);
    const cons = await h.channel(conn);
    const inbox = new h.Inbox();
    await cons.consume(q, inbox.handler);
    await inbox.waitCount(2);
    await cons.recover();
    const all = await inbox.waitCount(4);
    assert.deepEqual(all.slice(2).map(summary), [
      ['r1', true],
      ['r2', true],
    ]);
    cons.ackAll();
  });
});
