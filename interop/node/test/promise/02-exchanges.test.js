// Scenario 2 (promise API): declare, bind and publish on every exchange type and check
// exactly which queues receive what. Publishes go through a confirm channel: once the
// broker has confirmed them, routed messages are in their queues, so the queue contents
// can be read back with basic.get without waiting on anything else.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

/** Declare `names.length` exclusive queues; returns their names. */
async function queues(ch, tag, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const q = h.uid(`${tag}-q${i}`);
    await ch.assertQueue(q, { exclusive: true });
    out.push(q);
  }
  return out;
}

/** Publish each [routingKey, body, options] to `exchange` and wait for all confirms. */
async function publishAll(ch, exchange, messages) {
  for (const [key, body, options] of messages) {
    ch.publish(exchange, key, Buffer.from(body), options || {});
  }
  await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'publisher confirms');
}

/** Assert each queue's message count and bodies, in order. */
async function expectContents(ch, expected) {
  for (const [q, bodies] of Object.entries(expected)) {
    const ok = await ch.checkQueue(q);
    assert.equal(ok.messageCount, bodies.length, `message count of ${q}`);
    assert.deepEqual(await h.drainBodies(ch, q), bodies, `contents of ${q}`);
  }
}

async function withConfirmChannel(fn) {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    await fn(ch);
    assert.deepEqual(ch.errors, []);
    assert.deepEqual(conn.errors, []);
  } finally {
    await h.closeQuietly(conn);
  }
}

test('default exchange routes by queue name', async () => {
  await withConfirmChannel(async (ch) => {
    const [a, b] = await queues(ch, 'default', 2);
    await publishAll(ch, '', [
      [a, 'to-a-1'],
      [b, 'to-b'],
      [a, 'to-a-2'],
      [h.uid('nobody'), 'lost'],
    ]);
    await expectContents(ch, { [a]: ['to-a-1', 'to-a-2'], [b]: ['to-b'] });
  });
});

test('direct exchange: exact routing key match, one queue bound with two keys', async () => {
  await withConfirmChannel(async (ch) => {
    const ex = h.uid('direct');
    await ch.assertExchange(ex, 'direct', { autoDelete: true });
    const [red, green, both] = await queues(ch, 'direct', 3);
    await ch.bindQueue(red, ex, 'red');
    await ch.bindQueue(green, ex, 'green');
    await ch.bindQueue(both, ex, 'red');
    await ch.bindQueue(both, ex, 'green');
    await publishAll(ch, ex, [
      ['red', 'r1'],
      ['green', 'g1'],
      ['blue', 'b1'],
      ['Red', 'R1'],
      ['', 'empty'],
      ['red', 'r2'],
    ]);
    await expectContents(ch, { [red]: ['r1', 'r2'], [green]: ['g1'], [both]: ['r1', 'g1', 'r2'] });
  });
});

test('direct exchange: unbind stops routing', async () => {
  await withConfirmChannel(async (ch) => {
    const ex = h.uid('direct-unbind');
    await ch.assertExchange(ex, 'direct', { autoDelete: false });
    try {
      const [q] = await queues(ch, 'direct-unbind', 1);
      await ch.bindQueue(q, ex, 'k');
      await publishAll(ch, ex, [['k', 'before']]);
      await ch.unbindQueue(q, ex, 'k');
      await publishAll(ch, ex, [['k', 'after']]);
      await expectContents(ch, { [q]: ['before'] });
    } finally {
      await ch.deleteExchange(ex);
    }
  });
});

test('auto-delete exchange goes away when its last binding is removed', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn);
    const ex = h.uid('auto-delete');
    await ch.assertExchange(ex, 'direct', { autoDelete: true });
    const [q] = await queues(ch, 'auto-delete', 1);
    await ch.bindQueue(q, ex, 'a');
    await ch.bindQueue(q, ex, 'b');
    await ch.unbindQueue(q, ex, 'a');
    await ch.checkExchange(ex); // one binding left
    await ch.unbindQueue(q, ex, 'b');
    await h.rejectsWithClose(ch.checkExchange(ex), 404, `NOT_FOUND - no exchange '${ex}' in vhost '/'`);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('fanout exchange: every bound queue gets every message, whatever the key', async () => {
  await withConfirmChannel(async (ch) => {
    const ex = h.uid('fanout');
    await ch.assertExchange(ex, 'fanout', { autoDelete: true });
    const [a, b, c, unbound] = await queues(ch, 'fanout', 4);
    await ch.bindQueue(a, ex, '');
    await ch.bindQueue(b, ex, 'ignored');
    await ch.bindQueue(c, ex, 'x.y');
    await publishAll(ch, ex, [
      ['', 'm1'],
      ['anything', 'm2'],
      ['x.y', 'm3'],
    ]);
    const all = ['m1', 'm2', 'm3'];
    await expectContents(ch, { [a]: all, [b]: all, [c]: all, [unbound]: [] });
  });
});

