// Scenario 11 (promise API): RabbitMQ extensions. Priority queues, dead-lettering (rejected,
// expired, delivery limit), TTLs, x-max-length with reject-publish, single active consumer,
// direct reply-to, alternate exchanges, the delayed-message and consistent-hash exchanges,
// quorum queue declaration and consumer timeouts.
//
// Where RabbitMQ 3.10 and current RabbitMQ (4.x) differ, the 4.x answer is expected (warren
// gives it): x-last-death-* headers, x-delivery-count and a delivery limit on classic queues,
// x-consumer-timeout as a queue argument. The delayed-message exchange is a plugin.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

const REPLY_TO = 'amq.rabbitmq.reply-to';

/** Run `fn(conn, cleanup)`; queues and exchanges given to cleanup are deleted afterwards. */
async function withConn(fn) {
  const conn = await h.connect();
  const queues = [];
  const exchanges = [];
  const cleanup = {
    queue: (n) => (queues.push(n), n),
    exchange: (n) => (exchanges.push(n), n),
  };
  try {
    await fn(conn, cleanup);
    assert.deepEqual(conn.errors, []);
  } finally {
    await h.closeQuietly(conn);
    if (queues.length || exchanges.length) {
      const c = await h.connect();
      try {
        const ch = await c.createChannel();
        for (const q of queues) await ch.deleteQueue(q);
        for (const x of exchanges) await ch.deleteExchange(x);
      } finally {
        await h.closeQuietly(c);
      }
    }
  }
}

/** Publish on a fresh confirm channel and wait for every confirm. */
async function publishConfirmed(conn, exchange, key, bodies, options = {}) {
  const ch = await h.channel(conn, true);
  for (const b of bodies) ch.publish(exchange, key, Buffer.from(b), options);
  await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
  await ch.close();
}

/** basic.get (no-ack) until a message comes. */
function pollGet(ch, q, what) {
  return h.waitFor(async () => ch.get(q, { noAck: true }), what || `a message in ${q}`);
}

/**
 * A direct DLX with a queue bound on 'dead', and a source queue dead-lettering to it with
 * x-dead-letter-routing-key 'dead'.
 */
async function deadLetterSetup(ch, cleanup, prefix, extraArgs = {}) {
  const dlx = cleanup.exchange(h.uid(`${prefix}-dlx`));
  const dlq = cleanup.queue(h.uid(`${prefix}-dlq`));
  const src = cleanup.queue(h.uid(`${prefix}-src`));
  await ch.assertExchange(dlx, 'direct', { durable: false });
  await ch.assertQueue(dlq, { durable: false });
  await ch.bindQueue(dlq, dlx, 'dead');
  await ch.assertQueue(src, {
    durable: false,
    arguments: { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead', ...extraArgs },
  });
  return { src, dlx, dlq };
}

/** Whether the broker is a RabbitMQ 3.x (the oracle is 3.10), which has no x-last-death-*. */
function rabbitmq3x(conn) {
  const props = conn.connection.serverProperties || {};
  return String(props.product) === 'RabbitMQ' && String(props.version).startsWith('3.');
}

/** The x-death history (one entry) and x-first/last-death-* headers of a single death. */
function checkDeath(conn, headers, { queue, reason, exchange, routingKeys, before, extra = {} }) {
  const deaths = headers['x-death'];
  assert.ok(Array.isArray(deaths) && deaths.length === 1, JSON.stringify(deaths));
  const { time, ...death } = deaths[0];
  assert.equal(time['!'], 'timestamp');
  assert.ok(time.value >= Math.floor(before / 1000) - 1 && time.value <= Date.now() / 1000 + 1, `time ${time.value}`);
  assert.deepEqual(death, { count: 1, reason, queue, exchange, 'routing-keys': routingKeys, ...extra });
  assert.equal(headers['x-first-death-reason'], reason);
  assert.equal(headers['x-first-death-queue'], queue);
  assert.equal(headers['x-first-death-exchange'], exchange);
  if (!rabbitmq3x(conn)) {
    // RabbitMQ 3.13 and later also set x-last-death-*.
    assert.equal(headers['x-last-death-reason'], reason);
    assert.equal(headers['x-last-death-queue'], queue);
    assert.equal(headers['x-last-death-exchange'], exchange);
  }
}

test('priority queue: highest priority first, FIFO within a priority', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn, true);
    const q = cleanup.queue(h.uid('prio'));
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 10 } });
    const sent = [
      ['p1-a', 1],
      ['none-a', undefined],
      ['p5-a', 5],
      ['p9-a', 9],
      ['p1-b', 1],
      ['p5-b', 5],
      ['none-b', undefined],
      ['p9-b', 9],
    ];
    for (const [body, priority] of sent) {
      ch.sendToQueue(q, Buffer.from(body), priority === undefined ? {} : { priority });
    }
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
    assert.equal((await ch.checkQueue(q)).messageCount, sent.length);
    const inbox = new h.Inbox();
    const { consumerTag } = await ch.consume(q, inbox.handler, { noAck: true });
    const got = await inbox.waitCount(sent.length);
    await ch.cancel(consumerTag);
    assert.deepEqual(
      got.map((m) => [m.content.toString(), m.properties.priority]),
      [
        ['p9-a', 9],
        ['p9-b', 9],
        ['p5-a', 5],
        ['p5-b', 5],
        ['p1-a', 1],
        ['p1-b', 1],
        ['none-a', undefined],
        ['none-b', undefined],
      ],
    );
    assert.deepEqual(ch.errors, []);
  });
});

