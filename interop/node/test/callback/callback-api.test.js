// The same scenarios through amqplib's callback API (amqplib/callback_api): connection,
// declare/bind/publish/consume with acks and prefetch, nack/reject, confirms, mandatory
// returns, a multi-frame body, header types and errors. The broker restart is covered by
// the promise API only. `h.cbCall(obj, 'method', ...args)` calls obj.method(...args, cb)
// and awaits the callback.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('../helpers');

const { amqpcb, cbCall } = h;

async function withConn(fn) {
  const conn = await h.cbConnect();
  try {
    await fn(conn);
    assert.deepEqual(conn.errors, []);
  } finally {
    await new Promise((resolve) => {
      try {
        conn.close(() => resolve());
      } catch (_) {
        resolve();
      }
    });
  }
}

async function channel(conn, confirm = false) {
  const ch = await cbCall(conn, confirm ? 'createConfirmChannel' : 'createChannel');
  return h.trackChannel(ch);
}

/** Every message in `queue` via basic.get (callback form), in order. */
async function drain(ch, queue) {
  const out = [];
  for (;;) {
    const m = await cbCall(ch, 'get', queue, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

test('callback: connect with the URL and with an explicit vhost "/"', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn);
    const ok = await cbCall(ch, 'assertQueue', '', { exclusive: true });
    assert.match(ok.queue, /^amq\.gen-/);
    assert.equal(conn.connection.frameMax, 131072);
  });
  const conn = await h.cbConnect({
    protocol: 'amqp',
    hostname: h.HOST,
    port: h.PORT,
    username: 'guest',
    password: 'guest',
    vhost: '/',
  });
  await cbCall(conn, 'close');
});

test('callback: missing vhost and wrong password are refused', async () => {
  const vhost = h.uid('cb-no-vhost');
  const { error, frames, defs } = await h.withHandshakeFrames(() =>
    cbCall(amqpcb, 'connect', `amqp://guest:guest@${h.HOST}:${h.PORT}/${vhost}`),
  );
  assert.ok(error, 'connected to a missing vhost');
  const close = frames.find((f) => f.id === defs.ConnectionClose);
  assert.ok(close, 'no connection.close');
  assert.equal(close.fields.replyCode, 530);
  assert.equal(close.fields.replyText, `NOT_ALLOWED - vhost ${vhost} not found`);

  await assert.rejects(cbCall(amqpcb, 'connect', `amqp://guest:bad@${h.HOST}:${h.PORT}/%2f`), (err) => {
    assert.equal(
      err.message,
      'Handshake terminated by server: 403 (ACCESS-REFUSED) with message ' +
        '"ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."',
    );
    return true;
  });
});

test('callback: declare, bind, publish and consume with prefetch and manual acks', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn);
    const ex = h.uid('cb-topic');
    await cbCall(ch, 'assertExchange', ex, 'topic', { autoDelete: true });
    const qa = (await cbCall(ch, 'assertQueue', h.uid('cb-a'), { exclusive: true })).queue;
    const qb = (await cbCall(ch, 'assertQueue', h.uid('cb-b'), { exclusive: true })).queue;
    await cbCall(ch, 'bindQueue', qa, ex, 'stock.*.nyse', {});
    await cbCall(ch, 'bindQueue', qb, ex, 'stock.#', {});
    const keys = ['stock.ibm.nyse', 'stock.ibm.lse', 'stock', 'bond.x.nyse', 'stock.a.nyse'];
    for (const k of keys) assert.equal(ch.publish(ex, k, Buffer.from(k)), true);

    await cbCall(ch, 'prefetch', 2, false);
    const inbox = new h.Inbox();
    const { consumerTag } = await cbCall(ch, 'consume', qb, inbox.handler, { noAck: false });
    await inbox.waitCount(2);
    await h.delay(h.QUIET_MS);
    assert.equal(inbox.messages.length, 2, 'deliveries beyond prefetch 2');
    ch.ack(inbox.messages[0]);
    await inbox.waitCount(3);
    ch.ack(inbox.messages[2], true);
    await inbox.waitCount(4);
    ch.ack(inbox.messages[3]);
    await cbCall(ch, 'cancel', consumerTag);
    assert.deepEqual(
      inbox.messages.map((m) => m.content.toString()),
      ['stock.ibm.nyse', 'stock.ibm.lse', 'stock', 'stock.a.nyse'],
    );
    assert.deepEqual(
      inbox.messages.map((m) => m.fields.deliveryTag),
      [1, 2, 3, 4],
    );
    const a = await drain(ch, qa);
    assert.deepEqual(
      a.map((m) => m.content.toString()),
      ['stock.ibm.nyse', 'stock.a.nyse'],
    );
    assert.deepEqual(ch.errors, []);
  });
});

