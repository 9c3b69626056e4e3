// Scenario 9 (promise API): durable state across a broker restart. Runs on its own (run.sh
// starts it after the other files), because the restart closes every connection.
//
// Before the restart: a durable queue with persistent messages (confirmed), a durable
// exchange bound to it, non-durable things that must not survive, a delivery left unacked
// on a connection kept open, and a connection with amqplib's automatic recovery.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('../helpers');

const MiB = 1024 * 1024;

function persistentMessages(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    let size;
    if (i === 0) size = 0;
    else if (i === 1) size = MiB;
    else if (i === 2) size = 300000;
    else size = (i * 7919) % 5000;
    out.push({
      body: crypto.randomBytes(size),
      options: {
        persistent: true,
        messageId: `d${i}`,
        contentType: 'application/octet-stream',
        correlationId: `c${i}`,
        timestamp: 1700000000 + i,
        headers: {
          i,
          tag: 'restart',
          nested: { list: [1, 'b', null], flag: true },
          when: { '!': 'timestamp', value: 1600000000 + i },
          price: { '!': 'decimal', value: { places: 2, digits: 999 + i } },
        },
      },
      headers: {
        i,
        tag: 'restart',
        nested: { list: [1, 'b', null], flag: true },
        when: { '!': 'timestamp', value: 1600000000 + i },
        price: { '!': 'decimal', value: { places: 2, digits: 999 + i } },
      },
    });
  }
  return out;
}

