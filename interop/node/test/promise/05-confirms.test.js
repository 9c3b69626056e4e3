// Scenario 5 (promise API): publisher confirms. Every publish on a confirm channel is
// acked exactly once (delivery tags 1..N, possibly with multiple=true), none is nacked.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

/** Record basic.ack / basic.nack frames of a confirm channel as sets of delivery tags. */
function confirmLog(ch) {
  const log = { acked: [], nacked: [], frames: 0 };
  let lwm = 1;
  const record = (into) => (f) => {
    log.frames += 1;
    if (f.multiple) {
      for (let t = lwm; t <= f.deliveryTag; t++) {
        if (!log.acked.includes(t) && !log.nacked.includes(t)) into.push(t);
      }
    } else {
      into.push(f.deliveryTag);
    }
    lwm = Math.max(lwm, f.deliveryTag + 1);
  };
  ch.on('ack', record(log.acked));
  ch.on('nack', record(log.nacked));
  return log;
}

const tags = (n) => Array.from({ length: n }, (_, i) => i + 1);

test('100 publishes to a queue: 100 confirms, every callback acked, the queue holds 100', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const log = confirmLog(ch);
    const q = h.uid('confirms');
    await ch.assertQueue(q, { exclusive: true });
    const results = [];
    const done = [];
    for (let i = 0; i < 100; i++) {
      done.push(
        new Promise((resolve) => {
          ch.sendToQueue(q, Buffer.from(`c${i}`), {}, (err) => {
            results[i] = err;
            resolve();
          });
        }),
      );
    }
    await h.withTimeout(Promise.all(done), h.WAIT_MS, 'all confirm callbacks');
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'waitForConfirms');
    assert.equal(results.length, 100);
    assert.ok(
      results.every((e) => e === null),
      'every message acked',
    );
    assert.deepEqual(log.nacked, []);
    assert.deepEqual(
      log.acked.sort((a, b) => a - b),
      tags(100),
    );
    assert.ok(log.frames >= 1 && log.frames <= 100);
    assert.equal((await ch.checkQueue(q)).messageCount, 100);
    assert.deepEqual(ch.errors, []);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('persistent messages to a durable queue are confirmed', async () => {
  const conn = await h.connect();
  const q = h.uid('confirms-durable');
  try {
    const ch = await h.channel(conn, true);
    const log = confirmLog(ch);
    await ch.assertQueue(q, { durable: true });
    for (let i = 0; i < 50; i++) ch.sendToQueue(q, Buffer.from(`d${i}`), { persistent: true });
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'waitForConfirms');
    await h.waitFor(() => log.acked.length === 50, '50 acks');
    assert.deepEqual(
      log.acked.sort((a, b) => a - b),
      tags(50),
    );
    assert.deepEqual(log.nacked, []);
    assert.equal((await ch.checkQueue(q)).messageCount, 50);
    await ch.deleteQueue(q);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('unroutable publishes (no binding, no mandatory) are confirmed too', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const log = confirmLog(ch);
    const ex = h.uid('confirms-nowhere');
    await ch.assertExchange(ex, 'direct', { autoDelete: false });
    for (let i = 0; i < 10; i++) ch.publish(ex, 'nobody-listens', Buffer.from('x'));
    ch.sendToQueue(h.uid('no-such-queue'), Buffer.from('y'));
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'waitForConfirms');
    await h.waitFor(() => log.acked.length === 11, '11 acks');
    assert.deepEqual(
      log.acked.sort((a, b) => a - b),
      tags(11),
    );
    assert.deepEqual(ch.returned, []);
    await ch.deleteExchange(ex);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('fanout to three queues: one confirm per publish, each queue has every message', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const log = confirmLog(ch);
    const ex = h.uid('confirms-fanout');
    await ch.assertExchange(ex, 'fanout', { autoDelete: true });
    const qs = [];
    for (let i = 0; i < 3; i++) {
      const q = h.uid(`confirms-fanout-q${i}`);
      await ch.assertQueue(q, { exclusive: true });
      await ch.bindQueue(q, ex, '');
      qs.push(q);
    }
    for (let i = 0; i < 20; i++) ch.publish(ex, '', Buffer.from(`f${i}`));
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'waitForConfirms');
    await h.waitFor(() => log.acked.length === 20, '20 acks');
    assert.deepEqual(
      log.acked.sort((a, b) => a - b),
      tags(20),
    );
    for (const q of qs) assert.equal((await ch.checkQueue(q)).messageCount, 20);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('delivery tags continue across waits on the same channel', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const log = confirmLog(ch);
    const q = h.uid('confirms-seq');
    await ch.assertQueue(q, { exclusive: true });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 7; i++) ch.sendToQueue(q, Buffer.from(`${round}-${i}`));
      await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'waitForConfirms');
    }
    await h.waitFor(() => log.acked.length === 21, '21 acks');
    assert.deepEqual(
      log.acked.sort((a, b) => a - b),
      tags(21),
    );
    assert.equal((await ch.checkQueue(q)).messageCount, 21);
  } finally {
    await h.closeQuietly(conn);
  }
});