test('dead-lettering: basic.reject requeue=false goes to the DLX with x-death', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn);
    const { src, dlx, dlq } = await deadLetterSetup(ch, cleanup, 'dlx-rej');
    const before = Date.now();
    await publishConfirmed(conn, '', src, ['rejected body'], { headers: { app: 'kept' }, messageId: 'm-1' });
    const m = await ch.get(src, { noAck: false });
    assert.equal(m.content.toString(), 'rejected body');
    ch.reject(m, false);
    const dead = await pollGet(ch, dlq, 'the dead-lettered message');
    assert.equal(dead.content.toString(), 'rejected body');
    assert.deepEqual([dead.fields.exchange, dead.fields.routingKey, dead.fields.redelivered], [dlx, 'dead', false]);
    assert.equal(dead.properties.messageId, 'm-1');
    const { app, ...headers } = dead.properties.headers;
    assert.equal(app, 'kept');
    checkDeath(conn, headers, { queue: src, reason: 'rejected', exchange: '', routingKeys: [src], before });
    const keys = ['x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason'];
    if (!rabbitmq3x(conn)) keys.push('x-last-death-exchange', 'x-last-death-queue', 'x-last-death-reason');
    assert.deepEqual(Object.keys(headers).sort(), keys);
    assert.equal((await ch.checkQueue(src)).messageCount, 0);
    assert.deepEqual(ch.errors, []);
  });
});

test('TTL: per-queue x-message-ttl expiry dead-letters with reason expired', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn);
    const { src, dlx, dlq } = await deadLetterSetup(ch, cleanup, 'ttl-q', { 'x-message-ttl': 100 });
    const before = Date.now();
    await publishConfirmed(conn, '', src, ['short-lived']);
    const dead = await pollGet(ch, dlq, 'the expired message');
    assert.equal(dead.content.toString(), 'short-lived');
    assert.deepEqual([dead.fields.exchange, dead.fields.routingKey], [dlx, 'dead']);
    assert.equal(dead.properties.expiration, undefined);
    checkDeath(conn, dead.properties.headers, { queue: src, reason: 'expired', exchange: '', routingKeys: [src], before });
    assert.equal((await ch.checkQueue(src)).messageCount, 0);
  });
});

test('TTL: per-message expiration dead-letters with original-expiration in x-death', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn);
    const { src, dlx, dlq } = await deadLetterSetup(ch, cleanup, 'ttl-msg');
    const before = Date.now();
    await publishConfirmed(conn, '', src, ['expiring'], { expiration: '150' });
    assert.equal(await ch.get(dlq, { noAck: true }), false, 'dead before its expiration');
    const dead = await pollGet(ch, dlq, 'the expired message');
    assert.equal(dead.content.toString(), 'expiring');
    assert.deepEqual([dead.fields.exchange, dead.fields.routingKey], [dlx, 'dead']);
    assert.equal(dead.properties.expiration, undefined);
    checkDeath(conn, dead.properties.headers, {
      queue: src,
      reason: 'expired',
      exchange: '',
      routingKeys: [src],
      before,
      extra: { 'original-expiration': '150' },
    });
  });
});