test('callback: direct, fanout and headers exchanges', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn, true);
    const direct = h.uid('cb-direct');
    const fanout = h.uid('cb-fanout');
    const headers = h.uid('cb-headers');
    await cbCall(ch, 'assertExchange', direct, 'direct', { autoDelete: true });
    await cbCall(ch, 'assertExchange', fanout, 'fanout', { autoDelete: true });
    await cbCall(ch, 'assertExchange', headers, 'headers', { autoDelete: true });
    const q = {};
    for (const n of ['d', 'f1', 'f2', 'hall', 'hany']) {
      q[n] = (await cbCall(ch, 'assertQueue', h.uid(`cb-${n}`), { exclusive: true })).queue;
    }
    await cbCall(ch, 'bindQueue', q.d, direct, 'x', {});
    await cbCall(ch, 'bindQueue', q.f1, fanout, '', {});
    await cbCall(ch, 'bindQueue', q.f2, fanout, 'whatever', {});
    await cbCall(ch, 'bindQueue', q.hall, headers, '', { 'x-match': 'all', a: 1, b: 'two' });
    await cbCall(ch, 'bindQueue', q.hany, headers, '', { 'x-match': 'any', a: 1, b: 'two' });
    ch.publish(direct, 'x', Buffer.from('dx'));
    ch.publish(direct, 'y', Buffer.from('dy'));
    ch.publish(fanout, 'k', Buffer.from('f'));
    ch.publish(headers, '', Buffer.from('both'), { headers: { a: 1, b: 'two' } });
    ch.publish(headers, '', Buffer.from('a-only'), { headers: { a: 1 } });
    ch.publish(headers, '', Buffer.from('neither'), { headers: { a: 2, b: 'three' } });
    await cbCall(ch, 'waitForConfirms');
    const bodies = async (name) => (await drain(ch, q[name])).map((m) => m.content.toString());
    assert.deepEqual(await bodies('d'), ['dx']);
    assert.deepEqual(await bodies('f1'), ['f']);
    assert.deepEqual(await bodies('f2'), ['f']);
    assert.deepEqual(await bodies('hall'), ['both']);
    assert.deepEqual(await bodies('hany'), ['both', 'a-only']);
  });
});

test('callback: nack and reject, with and without requeue', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn, true);
    const q = (await cbCall(ch, 'assertQueue', h.uid('cb-nack'), { exclusive: true })).queue;
    for (const b of ['m1', 'm2', 'm3']) ch.sendToQueue(q, Buffer.from(b));
    await cbCall(ch, 'waitForConfirms');
    const m1 = await cbCall(ch, 'get', q, { noAck: false });
    assert.equal(m1.fields.redelivered, false);
    ch.reject(m1, true);
    const again = await cbCall(ch, 'get', q, { noAck: false });
    assert.deepEqual([again.content.toString(), again.fields.redelivered], ['m1', true]);
    ch.nack(again, false, false); // dropped
    const m2 = await cbCall(ch, 'get', q, { noAck: false });
    const m3 = await cbCall(ch, 'get', q, { noAck: false });
    ch.nack(m3, true, true); // m2 and m3 back
    const back = await drain(ch, q);
    assert.deepEqual(
      back.map((m) => [m.content.toString(), m.fields.redelivered]),
      [
        ['m2', true],
        ['m3', true],
      ],
    );
    assert.equal(m2.content.toString(), 'm2');
    ch.sendToQueue(q, Buffer.from('m4'));
    await cbCall(ch, 'waitForConfirms');
    const m4 = await cbCall(ch, 'get', q, { noAck: false });
    ch.reject(m4, false);
    const ok = await cbCall(ch, 'checkQueue', q);
    assert.equal(ok.messageCount, 0);
  });
});

test('callback: confirm channel acks every publish', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn, true);
    const q = (await cbCall(ch, 'assertQueue', h.uid('cb-confirm'), { exclusive: true })).queue;
    let acked = 0;
    let nacked = 0;
    const all = [];
    for (let i = 0; i < 50; i++) {
      all.push(
        new Promise((resolve) => {
          ch.sendToQueue(q, Buffer.from(`c${i}`), { persistent: true }, (err) => {
            if (err) nacked += 1;
            else acked += 1;
            resolve();
          });
        }),
      );
    }
    await h.withTimeout(Promise.all(all), h.WAIT_MS, 'confirm callbacks');
    await cbCall(ch, 'waitForConfirms');
    assert.equal(acked, 50);
    assert.equal(nacked, 0);
    assert.equal((await cbCall(ch, 'checkQueue', q)).messageCount, 50);
  });
});

