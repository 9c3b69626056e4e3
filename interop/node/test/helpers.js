// Shared helpers for the amqplib interop tests. Everything waits with a deadline; nothing
// sleeps in the hope that something has happened.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const amqp = require('amqplib');
const amqpcb = require('amqplib/callback_api');

const URL = process.env.AMQP_URL;
if (!URL) {
  throw new Error('AMQP_URL is not set (run through interop/run.sh, or export it yourself)');
}
const parsed = new globalThis.URL(URL);
const HOST = process.env.AMQP_HOST || parsed.hostname;
const PORT = Number(process.env.AMQP_PORT || parsed.port || 5672);
const KIND = process.env.BROKER_KIND || 'unknown';

// How long a test waits for something the broker should do promptly.
const WAIT_MS = 10000;
// How long a test watches for something that must NOT happen (a delivery beyond the
// prefetch window, a basic.return for a routed message, ...).
const QUIET_MS = 300;

let counter = 0;
/** A name no other test (or earlier run against the same broker) uses. */
function uid(prefix) {
  counter += 1;
  return `node-${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve or reject with `promise`, or reject after `ms` milliseconds. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Poll `pred` until it returns something truthy (returned), or fail after `ms`. */
async function waitFor(pred, what, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(10);
  }
}

/** First emission of `event` on `emitter`, with a deadline. */
function once(emitter, event, what, ms = WAIT_MS) {
  return withTimeout(
    new Promise((resolve) => emitter.once(event, (...args) => resolve(args.length > 1 ? args : args[0]))),
    ms,
    what || `'${event}' event`,
  );
}

/** Promise API connection; errors are recorded instead of being thrown as 'error' events. */
async function connect(url = URL, options) {
  const conn = await amqp.connect(url, options);
  conn.errors = [];
  conn.on('error', (err) => conn.errors.push(err));
  return conn;
}

/**
 * Connect, retrying refused connections until `ms` has passed: for just after a restart,
 * when the broker may not be listening yet.
 */
async function connectRetry(url = URL, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await connect(url);
    } catch (err) {
      if (Date.now() > deadline || !/ECONNREFUSED|ECONNRESET|Socket closed abruptly/.test(err.message)) throw err;
      await delay(100);
    }
  }
}

/** Close a connection, tolerating one the broker already closed. */
async function closeQuietly(conn) {
  if (!conn) return;
  try {
    await conn.close();
  } catch (_) {
    // already closed
  }
}

/** Open a channel and keep what it reports ('error', 'return', 'close') for assertions. */
async function channel(conn, confirm = false) {
  const ch = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
  trackChannel(ch);
  return ch;
}

function trackChannel(ch) {
  ch.errors = [];
  ch.returned = [];
  ch.closed = false;
  ch.on('error', (err) => ch.errors.push(err));
  ch.on('return', (msg) => ch.returned.push(msg));
  ch.on('close', () => {
    ch.closed = true;
  });
  return ch;
}

/**
 * Collects deliveries of a consumer; `next()` returns them in order, waiting with a deadline.
 */
class Inbox {
  constructor() {
    this.messages = [];
    this.taken = 0;
    this.cancelled = false;
    this.waiters = [];
  }

  get handler() {
    return (msg) => {
      if (msg === null) this.cancelled = true;
      else this.messages.push(msg);
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    };
  }

  async waitCount(n, ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    while (this.messages.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out after ${ms} ms: ${this.messages.length} of ${n} deliveries arrived`);
      }
      await withTimeout(new Promise((resolve) => this.waiters.push(resolve)), left, 'a delivery').catch(() => {});
    }
    return this.messages.slice(0, n);
  }

  async next(ms = WAIT_MS) {
    await this.waitCount(this.taken + 1, ms);
    const m = this.messages[this.taken];
    this.taken += 1;
    return m;
  }
}

