// Scenario 10 (promise API): errors, with the exact reply codes and texts RabbitMQ uses.
// Channel errors close only the channel; connection errors close the connection.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

/** Run `fn(ch, conn)` on a fresh connection; the connection must survive it. */
async function onChannel(fn) {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn);
    await fn(ch, conn);
    // the connection is still usable after a channel error
    const ch2 = await conn.createChannel();
    const ok = await ch2.assertQueue('', { exclusive: true });
    assert.match(ok.queue, /^amq\.gen-/);
    assert.deepEqual(conn.errors, []);
  } finally {
    await h.closeQuietly(conn);
  }
}

/** Wait for the channel to be closed by the broker; return the close as {code, text, ...}. */
async function channelClosed(ch) {
  await h.waitFor(() => ch.closed, 'the channel to close');
  assert.equal(ch.errors.length, 1, 'one channel error');
  return h.closeInfo(ch.errors[0]);
}

/** Wait for the broker to close the connection (or only the channel); assert the close. */
async function connectionClosed(conn, ch, code, message) {
  await h.waitFor(() => conn.errors.length > 0 || ch.errors.length > 0, 'a connection or channel error');
  // a channel close that comes first is reported as the wrong kind of error, not a timeout
  if (conn.errors.length === 0) await h.delay(h.QUIET_MS);
  assert.deepEqual(
    conn.errors.map((e) => [e.code, e.message]),
    [[code, message]],
    `connection errors; channel errors were: ${JSON.stringify(ch.errors.map((e) => e.message))}`,
  );
}

test('passive declare of a missing queue: 404 NOT_FOUND', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('missing');
    const info = await h.rejectsWithClose(ch.checkQueue(q), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`);
    assert.equal(info.classId, 50);
    assert.equal(info.methodId, 10);
    assert.deepEqual(await channelClosed(ch), info);
  });
});

test('passive declare of a missing exchange: 404 NOT_FOUND', async () => {
  await onChannel(async (ch) => {
    const ex = h.uid('missing-ex');
    const info = await h.rejectsWithClose(ch.checkExchange(ex), 404, `NOT_FOUND - no exchange '${ex}' in vhost '/'`);
    assert.equal(info.classId, 40);
    assert.equal(info.methodId, 10);
  });
});

test('redeclare a queue with a different durable flag: 406 PRECONDITION_FAILED', async () => {
  const q = h.uid('inequivalent');
  await onChannel(async (ch, conn) => {
    await ch.assertQueue(q, { durable: false, autoDelete: false });
    try {
      await h.rejectsWithClose(
        ch.assertQueue(q, { durable: true, autoDelete: false }),
        406,
        `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
      );
    } finally {
      const cleanup = await conn.createChannel();
      await cleanup.deleteQueue(q);
      await cleanup.close();
    }
  });
});

test('redeclare an exclusive queue with a different durable flag: accepted (not compared)', async () => {
  await onChannel(async (ch) => {
    for (const [first, second] of [
      [false, true],
      [true, false],
    ]) {
      const q = h.uid(`exclusive-durable-${first}`);
      await ch.assertQueue(q, { exclusive: true, durable: first });
      assert.deepEqual(await ch.assertQueue(q, { exclusive: true, durable: second }), {
        queue: q,
        messageCount: 0,
        consumerCount: 0,
      });
    }
    // auto_delete still is compared for exclusive queues
    const q = h.uid('exclusive-auto-delete');
    await ch.assertQueue(q, { exclusive: true, autoDelete: false });
    await h.rejectsWithClose(
      ch.assertQueue(q, { exclusive: true, autoDelete: true }),
      406,
      `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
    );
  });
});

test('redeclare an exchange with a different type: 406 PRECONDITION_FAILED', async () => {
  const ex = h.uid('inequivalent-ex');
  await onChannel(async (ch, conn) => {
    await ch.assertExchange(ex, 'direct', { autoDelete: false });
    try {
      await h.rejectsWithClose(
        ch.assertExchange(ex, 'fanout', { autoDelete: false }),
        406,
        `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${ex}' in vhost '/': received 'fanout' but current is 'direct'`,
      );
    } finally {
      const cleanup = await conn.createChannel();
      await cleanup.deleteExchange(ex);
      await cleanup.close();
    }
  });
});