test('durable queues, persistent messages and bindings survive a broker restart', { timeout: 300000 }, async (t) => {
  if (!process.env.BROKER_RESTART) {
    t.skip('BROKER_RESTART is not set');
    return;
  }
  const names = {
    durable: h.uid('restart-durable'),
    mixed: h.uid('restart-mixed'),
    unacked: h.uid('restart-unacked'),
    transientQ: h.uid('restart-transient-q'),
    recovered: h.uid('restart-recovery'),
    exDurable: h.uid('restart-ex-durable'),
    exTransient: h.uid('restart-ex-transient'),
  };
  const msgs = persistentMessages(30);

  // ---- before the restart
  const setup = await h.connect();
  const ch = await h.channel(setup, true);
  await ch.assertExchange(names.exDurable, 'direct', { durable: true, autoDelete: false });
  await ch.assertExchange(names.exTransient, 'fanout', { durable: false, autoDelete: false });
  for (const q of [names.durable, names.mixed, names.unacked, names.recovered]) {
    await ch.assertQueue(q, { durable: true, autoDelete: false });
  }
  await ch.assertQueue(names.transientQ, { durable: false, autoDelete: false });
  await ch.bindQueue(names.durable, names.exDurable, 'k');
  for (const m of msgs) ch.publish(names.exDurable, 'k', m.body, m.options);
  for (let i = 0; i < 6; i++) {
    ch.sendToQueue(names.mixed, Buffer.from(`mixed-${i}`), { persistent: i % 2 === 0, messageId: `x${i}` });
  }
  for (let i = 0; i < 3; i++) ch.sendToQueue(names.unacked, Buffer.from(`u${i}`), { persistent: true });
  ch.sendToQueue(names.transientQ, Buffer.from('gone'), { persistent: true });
  await h.withTimeout(ch.waitForConfirms(), 60000, 'confirms before the restart');
  assert.equal((await ch.checkQueue(names.durable)).messageCount, 30);
  await h.closeQuietly(setup);

  // a connection that stays open through the restart, holding one unacked delivery
  const holder = await h.connect();
  const holderClose = h.once(holder, 'close', 'the held connection to close', 200000);
  const hch = await holder.createChannel();
  hch.on('error', () => {});
  await hch.prefetch(1);
  const held = new h.Inbox();
  await hch.consume(names.unacked, held.handler, { noAck: false });
  const first = await held.next();
  assert.equal(first.content.toString(), 'u0');

  // a connection with amqplib's recovery; setup (re)declares the queue and consumes
  const recoveredInbox = new h.Inbox();
  let setups = 0;
  const recovering = await h.amqp.connect(h.URL, {
    recovery: {
      initialDelay: 200,
      maxDelay: 1000,
      maxRetries: Infinity,
      async setup(model) {
        setups += 1;
        const rch = await model.createChannel();
        await rch.assertQueue(names.recovered, { durable: true, autoDelete: false });
        await rch.consume(names.recovered, recoveredInbox.handler, { noAck: true });
      },
    },
  });
  recovering.on('error', () => {});
  let reconnects = 0;
  recovering.on('connect', () => {
    reconnects += 1;
  });
  assert.equal(setups, 1);

  // ---- restart
  await h.restartBroker();

  try {
    await t.test('an open connection is closed by the broker with 320 CONNECTION_FORCED', async () => {
      const err = await holderClose;
      assert.ok(err instanceof Error, `close event without an error: ${err}`);
      assert.equal(err.code, 320, err.message);
      assert.equal(
        err.message,
        'Connection closed: 320 (CONNECTION-FORCED) with message ' +
          `"CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"`,
      );
    });

    // the broker may still be starting when the restart command returns
    const conn = await h.connectRetry();
    try {
      const c = await h.channel(conn);

      await t.test('the durable queue has its 30 persistent messages, in order, byte-exact', async () => {
        assert.deepEqual(await c.checkQueue(names.durable), { queue: names.durable, messageCount: 30, consumerCount: 0 });
        const inbox = new h.Inbox();
        const { consumerTag } = await c.consume(names.durable, inbox.handler, { noAck: false });
        const got = await inbox.waitCount(30, 60000);
        await c.cancel(consumerTag);
        for (let i = 0; i < 30; i++) {
          const m = got[i];
          assert.equal(m.properties.messageId, `d${i}`, `message ${i} out of order`);
          assert.ok(m.content.equals(msgs[i].body), `body of message ${i} (${msgs[i].body.length} bytes)`);
          assert.equal(m.fields.redelivered, false, `redelivered flag of message ${i}`);
          assert.equal(m.fields.exchange, names.exDurable);
          assert.equal(m.fields.routingKey, 'k');
          assert.equal(m.properties.deliveryMode, 2);
          assert.equal(m.properties.contentType, 'application/octet-stream');
          assert.equal(m.properties.correlationId, `c${i}`);
          assert.equal(m.properties.timestamp, 1700000000 + i);
          assert.deepStrictEqual(m.properties.headers, msgs[i].headers);
        }
        c.ackAll();
        await h.waitFor(async () => (await c.checkQueue(names.durable)).messageCount === 0, 'acks to settle');
      });

      await t.test('the durable exchange and its binding survive', async () => {
        await c.checkExchange(names.exDurable);
        const pub = await h.channel(conn, true);
        pub.publish(names.exDurable, 'k', Buffer.from('after'));
        await h.withTimeout(pub.waitForConfirms(), h.WAIT_MS, 'confirm');
        assert.deepEqual(await h.drainBodies(c, names.durable), ['after']);
      });

      await t.test('a durable queue keeps only its persistent messages', async () => {
        const left = await h.drain(c, names.mixed);
        assert.deepEqual(
          left.map((m) => [m.content.toString(), m.properties.messageId, m.fields.redelivered]),
          [
            ['mixed-0', 'x0', false],
            ['mixed-2', 'x2', false],
            ['mixed-4', 'x4', false],
          ],
        );
      });

      await t.test('a delivery unacked at shutdown comes back redelivered, the others not', async () => {
        const left = await h.drain(c, names.unacked);
        assert.deepEqual(
          left.map((m) => [m.content.toString(), m.fields.redelivered]),
          [
            ['u0', true],
            ['u1', false],
            ['u2', false],
          ],
        );
      });

      await t.test('the non-durable queue and exchange are gone', async () => {
        const c1 = await h.channel(conn);
        await h.rejectsWithClose(
          c1.checkQueue(names.transientQ),
          404,
          `NOT_FOUND - no queue '${names.transientQ}' in vhost '/'`,
        );
        const c2 = await h.channel(conn);
        await h.rejectsWithClose(
          c2.checkExchange(names.exTransient),
          404,
          `NOT_FOUND - no exchange '${names.exTransient}' in vhost '/'`,
        );
      });

      await t.test("amqplib's recovery reconnects, reruns setup and consumes again", async () => {
        await h.waitFor(() => reconnects >= 1 && setups >= 2, 'the recovering connection to reconnect', 60000);
        const pub = await h.channel(conn, true);
        pub.sendToQueue(names.recovered, Buffer.from('to the recovered consumer'));
        await h.withTimeout(pub.waitForConfirms(), h.WAIT_MS, 'confirm');
        const m = await recoveredInbox.next();
        assert.equal(m.content.toString(), 'to the recovered consumer');
        assert.equal(m.fields.redelivered, false);
      });
    } finally {
      const cleanup = await h.channel(conn).catch(() => null);
      if (cleanup) {
        for (const q of [names.durable, names.mixed, names.unacked, names.recovered]) {
          await cleanup.deleteQueue(q).catch(() => {});
        }
        await cleanup.deleteExchange(names.exDurable).catch(() => {});
      }
      await h.closeQuietly(conn);
    }
  } finally {
    await h.closeQuietly(recovering);
    await h.closeQuietly(holder);
  }
});