/** Every message currently in `queue`, taken with basic.get (auto-ack), in order. */
async function drain(ch, queue) {
  const out = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

/** Bodies (as strings) of every message currently in `queue`. */
async function drainBodies(ch, queue) {
  return (await drain(ch, queue)).map((m) => m.content.toString());
}

/**
 * The reply code and text of a broker close as amqplib reports it: the error has `.code`,
 * and its message ends in `with message "TEXT"`.
 */
function closeInfo(err) {
  assert.ok(err instanceof Error, `expected an Error, got ${err}`);
  const m = /with message "([\s\S]*)"$/.exec(err.message);
  assert.ok(m, `not a broker close: ${err.message}`);
  return { code: err.code, text: m[1], classId: err.classId, methodId: err.methodId };
}

/** Assert that `promise` rejects with a broker close of this code and text. */
async function rejectsWithClose(promise, code, text, what) {
  let err;
  try {
    await withTimeout(promise, WAIT_MS, what || 'the operation to fail');
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what || 'operation'} succeeded, expected ${code} ${text}`);
  const info = closeInfo(err);
  assert.equal(info.code, code, `reply code of: ${err.message}`);
  assert.equal(info.text, text);
  return info;
}

/**
 * Run the harness's restart command (same port, same data). Asynchronous, so that the
 * event loop keeps serving open connections while the broker shuts down.
 */
function restartBroker() {
  const cmd = process.env.BROKER_RESTART;
  if (!cmd) return Promise.reject(new Error('BROKER_RESTART is not set'));
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 180000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`broker restart failed (${signal || code}): ${out}`));
    });
  });
}

/**
 * Frames amqplib reads on channel 0 during connection handshakes, while `fn` runs.
 *
 * amqplib reports a connection.close received in answer to connection.open only as
 * "Expected ConnectionOpenOk; got <ConnectionClose channel:0>", without the reply code or
 * text. To assert those, this wraps the step function of amqplib's own Connection class and
 * keeps the frames it decodes (nothing is parsed here).
 */
async function withHandshakeFrames(fn) {
  const path = require('node:path');
  const dir = path.dirname(require.resolve('amqplib'));
  const { Connection } = require(path.join(dir, 'lib', 'connection.js'));
  const defs = require(path.join(dir, 'lib', 'defs.js'));
  const frames = [];
  const original = Connection.prototype.step;
  Connection.prototype.step = function step(cb) {
    return original.call(this, (err, frame) => {
      if (frame) frames.push(frame);
      cb(err, frame);
    });
  };
  try {
    const result = await fn();
    return { result, frames, defs };
  } catch (err) {
    return { error: err, frames, defs };
  } finally {
    Connection.prototype.step = original;
  }
}

// ---- callback API: small promise wrappers so tests can await; the calls themselves go
// through amqplib/callback_api.

function cbConnect(url = URL, options) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const done = (err, conn) => {
        if (err) return reject(err);
        conn.errors = [];
        conn.on('error', (e) => conn.errors.push(e));
        resolve(conn);
      };
      if (options === undefined) amqpcb.connect(url, done);
      else amqpcb.connect(url, options, done);
    }),
    WAIT_MS,
    'callback connect',
  );
}

/** Call `obj.method(...args, cb)` and resolve with the callback's result. */
function cbCall(obj, method, ...args) {
  return withTimeout(
    new Promise((resolve, reject) => {
      obj[method](...args, (err, result) => (err ? reject(err) : resolve(result)));
    }),
    WAIT_MS,
    `callback ${method}`,
  );
}

module.exports = {
  amqp,
  amqpcb,
  URL,
  HOST,
  PORT,
  KIND,
  WAIT_MS,
  QUIET_MS,
  uid,
  delay,
  withTimeout,
  waitFor,
  once,
  connect,
  connectRetry,
  closeQuietly,
  channel,
  trackChannel,
  Inbox,
  drain,
  drainBodies,
  closeInfo,
  rejectsWithClose,
  restartBroker,
  withHandshakeFrames,
  cbConnect,
  cbCall,
};