test('x-max-length with x-overflow reject-publish: the overflowing publish is nacked', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn, true);
    const q = cleanup.queue(h.uid('maxlen'));
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } });
    const outcome = (body) =>
      new Promise((resolve) => ch.sendToQueue(q, Buffer.from(body), {}, (err) => resolve(err ? 'nack' : 'ack')));
    const results = await h.withTimeout(
      Promise.all([outcome('one'), outcome('two'), outcome('three')]),
      h.WAIT_MS,
      'confirms',
    );
    assert.deepEqual(results, ['ack', 'ack', 'nack']);
    assert.equal((await ch.checkQueue(q)).messageCount, 2);
    assert.deepEqual(await h.drainBodies(ch, q), ['one', 'two']);
    assert.equal(await h.withTimeout(outcome('four'), h.WAIT_MS, 'confirm'), 'ack');
    assert.deepEqual(await h.drainBodies(ch, q), ['four']);
    assert.deepEqual(ch.errors, []);
  });
});

test('x-delivery-limit 1: the second failed delivery dead-letters with reason delivery_limit', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn);
    const { src, dlx, dlq } = await deadLetterSetup(ch, cleanup, 'dlimit', { 'x-delivery-limit': 1 });
    const before = Date.now();
    await publishConfirmed(conn, '', src, ['poison']);
    const first = await ch.get(src, { noAck: false });
    assert.deepEqual([first.content.toString(), first.fields.redelivered], ['poison', false]);
    assert.deepEqual(first.properties.headers, {}); // amqplib always sends a headers table
    ch.reject(first, true);
    const second = await ch.get(src, { noAck: false });
    assert.deepEqual([second.content.toString(), second.fields.redelivered], ['poison', true]);
    assert.deepEqual(second.properties.headers, { 'x-delivery-count': 1, 'x-acquired-count': 1 });
    ch.reject(second, true);
    const dead = await pollGet(ch, dlq, 'the dead-lettered message');
    assert.equal(dead.content.toString(), 'poison');
    assert.deepEqual([dead.fields.exchange, dead.fields.routingKey], [dlx, 'dead']);
    checkDeath(conn, dead.properties.headers, {
      queue: src,
      reason: 'delivery_limit',
      exchange: '',
      routingKeys: [src],
      before,
    });
    assert.equal(await ch.get(src, { noAck: true }), false);
    assert.deepEqual(ch.errors, []);
  });
});

test('single active consumer: only the first consumer receives; after its cancel the second', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn);
    const q = cleanup.queue(h.uid('sac'));
    await ch.assertQueue(q, { durable: false, arguments: { 'x-single-active-consumer': true } });
    const chA = await h.channel(conn);
    const chB = await h.channel(conn);
    const a = new h.Inbox();
    const b = new h.Inbox();
    const { consumerTag: tagA } = await chA.consume(q, a.handler, { noAck: true });
    await chB.consume(q, b.handler, { noAck: true });
    for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(`first-${i}`));
    await a.waitCount(5);
    await h.delay(h.QUIET_MS);
    const bodies = (inbox) => inbox.messages.map((m) => m.content.toString());
    assert.deepEqual(bodies(a), ['first-0', 'first-1', 'first-2', 'first-3', 'first-4']);
    assert.deepEqual(bodies(b), []);
    await chA.cancel(tagA);
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`second-${i}`));
    await b.waitCount(3);
    await h.delay(h.QUIET_MS);
    assert.deepEqual(bodies(a), ['first-0', 'first-1', 'first-2', 'first-3', 'first-4']);
    assert.deepEqual(bodies(b), ['second-0', 'second-1', 'second-2']);
    assert.deepEqual([...ch.errors, ...chA.errors, ...chB.errors], []);
  });
});

