// Scenario 1 (promise API): connecting with credentials and an explicit vhost; a missing
// vhost and bad credentials fail the way RabbitMQ fails them.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

const { amqp } = h;

function urlWith({ user = 'guest', pass = 'guest', vhost = '%2f' } = {}) {
  return `amqp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@${h.HOST}:${h.PORT}/${vhost}`;
}

test('connect with the harness URL (vhost %2f) and use a channel', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn);
    const ok = await ch.assertQueue('', { exclusive: true });
    assert.match(ok.queue, /^amq\.gen-/);
    assert.equal(ok.messageCount, 0);
    assert.equal(ok.consumerCount, 0);
    await ch.close();
    assert.deepEqual(conn.errors, []);
  } finally {
    await h.closeQuietly(conn);
  }
});

test('connect with an object giving vhost "/" explicitly, PLAIN and AMQPLAIN credentials', async () => {
  const base = { protocol: 'amqp', hostname: h.HOST, port: h.PORT, vhost: '/' };
  const cases = [
    [{ ...base, username: 'guest', password: 'guest' }, undefined],
    [base, { credentials: amqp.credentials.plain('guest', 'guest') }],
    [base, { credentials: amqp.credentials.amqplain('guest', 'guest') }],
  ];
  for (const [target, socketOptions] of cases) {
    const conn = await amqp.connect(target, socketOptions);
    try {
      const ch = await conn.createChannel();
      const q = h.uid('connect-obj');
      const ok = await ch.assertQueue(q, { exclusive: true });
      assert.equal(ok.queue, q);
      ch.sendToQueue(q, Buffer.from('hello'));
      const got = await h.waitFor(() => ch.get(q, { noAck: true }), 'the message back');
      assert.equal(got.content.toString(), 'hello');
    } finally {
      await h.closeQuietly(conn);
    }
  }
});

test('negotiated tuning and server capabilities', async () => {
  const conn = await h.connect();
  try {
    const c = conn.connection;
    // amqplib asks for frame_max 131072 and no channel_max; RabbitMQ offers 131072 / 2047 / 60s.
    assert.equal(c.frameMax, 131072);
    assert.equal(c.channelMax, 2047);
    assert.equal(c.heartbeat, 60);
    const props = c.serverProperties;
    assert.equal(typeof props.product, 'string');
    assert.equal(typeof props.version, 'string');
    const caps = props.capabilities;
    for (const cap of [
      'publisher_confirms',
      'exchange_exchange_bindings',
      'basic.nack',
      'consumer_cancel_notify',
      'connection.blocked',
      'authentication_failure_close',
      'per_consumer_qos',
    ]) {
      assert.equal(caps[cap], true, `capability ${cap}`);
    }
  } finally {
    await h.closeQuietly(conn);
  }
});

test('heartbeat and channel_max asked in the URL are negotiated down', async () => {
  const conn = await h.connect(`${h.URL}?heartbeat=5&channelMax=10&frameMax=8192`);
  try {
    assert.equal(conn.connection.heartbeat, 5);
    assert.equal(conn.connection.channelMax, 10);
    assert.equal(conn.connection.frameMax, 8192);
    const ch = await conn.createChannel();
    await ch.assertQueue('', { exclusive: true });
  } finally {
    await h.closeQuietly(conn);
  }
});

test('a vhost that does not exist: connection.close 530 NOT_ALLOWED in answer to connection.open', async () => {
  const vhost = h.uid('no-such-vhost');
  const { error, frames, defs } = await h.withHandshakeFrames(() => amqp.connect(urlWith({ vhost })));
  assert.ok(error, 'connecting to a missing vhost succeeded');
  assert.equal(error.message, 'Expected ConnectionOpenOk; got <ConnectionClose channel:0>');
  const close = frames.find((f) => f.id === defs.ConnectionClose);
  assert.ok(close, 'no connection.close received');
  assert.equal(close.fields.replyCode, 530);
  assert.equal(close.fields.replyText, `NOT_ALLOWED - vhost ${vhost} not found`);
  assert.equal(close.fields.classId, 10);
  assert.equal(close.fields.methodId, 40);
});

test('wrong password and unknown user: 403 ACCESS_REFUSED during the handshake', async () => {
  const cases = [
    { url: urlWith({ pass: 'not-the-password' }), mech: 'PLAIN' },
    { url: urlWith({ user: h.uid('nobody'), pass: 'x' }), mech: 'PLAIN' },
  ];
  for (const { url, mech } of cases) {
    await assert.rejects(amqp.connect(url), (err) => {
      assert.equal(
        err.message,
        'Handshake terminated by server: 403 (ACCESS-REFUSED) with message ' +
          `"ACCESS_REFUSED - Login was refused using authentication mechanism ${mech}. ` +
          'For details see the broker logfile."',
      );
      return true;
    });
  }
  const base = { protocol: 'amqp', hostname: h.HOST, port: h.PORT, vhost: '/' };
  await assert.rejects(amqp.connect(base, { credentials: amqp.credentials.amqplain('guest', 'wrong') }), (err) => {
    assert.equal(
      err.message,
      'Handshake terminated by server: 403 (ACCESS-REFUSED) with message ' +
        '"ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN. ' +
        'For details see the broker logfile."',
    );
    return true;
  });
});

test('client close: close event without error, further use fails', async () => {
  const conn = await h.connect();
  const ch = await conn.createChannel();
  const closed = h.once(conn, 'close', 'connection close event');
  await conn.close();
  const arg = await closed;
  assert.equal(arg, undefined);
  assert.deepEqual(conn.errors, []);
  await assert.rejects(async () => ch.assertQueue(h.uid('after-close')), /closed/i);
});