test('publish to a missing exchange: channel closed 404 NOT_FOUND', async () => {
  await onChannel(async (ch) => {
    const ex = h.uid('no-exchange');
    ch.publish(ex, 'k', Buffer.from('lost'));
    const info = await channelClosed(ch);
    assert.deepEqual(info, {
      code: 404,
      text: `NOT_FOUND - no exchange '${ex}' in vhost '/'`,
      classId: 60,
      methodId: 40,
    });
  });
});

test('publish to a missing exchange on a confirm channel: the publish fails, channel closed 404', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const ex = h.uid('no-exchange-confirm');
    const confirmed = new Promise((resolve) => {
      ch.publish(ex, 'k', Buffer.from('lost'), {}, (err) => resolve(err));
    });
    const err = await h.withTimeout(confirmed, h.WAIT_MS, 'the publish callback');
    assert.ok(err instanceof Error, 'publish callback got an error');
    const info = await channelClosed(ch);
    assert.equal(info.code, 404);
    assert.equal(info.text, `NOT_FOUND - no exchange '${ex}' in vhost '/'`);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('ack of an unknown delivery tag: 406 PRECONDITION_FAILED', async () => {
  await onChannel(async (ch) => {
    ch.ack({ fields: { deliveryTag: 42 } });
    const info = await channelClosed(ch);
    assert.deepEqual(info, {
      code: 406,
      text: 'PRECONDITION_FAILED - unknown delivery tag 42',
      classId: 60,
      methodId: 80,
    });
  });
});

test('ack of a delivery tag twice: 406 PRECONDITION_FAILED on the second', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('double-ack');
    await ch.assertQueue(q, { exclusive: true });
    ch.sendToQueue(q, Buffer.from('once'));
    const m = await h.waitFor(() => ch.get(q, { noAck: false }), 'the message');
    ch.ack(m);
    ch.ack(m);
    const info = await channelClosed(ch);
    assert.equal(info.code, 406);
    assert.equal(info.text, `PRECONDITION_FAILED - unknown delivery tag ${m.fields.deliveryTag}`);
  });
});

test('reject of an unknown delivery tag: 406 PRECONDITION_FAILED', async () => {
  await onChannel(async (ch) => {
    ch.reject({ fields: { deliveryTag: 7 } }, true);
    const info = await channelClosed(ch);
    assert.deepEqual(info, {
      code: 406,
      text: 'PRECONDITION_FAILED - unknown delivery tag 7',
      classId: 60,
      methodId: 90,
    });
  });
});

test('declare an exchange named amq.*: 403 ACCESS_REFUSED', async () => {
  await onChannel(async (ch) => {
    const info = await h.rejectsWithClose(
      ch.assertExchange('amq.foo', 'direct'),
      403,
      "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'",
    );
    assert.equal(info.classId, 40);
    assert.equal(info.methodId, 10);
  });
});

test('declare a queue named amq.*: 403 ACCESS_REFUSED', async () => {
  await onChannel(async (ch) => {
    await h.rejectsWithClose(
      ch.assertQueue('amq.my-queue'),
      403,
      "ACCESS_REFUSED - queue name 'amq.my-queue' contains reserved prefix 'amq.*'",
    );
  });
});

test('bind a queue to a missing exchange: 404 NOT_FOUND', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('bind-missing');
    const ex = h.uid('bind-missing-ex');
    await ch.assertQueue(q, { exclusive: true });
    await h.rejectsWithClose(ch.bindQueue(q, ex, 'k'), 404, `NOT_FOUND - no exchange '${ex}' in vhost '/'`);
  });
});

test('bind a missing queue: 404 NOT_FOUND', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('bind-missing-q');
    await h.rejectsWithClose(ch.bindQueue(q, 'amq.direct', 'k'), 404, `NOT_FOUND - no queue '${q}' in vhost '/'`);
  });
});

test('consume from a missing queue: 404 NOT_FOUND', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('consume-missing');
    await h.rejectsWithClose(
      ch.consume(q, () => {}),
      404,
      `NOT_FOUND - no queue '${q}' in vhost '/'`,
    );
  });
});

test("use of another connection's exclusive queue: 405 RESOURCE_LOCKED", async () => {
  const owner = await h.connect();
  try {
    const och = await owner.createChannel();
    const q = h.uid('exclusive');
    await och.assertQueue(q, { exclusive: true });
    await onChannel(async (ch) => {
      await h.rejectsWithClose(
        ch.consume(q, () => {}),
        405,
        `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'. ` +
          'It could be originally declared on another connection or the exclusive property value ' +
          'does not match that of the original declaration.',
      );
    });
  } finally {
    await h.closeQuietly(owner);
  }
});