test('direct reply-to: the reply to amq.rabbitmq.reply-to.* reaches the requester', async () => {
  await withConn(async (conn, cleanup) => {
    const server = await h.connect();
    try {
      const client = await h.channel(conn);
      const replies = new h.Inbox();
      await client.consume(REPLY_TO, replies.handler, { noAck: true });
      const sch = await h.channel(server, true);
      const rpcQ = cleanup.queue(h.uid('rpc'));
      await sch.assertQueue(rpcQ, { durable: false });
      client.sendToQueue(rpcQ, Buffer.from('ping'), { replyTo: REPLY_TO, correlationId: 'c-42' });
      const req = await pollGet(sch, rpcQ, 'the request');
      assert.equal(req.content.toString(), 'ping');
      assert.equal(req.properties.correlationId, 'c-42');
      const replyTo = req.properties.replyTo;
      assert.ok(replyTo.startsWith(`${REPLY_TO}.`), replyTo);
      sch.publish('', replyTo, Buffer.from('pong'), { correlationId: 'c-42' });
      await h.withTimeout(sch.waitForConfirms(), h.WAIT_MS, 'confirm of the reply');
      const reply = await replies.next();
      assert.equal(reply.content.toString(), 'pong');
      assert.equal(reply.properties.correlationId, 'c-42');
      assert.deepEqual([reply.fields.exchange, reply.fields.routingKey], ['', replyTo]);
      await h.delay(h.QUIET_MS);
      assert.equal(replies.messages.length, 1);
      assert.deepEqual([...client.errors, ...sch.errors], []);
      assert.deepEqual(server.errors, []);
    } finally {
      await h.closeQuietly(server);
    }
  });
});

test('alternate exchange: an unroutable publish lands in the AE queue', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn, true);
    const ae = cleanup.exchange(h.uid('ae'));
    const main = cleanup.exchange(h.uid('ae-main'));
    const aeQ = cleanup.queue(h.uid('ae-q'));
    const mainQ = cleanup.queue(h.uid('ae-main-q'));
    await ch.assertExchange(ae, 'fanout', { durable: false });
    await ch.assertQueue(aeQ, { durable: false });
    await ch.bindQueue(aeQ, ae, '');
    await ch.assertExchange(main, 'direct', { durable: false, alternateExchange: ae });
    await ch.assertQueue(mainQ, { durable: false });
    await ch.bindQueue(mainQ, main, 'known');
    ch.publish(main, 'unknown', Buffer.from('to the AE'), { mandatory: true });
    ch.publish(main, 'known', Buffer.from('to main'), { mandatory: true });
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
    assert.deepEqual(ch.returned, []);
    const summary = (m) => [m.fields.exchange, m.fields.routingKey, m.content.toString()];
    assert.deepEqual((await h.drain(ch, aeQ)).map(summary), [[main, 'unknown', 'to the AE']]);
    assert.deepEqual((await h.drain(ch, mainQ)).map(summary), [[main, 'known', 'to main']]);
    assert.deepEqual(ch.errors, []);
  });
});

test('x-delayed-message exchange: delivered after x-delay, with x-delay negated', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn, true);
    const x = cleanup.exchange(h.uid('delayed'));
    const q = cleanup.queue(h.uid('delayed-q'));
    await ch.assertExchange(x, 'x-delayed-message', { durable: false, arguments: { 'x-delayed-type': 'direct' } });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'k');
    const start = Date.now();
    ch.publish(x, 'k', Buffer.from('later'), { headers: { 'x-delay': 300 } });
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirm');
    assert.equal(await ch.get(q, { noAck: true }), false, 'delivered before its delay');
    const m = await pollGet(ch, q, 'the delayed message');
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 250, `arrived after ${elapsed} ms, delay was 300 ms`);
    assert.equal(m.content.toString(), 'later');
    assert.deepEqual([m.fields.exchange, m.fields.routingKey], [x, 'k']);
    assert.deepEqual(m.properties.headers, { 'x-delay': -300 });
    assert.deepEqual(ch.errors, []);
  });
});

