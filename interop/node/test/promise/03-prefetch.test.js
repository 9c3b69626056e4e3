// Scenario 3 (promise API): consumers with basic.qos and manual acks. With prefetch N,
// exactly N unacknowledged deliveries arrive until one is acknowledged.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

/** Fill `queue` with `bodies` through a confirm channel (so they are all enqueued). */
async function fill(conn, queue, bodies) {
  const pub = await h.channel(conn, true);
  for (const b of bodies) pub.sendToQueue(queue, Buffer.from(b));
  await h.withTimeout(pub.waitForConfirms(), h.WAIT_MS, 'confirms');
  await pub.close();
}

/** Wait until exactly `n` deliveries have arrived and no more arrive within QUIET_MS. */
async function expectExactly(inbox, n) {
  await inbox.waitCount(n);
  await h.delay(h.QUIET_MS);
  assert.equal(inbox.messages.length, n, `deliveries beyond the prefetch window`);
}

const range = (n, prefix) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

test('prefetch 3: three unacked deliveries, one more per ack, multiple acks open the window', async () => {
  const conn = await h.connect();
  try {
    const q = h.uid('prefetch');
    const ch = await h.channel(conn);
    await ch.assertQueue(q, { exclusive: true });
    await fill(conn, q, range(10, 'm'));
    await ch.prefetch(3);
    const inbox = new h.Inbox();
    const { consumerTag } = await ch.consume(q, inbox.handler, { noAck: false });
    await expectExactly(inbox, 3);

    const probe = await h.channel(conn);
    assert.deepEqual(await probe.checkQueue(q), { queue: q, messageCount: 7, consumerCount: 1 });

    ch.ack(inbox.messages[0]);
    await expectExactly(inbox, 4);
    assert.equal((await probe.checkQueue(q)).messageCount, 6);

    // acks m2, m3 and m4 at once: three more arrive
    ch.ack(inbox.messages[3], true);
    await expectExactly(inbox, 7);

    ch.ackAll();
    await expectExactly(inbox, 10);
    ch.ackAll();

    const got = inbox.messages;
    assert.deepEqual(
      got.map((m) => m.content.toString()),
      range(10, 'm'),
    );
    for (let i = 0; i < got.length; i++) {
      assert.deepEqual(got[i].fields, {
        consumerTag,
        deliveryTag: i + 1,
        redelivered: false,
        exchange: '',
        routingKey: q,
      });
    }
    await h.waitFor(async () => (await probe.checkQueue(q)).messageCount === 0, 'empty queue');
    assert.deepEqual(ch.errors, []);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('prefetch 1: strict one-at-a-time delivery', async () => {
  const conn = await h.connect();
  try {
    const q = h.uid('prefetch1');
    const ch = await h.channel(conn);
    await ch.assertQueue(q, { exclusive: true });
    await fill(conn, q, range(4, 'x'));
    await ch.prefetch(1);
    const inbox = new h.Inbox();
    await ch.consume(q, inbox.handler, { noAck: false });
    for (let i = 1; i <= 4; i++) {
      await expectExactly(inbox, i);
      assert.equal(inbox.messages[i - 1].content.toString(), `x${i}`);
      ch.ack(inbox.messages[i - 1]);
    }
  } finally {
    await h.closeQuietly(conn);
  }
});

test('prefetch 0 means no limit', async () => {
  const conn = await h.connect();
  try {
    const q = h.uid('prefetch0');
    const ch = await h.channel(conn);
    await ch.assertQueue(q, { exclusive: true });
    await fill(conn, q, range(25, 'u'));
    await ch.prefetch(0);
    const inbox = new h.Inbox();
    await ch.consume(q, inbox.handler, { noAck: false });
    await expectExactly(inbox, 25);
    ch.ackAll();
  } finally {
    await h.closeQuietly(conn);
  }
});

test('per-consumer prefetch (global=false): each consumer on the channel gets its own window', async () => {
  const conn = await h.connect();
  try {
    const q1 = h.uid('percons-a');
    const q2 = h.uid('percons-b');
    const ch = await h.channel(conn);
    await ch.assertQueue(q1, { exclusive: true });
    await ch.assertQueue(q2, { exclusive: true });
    await fill(conn, q1, range(5, 'a'));
    await fill(conn, q2, range(5, 'b'));
    await ch.prefetch(2, false);
    const in1 = new h.Inbox();
    const in2 = new h.Inbox();
    await ch.consume(q1, in1.handler);
    await ch.consume(q2, in2.handler);
    await expectExactly(in1, 2);
    await expectExactly(in2, 2);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('channel-wide prefetch (global=true): consumers share one window', async () => {
  const conn = await h.connect();
  try {
    const q1 = h.uid('global-a');
    const q2 = h.uid('global-b');
    const ch = await h.channel(conn);
    await ch.assertQueue(q1, { exclusive: true });
    await ch.assertQueue(q2, { exclusive: true });
    await fill(conn, q1, range(5, 'a'));
    await fill(conn, q2, range(5, 'b'));
    await ch.prefetch(3, true);
    const in1 = new h.Inbox();
    const in2 = new h.Inbox();
    await ch.consume(q1, in1.handler);
    await ch.consume(q2, in2.handler);
    await h.waitFor(() => in1.messages.length + in2.messages.length >= 3, 'three deliveries');
    await h.delay(h.QUIET_MS);
    assert.equal(in1.messages.length + in2.messages.length, 3, 'deliveries beyond the channel window');
    const first = in1.messages[0] || in2.messages[0];
    ch.ack(first);
    await h.waitFor(() => in1.messages.length + in2.messages.length >= 4, 'a fourth delivery');
    await h.delay(h.QUIET_MS);
    assert.equal(in1.messages.length + in2.messages.length, 4);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('unacked deliveries go back to the queue when the consumer channel closes', async () => {
  const conn = await h.connect();
  try {
    const q = h.uid('requeue-on-close');
    const setup = await h.channel(conn);
    await setup.assertQueue(q, { exclusive: true });
    await fill(conn, q, range(5, 'c'));
    const ch = await h.channel(conn);
    await ch.prefetch(2);
    const inbox = new h.Inbox();
    await ch.consume(q, inbox.handler);
    await expectExactly(inbox, 2);
    ch.ack(inbox.messages[0]);
    await expectExactly(inbox, 3);
    await ch.close();
    const left = await h.drain(setup, q);
    assert.deepEqual(
      left.map((m) => [m.content.toString(), m.fields.redelivered]),
      [
        ['c2', true],
        ['c3', true],
        ['c4', false],
        ['c5', false],
      ],
    );
  } finally {
    await h.closeQuietly(conn);
  }
});

test('deleting a queue cancels its consumers (basic.cancel from the broker)', async () => {
  const conn = await h.connect();
  try {
    const q = h.uid('cancel-notify');
    const ch = await h.channel(conn);
    await ch.assertQueue(q, { exclusive: true });
    const inbox = new h.Inbox();
    await ch.consume(q, inbox.handler);
    const admin = await h.channel(conn);
    assert.deepEqual(await admin.deleteQueue(q), { messageCount: 0 });
    await h.waitFor(() => inbox.cancelled, 'the consumer to be cancelled (callback with null)');
    assert.deepEqual(ch.errors, []);
    assert.equal(ch.closed, false);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('an auto-delete queue is deleted when its last consumer is cancelled', async () => {
  const conn = await h.connect();
  try {
    const q = h.uid('auto-delete-q');
    const ch = await h.channel(conn);
    await ch.assertQueue(q, { autoDelete: true, durable: false });
    const a = await ch.consume(q, () => {});
    const b = await ch.consume(q, () => {});
    assert.equal((await ch.checkQueue(q)).consumerCount, 2);
    await ch.cancel(a.consumerTag);
    assert.equal((await ch.checkQueue(q)).consumerCount, 1);
    await ch.cancel(b.consumerTag);
    await h.rejectsWithClose(ch.checkQueue(q), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`);
  } finally {
    await h.closeQuietly(conn);
  }
});