test('delete a non-empty queue with ifEmpty: 406 PRECONDITION_FAILED', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('if-empty');
    await ch.assertQueue(q, { exclusive: true });
    ch.sendToQueue(q, Buffer.from('x'));
    await h.waitFor(async () => (await ch.checkQueue(q)).messageCount === 1, 'the message to be queued');
    await h.rejectsWithClose(
      ch.deleteQueue(q, { ifEmpty: true }),
      406,
      `PRECONDITION_FAILED - queue '${q}' in vhost '/' not empty`,
    );
  });
});

test('second consumer on a queue with an exclusive consumer: 403 ACCESS_REFUSED', async () => {
  await onChannel(async (ch, conn) => {
    const q = h.uid('exclusive-consumer');
    await ch.assertQueue(q, { exclusive: true });
    await ch.consume(q, () => {}, { exclusive: true });
    const other = await h.channel(conn);
    await h.rejectsWithClose(
      other.consume(q, () => {}),
      403,
      `ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`,
    );
  });
});

test('delete an exchange in use with ifUnused: 406 PRECONDITION_FAILED', async () => {
  const ex = h.uid('if-unused-ex');
  await onChannel(async (ch, conn) => {
    await ch.assertExchange(ex, 'direct', { autoDelete: false });
    const q = h.uid('if-unused-ex-q');
    await ch.assertQueue(q, { exclusive: true });
    await ch.bindQueue(q, ex, 'k');
    try {
      await h.rejectsWithClose(
        ch.deleteExchange(ex, { ifUnused: true }),
        406,
        `PRECONDITION_FAILED - exchange '${ex}' in vhost '/' in use`,
      );
    } finally {
      const cleanup = await conn.createChannel();
      await cleanup.deleteExchange(ex);
      await cleanup.close();
    }
  });
});

test('delete a queue in use with ifUnused: 406 PRECONDITION_FAILED', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('if-unused-q');
    await ch.assertQueue(q, { exclusive: true });
    await ch.consume(q, () => {});
    await h.rejectsWithClose(
      ch.deleteQueue(q, { ifUnused: true }),
      406,
      `PRECONDITION_FAILED - queue '${q}' in vhost '/' in use`,
    );
  });
});

test('user_id different from the authenticated user: 406 PRECONDITION_FAILED', async () => {
  await onChannel(async (ch) => {
    const q = h.uid('user-id');
    await ch.assertQueue(q, { exclusive: true });
    ch.sendToQueue(q, Buffer.from('spoof'), { userId: 'mallory' });
    const info = await channelClosed(ch);
    assert.deepEqual(info, {
      code: 406,
      text: "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'",
      classId: 60,
      methodId: 40,
    });
  });
});

// RabbitMQ 3.13 and 4.x answer an unknown exchange type with a channel error, 406
// PRECONDITION_FAILED; 3.12 and older (the Debian oracle) close the connection with 503
// COMMAND_INVALID. warren answers as current RabbitMQ does.
test('unknown exchange type: 406 on the channel (RabbitMQ >= 3.13), 503 on the connection (older)', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn);
    const ex = h.uid('bad-type');
    if (process.env.BROKER_KIND === 'warren') {
      const info = await h.rejectsWithClose(
        ch.assertExchange(ex, 'x-no-such-type'),
        406,
        "PRECONDITION_FAILED - unknown exchange type 'x-no-such-type'",
      );
      assert.equal(info.classId, 40);
      assert.equal(info.methodId, 10);
      return;
    }
    await assert.rejects(ch.assertExchange(ex, 'x-no-such-type'));
    await connectionClosed(
      conn,
      ch,
      503,
      `Connection closed: 503 (COMMAND-INVALID) with message "COMMAND_INVALID - unknown exchange type 'x-no-such-type'"`,
    );
  } finally {
    await h.closeQuietly(conn);
  }
});

test('reuse of a consumer tag on a channel: connection closed 530 NOT_ALLOWED', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn);
    const q = h.uid('dup-tag');
    await ch.assertQueue(q, { exclusive: true });
    await ch.consume(q, () => {}, { consumerTag: 'my-tag' });
    await assert.rejects(ch.consume(q, () => {}, { consumerTag: 'my-tag' }));
    await connectionClosed(
      conn,
      ch,
      530,
      `Connection closed: 530 (NOT-ALLOWED) with message "NOT_ALLOWED - attempt to reuse consumer tag 'my-tag'"`,
    );
  } finally {
    await h.closeQuietly(conn);
  }
});