test('topic exchange: * matches one word, # matches zero or more', async () => {
  await withConfirmChannel(async (ch) => {
    const ex = h.uid('topic');
    await ch.assertExchange(ex, 'topic', { autoDelete: true });
    const patterns = ['a.*.c', 'a.#', '#', '*.b.*', '#.c', 'a.b', '*', 'a.#.c', '#.b.#'];
    const qs = await queues(ch, 'topic', patterns.length);
    for (let i = 0; i < patterns.length; i++) await ch.bindQueue(qs[i], ex, patterns[i]);
    const keys = ['a.b.c', 'a.b', 'a', 'x.b.y', 'a.x.y.c', 'c', '', 'a.c', 'b', 'a.b.c.d'];
    await publishAll(
      ch,
      ex,
      keys.map((k) => [k, `key=${k}`]),
    );
    const expected = {
      'a.*.c': ['a.b.c'],
      'a.#': ['a.b.c', 'a.b', 'a', 'a.x.y.c', 'a.c', 'a.b.c.d'],
      '#': keys,
      '*.b.*': ['a.b.c', 'x.b.y'],
      '#.c': ['a.b.c', 'a.x.y.c', 'c', 'a.c'],
      'a.b': ['a.b'],
      '*': ['a', 'c', 'b'],
      'a.#.c': ['a.b.c', 'a.x.y.c', 'a.c'],
      '#.b.#': ['a.b.c', 'a.b', 'x.b.y', 'b', 'a.b.c.d'],
    };
    const want = {};
    for (let i = 0; i < patterns.length; i++) want[qs[i]] = expected[patterns[i]].map((k) => `key=${k}`);
    await expectContents(ch, want);
  });
});

test('headers exchange: x-match all and any', async () => {
  await withConfirmChannel(async (ch) => {
    const ex = h.uid('headers');
    await ch.assertExchange(ex, 'headers', { autoDelete: true });
    const [all, any, allEmpty, anyStr] = await queues(ch, 'headers', 4);
    await ch.bindQueue(all, ex, '', { 'x-match': 'all', color: 'red', size: 10 });
    await ch.bindQueue(any, ex, '', { 'x-match': 'any', color: 'red', shape: 'circle' });
    // no headers to match: x-match all matches every message
    await ch.bindQueue(allEmpty, ex, '', { 'x-match': 'all' });
    // a binding's routing key plays no part
    await ch.bindQueue(anyStr, ex, 'ignored-key', { 'x-match': 'any', flag: true });
    await publishAll(ch, ex, [
      ['', 'red-10', { headers: { color: 'red', size: 10 } }],
      ['', 'red', { headers: { color: 'red' } }],
      ['', 'circle-10', { headers: { shape: 'circle', size: 10 } }],
      ['', 'blue-10', { headers: { color: 'blue', size: 10 } }],
      ['', 'red-10-extra', { headers: { color: 'red', size: 10, extra: 'x' } }],
      ['', 'red-11', { headers: { color: 'red', size: 11 } }],
      ['', 'none', {}],
      ['other-key', 'flag', { headers: { flag: true } }],
      ['', 'flag-false', { headers: { flag: false } }],
    ]);
    await expectContents(ch, {
      [all]: ['red-10', 'red-10-extra'],
      [any]: ['red-10', 'red', 'circle-10', 'red-10-extra', 'red-11'],
      [allEmpty]: [
        'red-10',
        'red',
        'circle-10',
        'blue-10',
        'red-10-extra',
        'red-11',
        'none',
        'flag',
        'flag-false',
      ],
      [anyStr]: ['flag'],
    });
  });
});

test('exchange-to-exchange binding forwards to the destination exchange', async () => {
  await withConfirmChannel(async (ch) => {
    const src = h.uid('e2e-src');
    const dst = h.uid('e2e-dst');
    await ch.assertExchange(src, 'topic', { autoDelete: true });
    await ch.assertExchange(dst, 'fanout', { autoDelete: true });
    await ch.bindExchange(dst, src, 'log.*');
    const [q] = await queues(ch, 'e2e', 1);
    await ch.bindQueue(q, dst, '');
    await publishAll(ch, src, [
      ['log.info', 'info'],
      ['metrics.cpu', 'cpu'],
      ['log.warn', 'warn'],
    ]);
    await expectContents(ch, { [q]: ['info', 'warn'] });
  });
});

test('declare-ok counts and passive declares of what was declared', async () => {
  await withConfirmChannel(async (ch) => {
    const ex = h.uid('passive');
    await ch.assertExchange(ex, 'topic', { durable: false, autoDelete: true });
    await ch.checkExchange(ex);
    const q = h.uid('passive-q');
    const declared = await ch.assertQueue(q, { exclusive: true });
    assert.deepEqual(declared, { queue: q, messageCount: 0, consumerCount: 0 });
    await ch.bindQueue(q, ex, '#');
    await publishAll(ch, ex, [
      ['a', '1'],
      ['b', '2'],
    ]);
    assert.deepEqual(await ch.checkQueue(q), { queue: q, messageCount: 2, consumerCount: 0 });
    assert.deepEqual(await ch.purgeQueue(q), { messageCount: 2 });
    assert.deepEqual(await ch.deleteQueue(q), { messageCount: 0 });
    await ch.deleteExchange(ex);
  });
});