test('callback: mandatory publish to an unroutable key is returned with 312 NO_ROUTE', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn, true);
    const ex = h.uid('cb-mandatory');
    await cbCall(ch, 'assertExchange', ex, 'direct', { autoDelete: false });
    const returnedBeforeAck = await h.withTimeout(
      new Promise((resolve, reject) => {
        ch.publish(ex, 'nowhere', Buffer.from('bounce'), { mandatory: true }, (err) =>
          err ? reject(err) : resolve(ch.returned.slice()),
        );
      }),
      h.WAIT_MS,
      'the confirm',
    );
    assert.equal(returnedBeforeAck.length, 1);
    assert.deepEqual(returnedBeforeAck[0].fields, {
      replyCode: 312,
      replyText: 'NO_ROUTE',
      exchange: ex,
      routingKey: 'nowhere',
    });
    assert.equal(returnedBeforeAck[0].content.toString(), 'bounce');
    await cbCall(ch, 'deleteExchange', ex, {});
  });
});

test('callback: a 3 MiB body and typed headers arrive intact', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn, true);
    const q = (await cbCall(ch, 'assertQueue', h.uid('cb-large'), { exclusive: true })).queue;
    const body = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const headers = {
      s: 'str',
      b: { '!': 'int8', value: -5 },
      u16: { '!': 'uint16', value: 65000 },
      i32: { '!': 'int32', value: -70000 },
      i64: { '!': 'int64', value: 2 ** 40 },
      f: { '!': 'float', value: 0.25 },
      d: 1.125,
      t: true,
      ts: { '!': 'timestamp', value: 1234567890 },
      dec: { '!': 'decimal', value: { places: 3, digits: 1500 } },
      tab: { x: [1, 'y', null] },
      bytes: Buffer.from([9, 8, 7]),
      nothing: null,
    };
    ch.sendToQueue(q, body, { headers, messageId: 'big', appId: 'cb', userId: 'guest', priority: 3 });
    await cbCall(ch, 'waitForConfirms');
    const inbox = new h.Inbox();
    await cbCall(ch, 'consume', q, inbox.handler, { noAck: true });
    const m = await inbox.next();
    assert.ok(m.content.equals(body), 'body byte-exact');
    assert.deepStrictEqual(m.properties.headers, {
      s: 'str',
      b: -5,
      u16: 65000,
      i32: -70000,
      i64: 2 ** 40,
      f: 0.25,
      d: 1.125,
      t: true,
      ts: { '!': 'timestamp', value: 1234567890 },
      dec: { '!': 'decimal', value: { places: 3, digits: 1500 } },
      tab: { x: [1, 'y', null] },
      bytes: Buffer.from([9, 8, 7]),
      nothing: null,
    });
    assert.equal(m.properties.messageId, 'big');
    assert.equal(m.properties.appId, 'cb');
    assert.equal(m.properties.userId, 'guest');
    assert.equal(m.properties.priority, 3);
  });
});

test('callback: passive declare of a missing queue fails 404 and closes the channel only', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn);
    const q = h.uid('cb-missing');
    const closed = h.once(ch, 'close', 'the channel to close');
    await assert.rejects(cbCall(ch, 'checkQueue', q), (err) => {
      const info = h.closeInfo(err);
      assert.equal(info.code, 404);
      assert.equal(info.text, `NOT_FOUND - no queue '${q}' in vhost '/'`);
      return true;
    });
    await closed;
    assert.equal(ch.errors.length, 1);
    assert.equal(ch.errors[0].code, 404);
    // the connection is fine
    const ch2 = await channel(conn);
    await cbCall(ch2, 'assertQueue', '', { exclusive: true });
  });
});

test('callback: redeclare with a different durable flag and publish to a missing exchange', async () => {
  await withConn(async (conn) => {
    const ch = await channel(conn);
    const q = h.uid('cb-ineq');
    await cbCall(ch, 'assertQueue', q, { durable: false, autoDelete: false });
    await assert.rejects(cbCall(ch, 'assertQueue', q, { durable: true, autoDelete: false }), (err) => {
      const info = h.closeInfo(err);
      assert.equal(info.code, 406);
      assert.equal(
        info.text,
        `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
      );
      return true;
    });
    const ch2 = await channel(conn);
    const ex = h.uid('cb-no-ex');
    const closed = h.once(ch2, 'close', 'the channel to close');
    ch2.publish(ex, '', Buffer.from('x'));
    await closed;
    assert.equal(ch2.errors.length, 1);
    const info = h.closeInfo(ch2.errors[0]);
    assert.equal(info.code, 404);
    assert.equal(info.text, `NOT_FOUND - no exchange '${ex}' in vhost '/'`);
    const ch3 = await channel(conn);
    await cbCall(ch3, 'deleteQueue', q, {});
  });
});