test('x-consistent-hash exchange: 1000 keys split over two queues, stable per key', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn, true);
    const x = cleanup.exchange(h.uid('chash'));
    const qs = [cleanup.queue(h.uid('chash-a')), cleanup.queue(h.uid('chash-b'))];
    await ch.assertExchange(x, 'x-consistent-hash', { durable: false });
    for (const q of qs) {
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, '1');
    }
    const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
    const publishAll = async () => {
      for (const k of keys) ch.publish(x, k, Buffer.from(k), { mandatory: true });
      await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
    };
    const where = async () => {
      const placed = new Map();
      for (const q of qs) {
        for (const body of await h.drainBodies(ch, q)) {
          assert.ok(!placed.has(body), `${body} routed twice`);
          placed.set(body, q);
        }
      }
      return placed;
    };
    await publishAll();
    const counts = [];
    for (const q of qs) counts.push((await ch.checkQueue(q)).messageCount);
    assert.equal(counts[0] + counts[1], 1000, `counts ${counts}`);
    assert.ok(counts[0] > 0 && counts[1] > 0, `counts ${counts}`);
    const first = await where();
    assert.deepEqual([...first.keys()].sort(), [...keys].sort());
    await publishAll();
    const second = await where();
    assert.deepEqual(second, first);
    assert.deepEqual(ch.returned, []);
    assert.deepEqual(ch.errors, []);
  });
});

test('quorum queue: durable declare works', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn, true);
    const q = cleanup.queue(h.uid('quorum'));
    const ok = await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    assert.deepEqual(ok, { queue: q, messageCount: 0, consumerCount: 0 });
    ch.sendToQueue(q, Buffer.from('q1'));
    ch.sendToQueue(q, Buffer.from('q2'));
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
    assert.deepEqual(await h.drainBodies(ch, q), ['q1', 'q2']);
  });
});

test('quorum queue: non-durable declare is 406 PRECONDITION_FAILED', async () => {
  await withConn(async (conn) => {
    const ch = await h.channel(conn);
    const q = h.uid('quorum-transient');
    await h.rejectsWithClose(
      ch.assertQueue(q, { durable: false, arguments: { 'x-queue-type': 'quorum' } }),
      406,
      `PRECONDITION_FAILED - invalid property 'non-durable' for queue '${q}' in vhost '/'`,
    );
    const ch2 = await h.channel(conn);
    await h.rejectsWithClose(ch2.checkQueue(q), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`);
  });
});

test('stream queue declare is refused with 406 (warren has no streams)', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn);
    const q = cleanup.queue(h.uid('stream'));
    await h.rejectsWithClose(
      ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream' } }),
      406,
      `PRECONDITION_FAILED - cannot declare queue '${q}' in vhost '/': streams are not supported by warren`,
    );
  });
});

test('x-consumer-timeout: an unacked delivery closes the channel with 406, then is redelivered', async () => {
  await withConn(async (conn, cleanup) => {
    const ch = await h.channel(conn);
    const q = cleanup.queue(h.uid('ctimeout'));
    await ch.assertQueue(q, { durable: false, arguments: { 'x-consumer-timeout': 200 } });
    await publishConfirmed(conn, '', q, ['slow']);
    const cch = await h.channel(conn);
    const inbox = new h.Inbox();
    await cch.consume(q, inbox.handler, { noAck: false }); // never acked
    const m = await inbox.next();
    assert.deepEqual([m.content.toString(), m.fields.redelivered], ['slow', false]);
    await h.waitFor(() => cch.closed, 'the consumer timeout to close the channel', 15000);
    assert.equal(cch.errors.length, 1);
    const info = h.closeInfo(cch.errors[0]);
    assert.equal(info.code, 406);
    assert.equal(
      info.text,
      `PRECONDITION_FAILED - delivery acknowledgement on channel ${cch.ch} timed out. ` +
        'Timeout value used: 200 ms. This timeout value can be configured, see consumers doc guide to learn more',
    );
    const nch = await h.channel(conn);
    const again = new h.Inbox();
    await nch.consume(q, again.handler, { noAck: false });
    const r = await again.next();
    assert.deepEqual([r.content.toString(), r.fields.redelivered], ['slow', true]);
    nch.ack(r);
    assert.deepEqual([...ch.errors, ...nch.errors], []);
  });
});
