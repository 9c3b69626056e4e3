// Scenario 8 (promise API): header values of every field type amqplib can encode, and the
// standard basic properties, come back as the same values.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../helpers');

// What is sent, and what amqplib decodes it to. amqplib decodes numbers to JS numbers (no
// width), timestamps and decimals to {'!': type, value}, byte arrays to Buffers.
const SENT = {
  str: 'hello',
  strEmpty: '',
  strUnicode: 'zürich ✓ 日本語',
  int8Min: { '!': 'int8', value: -128 },
  int8Max: 127,
  uint8Max: { '!': 'uint8', value: 255 },
  int16Min: { '!': 'int16', value: -32768 },
  int16Max: 32767,
  uint16Max: { '!': 'uint16', value: 65535 },
  int32Min: { '!': 'int32', value: -2147483648 },
  int32Max: 2147483647,
  uint32Max: { '!': 'uint32', value: 4294967295 },
  int64Min: { '!': 'int64', value: -9007199254740991 },
  int64Max: { '!': 'int64', value: 9007199254740991 },
  int64Implicit: 2 ** 40,
  zero: 0,
  negative: -1,
  float: { '!': 'float', value: 1.5 },
  floatLossy: { '!': 'float', value: 0.1 },
  double: 3.141592653589793,
  doubleTiny: -2.5e-300,
  doubleExplicit: { '!': 'double', value: 2 },
  boolTrue: true,
  boolFalse: false,
  timestamp: { '!': 'timestamp', value: 1700000000 },
  decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
  decimalZero: { '!': 'decimal', value: { places: 0, digits: 0 } },
  table: { a: 1, b: 'two', nested: { deep: { deeper: 'yes' }, list: [1, 'x', null] }, empty: {} },
  emptyTable: {},
  array: [1, 'two', true, false, null, 3.5, { k: 'v' }, [1, [2, []]], Buffer.from('raw')],
  emptyArray: [],
  typedArray: [{ '!': 'uint16', value: 65535 }, { '!': 'timestamp', value: 42 }, { '!': 'decimal', value: { places: 1, digits: 5 } }],
  bytes: Buffer.from([0, 1, 2, 127, 128, 255]),
  emptyBytes: Buffer.alloc(0),
  void: null,
  'key with spaces and ünïcode': 'ok',
};

const EXPECTED = {
  str: 'hello',
  strEmpty: '',
  strUnicode: 'zürich ✓ 日本語',
  int8Min: -128,
  int8Max: 127,
  uint8Max: 255,
  int16Min: -32768,
  int16Max: 32767,
  uint16Max: 65535,
  int32Min: -2147483648,
  int32Max: 2147483647,
  uint32Max: 4294967295,
  int64Min: -9007199254740991,
  int64Max: 9007199254740991,
  int64Implicit: 2 ** 40,
  zero: 0,
  negative: -1,
  float: 1.5,
  floatLossy: Math.fround(0.1),
  double: 3.141592653589793,
  doubleTiny: -2.5e-300,
  doubleExplicit: 2,
  boolTrue: true,
  boolFalse: false,
  timestamp: { '!': 'timestamp', value: 1700000000 },
  decimal: { '!': 'decimal', value: { places: 2, digits: 12345 } },
  decimalZero: { '!': 'decimal', value: { places: 0, digits: 0 } },
  table: { a: 1, b: 'two', nested: { deep: { deeper: 'yes' }, list: [1, 'x', null] }, empty: {} },
  emptyTable: {},
  array: [1, 'two', true, false, null, 3.5, { k: 'v' }, [1, [2, []]], Buffer.from('raw')],
  emptyArray: [],
  typedArray: [65535, { '!': 'timestamp', value: 42 }, { '!': 'decimal', value: { places: 1, digits: 5 } }],
  bytes: Buffer.from([0, 1, 2, 127, 128, 255]),
  emptyBytes: Buffer.alloc(0),
  void: null,
  'key with spaces and ünïcode': 'ok',
};

const PROPS = {
  contentType: 'application/json',
  contentEncoding: 'gzip',
  deliveryMode: 2,
  priority: 7,
  correlationId: 'corr-42',
  replyTo: 'amq.rabbitmq.reply-to-like-but-just-a-string',
  expiration: '60000',
  messageId: 'msg-0001',
  timestamp: 1700000123,
  type: 'order.created',
  userId: 'guest',
  appId: 'node-interop',
};

/** Publish `body` with `options` to a fresh queue; receive it by consume and by get. */
async function sendAndReceive(options) {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const q = h.uid('props');
    await ch.assertQueue(q, { exclusive: true });
    ch.sendToQueue(q, Buffer.from('first'), options);
    ch.sendToQueue(q, Buffer.from('second'), options);
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
    const viaGet = await ch.get(q, { noAck: true });
    const inbox = new h.Inbox();
    await ch.consume(q, inbox.handler, { noAck: true });
    const viaConsume = await inbox.next();
    assert.deepEqual(ch.errors, []);
    assert.equal(viaGet.content.toString(), 'first');
    assert.equal(viaConsume.content.toString(), 'second');
    return [viaGet, viaConsume];
  } finally {
    await h.closeQuietly(conn);
  }
}

test('header values of every field type come back unchanged (consume and get)', async () => {
  for (const m of await sendAndReceive({ headers: SENT })) {
    assert.deepEqual(Object.keys(m.properties.headers).sort(), Object.keys(EXPECTED).sort());
    for (const key of Object.keys(EXPECTED)) {
      assert.deepStrictEqual(m.properties.headers[key], EXPECTED[key], `header ${key}`);
    }
  }
});

test('every standard property comes back unchanged (consume and get)', async () => {
  for (const m of await sendAndReceive({ ...PROPS, headers: { h: 1 } })) {
    assert.deepStrictEqual(m.properties, { ...PROPS, headers: { h: 1 }, clusterId: undefined });
  }
});

test('a message with no properties set: all absent, persistent flag clear', async () => {
  for (const m of await sendAndReceive({})) {
    assert.deepStrictEqual(m.properties, {
      contentType: undefined,
      contentEncoding: undefined,
      headers: {},
      deliveryMode: undefined,
      priority: undefined,
      correlationId: undefined,
      replyTo: undefined,
      expiration: undefined,
      messageId: undefined,
      timestamp: undefined,
      type: undefined,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
    });
  }
});

test('boundary property values: priority 0 and 255, delivery mode 1, empty strings, timestamp 0', async () => {
  for (const [options, expect] of [
    [
      { priority: 0, deliveryMode: 1, contentType: '', messageId: '', timestamp: 0, type: '' },
      { priority: 0, deliveryMode: 1, contentType: '', messageId: '', timestamp: 0, type: '' },
    ],
    [
      { priority: 255, persistent: true, correlationId: 'x'.repeat(255), timestamp: 2 ** 32 + 5 },
      { priority: 255, deliveryMode: 2, correlationId: 'x'.repeat(255), timestamp: 2 ** 32 + 5 },
    ],
  ]) {
    for (const m of await sendAndReceive(options)) {
      for (const [k, v] of Object.entries(expect)) assert.deepStrictEqual(m.properties[k], v, `property ${k}`);
    }
  }
});

test('sender-selected distribution: CC routes and stays in the headers, BCC routes and is removed', async () => {
  const conn = await h.connect();
  try {
    const ch = await h.channel(conn, true);
    const ex = h.uid('ccbcc');
    await ch.assertExchange(ex, 'direct', { autoDelete: true });
    const qs = {};
    for (const key of ['main', 'cc', 'bcc', 'other']) {
      qs[key] = h.uid(`ccbcc-${key}`);
      await ch.assertQueue(qs[key], { exclusive: true });
      await ch.bindQueue(qs[key], ex, key);
    }
    ch.publish(ex, 'main', Buffer.from('sel'), { CC: 'cc', BCC: ['bcc'], headers: { keep: 'me' } });
    await h.withTimeout(ch.waitForConfirms(), h.WAIT_MS, 'confirms');
    for (const key of ['main', 'cc', 'bcc']) {
      const msgs = await h.drain(ch, qs[key]);
      assert.equal(msgs.length, 1, `queue bound to ${key}`);
      assert.equal(msgs[0].content.toString(), 'sel');
      assert.equal(msgs[0].fields.routingKey, 'main');
      assert.deepStrictEqual(msgs[0].properties.headers, { keep: 'me', CC: ['cc'] });
    }
    assert.deepEqual(await h.drain(ch, qs.other), []);
  } finally {
    await h.closeQuietly(conn);
  }
});
