// warren's management page: plain DOM code, no framework, no build step.
//
// Every value that comes from the broker enters the page as text (text nodes, textContent,
// input values), never as HTML: queue names and payloads may contain markup, and nothing here
// ever parses them. The page keeps the user's credentials in sessionStorage (gone when the
// tab closes) and sends them as basic authentication on each call to the API; a 401 from
// /api/whoami brings the login form back.
'use strict';

const REFRESH_MS = 5000;
const PAGE_SIZE = 100;
const AUTH_KEY = 'warren-auth';

let auth = sessionStorage.getItem(AUTH_KEY);
let timer = null;
let current = 'overview';

// ---- DOM and formatting helpers ----

const $ = (id) => document.getElementById(id);

// el('td', {className: 'num'}, 'text', child): strings become text nodes; props are set as
// properties (textContent, value, hidden...), on* as listeners. Nothing is parsed as HTML.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const c of children.flat()) if (c != null) e.append(c);
  return e;
}

const lookup = (obj, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
const nf = new Intl.NumberFormat('en-US');
const count = (v) => nf.format(v || 0);
const rate = (v) => (v || 0).toFixed(1) + '/s';
const text = (v) => (v == null ? '' : String(v));
const yesNo = (v) => (v ? 'yes' : 'no');
const json = (v) => JSON.stringify(v == null ? {} : v);
const exchangeName = (n) => (n === '' ? '(AMQP default)' : n);
const seg = encodeURIComponent;

function byteRate(v) {
  const units = ['B', 'kB', 'MB', 'GB'];
  let n = v || 0;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + ' ' + units[i] + '/s';
}

function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

// A status line under an action: text, and whether it reports a failure.
function say(node, message, failed) {
  node.textContent = message;
  node.className = failed ? 'status error' : 'status ok';
}

// ---- the API ----

class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

function basic(user, pass) {
  const bytes = new TextEncoder().encode(user + ':' + pass);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

// Calls /api/<path>; resolves to the parsed JSON body (or null), rejects with an ApiError
// carrying the `reason` of RabbitMQ's error body. An answer that arrives after a logout (or
// a login as someone else) is dropped: status -1, which nothing shows.
async function api(method, path, body, credentials) {
  const sent = credentials || auth;
  const headers = { Authorization: sent, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch('api/' + path, init);
  } catch (e) {
    throw new ApiError(0, 'Cannot reach the broker: ' + e.message);
  }
  const raw = await r.text();
  if (!credentials && auth !== sent) throw new ApiError(-1, 'logged out');
  let data = null;
  try { data = raw ? JSON.parse(raw) : null; } catch (_) { data = null; }
  if (!r.ok) {
    const reason = (data && (data.reason || data.error)) || r.status + ' ' + r.statusText;
    throw new ApiError(r.status, String(reason));
  }
  return data;
}

// A failed call: a 401 that /api/whoami confirms means the login is gone (password changed,
// user deleted) and brings the form back; anything else is shown where the action was.
async function failed(err, node) {
  if (err.status === -1) return;
  if (err.status === 401) {
    try {
      await api('GET', 'whoami');
    } catch (e) {
      if (e.status === 401) { logout(e.message); return; }
    }
  }
  say(node, err.message, true);
  node.hidden = false;
}

// ---- login ----

function showLogin(reason) {
  $('app').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('updated').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = reason || '';
  $('login-pass').value = '';
  $('login-user').focus();
}

function logout(reason) {
  auth = null;
  sessionStorage.removeItem(AUTH_KEY);
  clearInterval(timer);
  timer = null;
  for (const t of Object.values(TABLES)) {
    t.selected = null;
    t.detail.hidden = true;
    t.detail.replaceChildren();
    t.body.replaceChildren();
  }
  showLogin(reason);
}

function start(me) {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = me.name;
  showTab();
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const credentials = basic($('login-user').value, $('login-pass').value);
  try {
    const me = await api('GET', 'whoami', undefined, credentials);
    auth = credentials;
    sessionStorage.setItem(AUTH_KEY, credentials);
    start(me);
  } catch (e) {
    $('login-error').textContent = e.message;
  }
});
$('logout').addEventListener('click', () => logout());

// ---- refreshing ----

let busy = false;
let again = false;

// Reloads what is on screen. One load at a time; a request during a load runs after it.
async function refresh() {
  if (!auth) return;
  if (busy) { again = true; return; }
  busy = true;
  try {
    if (current === 'overview') await loadOverview();
    else await loadTable(TABLES[current]);
    $('error').hidden = true;
    $('updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    await failed(e, $('error'));
  } finally {
    busy = false;
  }
  if (again) { again = false; refresh(); }
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });

function showTab() {
  const name = location.hash.slice(1);
  current = name in TABLES ? name : 'overview';
  for (const a of document.querySelectorAll('#tabs a')) {
    a.classList.toggle('active', a.dataset.tab === current);
  }
  for (const s of document.querySelectorAll('section.tab')) s.hidden = s.id !== 'tab-' + current;
  refresh();
}
window.addEventListener('hashchange', () => { if (auth) showTab(); });

// ---- overview ----

// A definition list of [label, path in the object, format]; each value is marked with
// data-field=path so it can be found (by tests, too).
function fill(dl, obj, fields) {
  dl.replaceChildren(...fields.flatMap(([label, path, fmt]) => {
    const dd = el('dd', null, (fmt || text)(lookup(obj, path)));
    dd.dataset.field = path;
    return [el('dt', null, label), dd];
  }));
}

const RATES = [['Publish', 'publish'], ['Publisher confirm', 'confirm'],
  ['Deliver / get', 'deliver_get'], ['Redelivered', 'redeliver'], ['Consumer ack', 'ack']];

async function loadOverview() {
  const o = await api('GET', 'overview');
  $('version').textContent = 'RabbitMQ ' + text(o.rabbitmq_version);
  fill($('ov-broker'), o, [['RabbitMQ version', 'rabbitmq_version'],
    ['Server', 'erlang_full_version'], ['Node', 'node'], ['Cluster', 'cluster_name']]);
  fill($('ov-totals'), o, ['connections', 'channels', 'exchanges', 'queues', 'consumers']
    .map((k) => [k[0].toUpperCase() + k.slice(1), 'object_totals.' + k, count]));
  fill($('ov-queued'), o, [['Ready', 'queue_totals.messages_ready', count],
    ['Unacked', 'queue_totals.messages_unacknowledged', count],
    ['Total', 'queue_totals.messages', count]]);
  $('ov-rates').replaceChildren(...RATES.flatMap(([label, key]) => {
    const r = el('span', { className: 'rate' }, rate(lookup(o, `message_stats.${key}_details.rate`)));
    const n = el('span', { className: 'total' }, count(lookup(o, 'message_stats.' + key)));
    r.dataset.field = `message_stats.${key}_details.rate`;
    n.dataset.field = 'message_stats.' + key;
    return [el('dt', null, label), el('dd', null, r, ' ', n)];
  }));
}

// ---- tables ----

// A column: title, key (the API field, also what `sort` and `columns` name), how to show it.
const col = (title, key, show, num) => ({ title, key, show: show || ((i) => text(lookup(i, key))), num });
const numCol = (title, key) => col(title, key, (i) => count(lookup(i, key)), true);
const rateCol = (title, key, fmt) => col(title, `message_stats.${key}_details.rate`,
  (i) => (fmt || rate)(lookup(i, `message_stats.${key}_details.rate`)), true);

const TABLES = {
  queues: {
    path: 'queues',
    noun: 'queue',
    columns: [col('Virtual host', 'vhost'), col('Name', 'name'), col('Type', 'type'),
      col('State', 'state'), numCol('Ready', 'messages_ready'),
      numCol('Unacked', 'messages_unacknowledged'), numCol('Total', 'messages'),
      rateCol('Incoming', 'publish'), rateCol('Deliver / get', 'deliver_get'),
      rateCol('Ack', 'ack')],
    open: (t, item) => queueDetail(t, item),
  },
  exchanges: {
    path: 'exchanges',
    noun: 'exchange',
    columns: [col('Virtual host', 'vhost'), col('Name', 'name', (i) => exchangeName(i.name)),
      col('Type', 'type'),
      col('Features', 'durable', (i) => [i.durable && 'durable', i.auto_delete && 'auto-delete',
        i.internal && 'internal'].filter(Boolean).join(', ')),
      rateCol('Rate in', 'publish_in'), rateCol('Rate out', 'publish_out')],
    extra: ['auto_delete', 'internal'],
    open: (t, item) => exchangeDetail(t, item),
  },
  connections: {
    path: 'connections',
    noun: 'connection',
    columns: [col('Name', 'name'), col('User', 'user'), col('Virtual host', 'vhost'),
      col('Client', 'client_properties.product'), numCol('Channels', 'channels'),
      col('State', 'state'),
      col('From client', 'recv_oct_details.rate', (i) => byteRate(lookup(i, 'recv_oct_details.rate')), true),
      col('To client', 'send_oct_details.rate', (i) => byteRate(lookup(i, 'send_oct_details.rate')), true)],
  },
  channels: {
    path: 'channels',
    noun: 'channel',
    columns: [col('Channel', 'name'), col('User', 'user'), col('Virtual host', 'vhost'),
      col('Mode', 'confirm', (i) => [i.confirm && 'confirm', i.transactional && 'transactional']
        .filter(Boolean).join(', ')),
      numCol('Prefetch', 'prefetch_count'), numCol('Unacked', 'messages_unacknowledged'),
      numCol('Consumers', 'consumer_count'), col('State', 'state'),
      rateCol('Publish', 'publish'), rateCol('Deliver / get', 'deliver_get'),
      rateCol('Ack', 'ack')],
    extra: ['transactional'],
  },
};

function buildTable(name) {
  const t = TABLES[name];
  Object.assign(t, { name, page: 1, filter: '', sort: '', reverse: false, selected: null });
  const filter = el('input', { type: 'search', placeholder: 'Filter by name' });
  filter.setAttribute('aria-label', 'Filter ' + name + ' by name');
  filter.addEventListener('input', debounce(() => {
    t.filter = filter.value;
    t.page = 1;
    refresh();
  }, 300));
  t.prev = el('button', { type: 'button', textContent: '‹', title: 'Previous page',
    onclick: () => { t.page--; refresh(); } });
  t.next = el('button', { type: 'button', textContent: '›', title: 'Next page',
    onclick: () => { t.page++; refresh(); } });
  t.info = el('span', { className: 'info' });
  t.heads = t.columns.map((c) => el('th', { className: c.num ? 'num' : '' },
    el('button', { type: 'button', className: 'sort', textContent: c.title,
      onclick: () => {
        t.reverse = t.sort === c.key ? !t.reverse : false;
        t.sort = c.key;
        refresh();
      } })));
  t.body = el('tbody');
  t.detail = el('div', { id: name + '-detail', className: 'detail', hidden: true });
  $('tab-' + name).append(el('div', { className: 'toolbar' }, filter, t.prev, t.info, t.next),
    el('div', { className: 'scroll' }, el('table', { id: name + '-table' },
      el('thead', null, el('tr', null, t.heads)), t.body)),
    t.detail);
}

const same = (a, b) => a && b && a.vhost === b.vhost && a.name === b.name;

async function loadTable(t) {
  const q = new URLSearchParams({ page: t.page, page_size: PAGE_SIZE,
    columns: t.columns.map((c) => c.key).concat(t.extra || []).join(',') });
  if (t.filter) q.set('name', t.filter);
  if (t.sort) { q.set('sort', t.sort); q.set('sort_reverse', t.reverse); }
  let data;
  try {
    data = await api('GET', t.path + '?' + q);
  } catch (e) {
    // The page asked for no longer exists (objects went away): back to the first.
    if (e.status === 400 && t.page > 1) { t.page = 1; return loadTable(t); }
    throw e;
  }
  const rows = data.items.map((item) => {
    const cells = t.columns.map((c, i) => {
      const value = c.show(item);
      if (i === 1 && t.open) {
        return el('td', null, el('button', { type: 'button', className: 'link', textContent: value,
          onclick: () => openDetail(t, item) }));
      }
      return el('td', { className: c.num ? 'num' : '' }, value);
    });
    return el('tr', { className: same(item, t.selected) ? 'selected' : '' }, cells);
  });
  if (!rows.length) {
    rows.push(el('tr', null, el('td', { colSpan: t.columns.length, className: 'empty' },
      t.filter ? `No ${t.noun} matches the filter.` : `No ${t.noun}s.`)));
  }
  t.body.replaceChildren(...rows);
  const first = (data.page - 1) * data.page_size;
  t.info.textContent = (data.item_count ? `${count(first + 1)}–${count(first + data.item_count)}` : '0')
    + ` of ${count(data.filtered_count)}`
    + (data.filtered_count === data.total_count ? '' : ` (${count(data.total_count)} in all)`)
    + ` · page ${data.page} of ${data.page_count}`;
  t.page = data.page;
  t.prev.disabled = data.page <= 1;
  t.next.disabled = data.page >= data.page_count;
  t.columns.forEach((c, i) => {
    t.heads[i].dataset.sort = t.sort === c.key ? (t.reverse ? 'desc' : 'asc') : '';
  });
  if (t.selected && t.reload) await t.reload();
}

function openDetail(t, item) {
  t.selected = { vhost: item.vhost, name: item.name };
  t.reload = null;
  t.open(t, t.selected);
  t.detail.hidden = false;
  refresh();
  t.detail.scrollIntoView({ block: 'nearest' });
}

// ---- detail panels ----

// The frame of a detail panel: a heading, a close button, the object's fields (reloaded
// with the table) and the action boxes.
function panel(t, title, sel, path, fields, ...boxes) {
  const stats = el('dl', { className: 'stats' });
  const missing = el('p', { className: 'status error', hidden: true });
  const close = el('button', { type: 'button', textContent: 'Close', onclick: () => {
    t.selected = null;
    t.reload = null;
    t.detail.hidden = true;
    t.detail.replaceChildren();
    refresh();
  } });
  t.detail.replaceChildren(el('div', { className: 'detail-head' },
    el('h2', null, `${title} `, el('q', null, title === 'Exchange' ? exchangeName(sel.name) : sel.name),
      ` in virtual host ${sel.vhost}`), close), missing, stats,
    el('div', { className: 'boxes' }, ...boxes.filter(Boolean)));
  // Resolves to whether the object still exists.
  t.reload = async () => {
    try {
      fill(stats, await api('GET', path), fields);
      missing.hidden = true;
      return true;
    } catch (e) {
      if (e.status !== 404) throw e;
      missing.hidden = false;
      say(missing, `This ${t.noun} no longer exists.`, true);
      return false;
    }
  };
}

function box(title, ...children) {
  return el('section', { className: 'box' }, el('h3', null, title), ...children);
}

function field(label, input) {
  return el('label', null, label, ' ', input);
}

// A form whose submit runs `action` (which returns the success message), with a status line.
function form(id, submitLabel, fields, action) {
  const status = el('p', { id: id + '-status', className: 'status' });
  const f = el('form', { id }, ...fields, el('button', { type: 'submit', textContent: submitLabel }), status);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    say(status, 'Working…', false);
    try {
      say(status, await action(), false);
      refresh();
    } catch (e) {
      await failed(e, status);
    }
  });
  return f;
}

// Publishing to `exchange` ('' is the default exchange, amq.default in the API's paths).
function publishBox(prefix, sel, exchange, fixedKey) {
  const key = el('input', { id: prefix + '-publish-key', value: fixedKey == null ? '' : fixedKey });
  const persistent = el('input', { type: 'checkbox', id: prefix + '-publish-persistent' });
  const payload = el('textarea', { id: prefix + '-publish-payload', rows: 3 });
  const fields = [fixedKey == null ? field('Routing key', key) : null,
    field('Persistent', persistent), field('Payload', payload)];
  const path = `exchanges/${seg(sel.vhost)}/${seg(exchange || 'amq.default')}/publish`;
  return box(fixedKey == null ? 'Publish message' : 'Publish message (via the default exchange)',
    form(prefix + '-publish', 'Publish message', fields, async () => {
      const r = await api('POST', path, { properties: persistent.checked ? { delivery_mode: 2 } : {},
        routing_key: key.value, payload: payload.value, payload_encoding: 'string' });
      return r && r.routed ? 'Message published.' : 'Message published, but not routed.';
    }));
}

const ACKMODES = [['ack_requeue_true', 'Requeue (ack_requeue_true)'],
  ['ack_requeue_false', 'Remove (ack_requeue_false)'],
  ['reject_requeue_true', 'Reject, requeue (reject_requeue_true)'],
  ['reject_requeue_false', 'Reject, no requeue (reject_requeue_false)']];

function getBox(path) {
  const n = el('input', { id: 'queue-get-count', type: 'number', min: 1, value: 1 });
  const mode = el('select', { id: 'queue-get-ackmode' },
    ACKMODES.map(([v, label]) => el('option', { value: v }, label)));
  const encoding = el('select', { id: 'queue-get-encoding' },
    el('option', { value: 'auto' }, 'Auto: string, or base64 if not UTF-8'),
    el('option', { value: 'base64' }, 'base64'));
  const out = el('div', { id: 'queue-get-result' });
  return box('Get messages', form('queue-get', 'Get messages',
    [field('Messages', n), field('Ack mode', mode), field('Encoding', encoding)], async () => {
      const msgs = await api('POST', path + '/get', { count: Number(n.value) || 1,
        ackmode: mode.value, encoding: encoding.value, truncate: 50000 });
      out.replaceChildren(...msgs.map(showMessage));
      return msgs.length ? `${msgs.length} message${msgs.length > 1 ? 's' : ''}.` : 'Queue is empty.';
    }), out);
}

function showMessage(m, i) {
  const dl = el('dl');
  fill(dl, m, [['Exchange', 'exchange', exchangeName], ['Routing key', 'routing_key'],
    ['Redelivered', 'redelivered', yesNo], ['Left in queue', 'message_count', count],
    ['Properties', 'properties', json], ['Payload bytes', 'payload_bytes', count],
    ['Encoding', 'payload_encoding']]);
  return el('article', { className: 'message' }, el('h4', null, `Message ${i + 1}`), dl,
    el('pre', { className: 'payload' }, text(m.payload)));
}

function purgeBox(path, sel) {
  const status = el('p', { id: 'queue-purge-status', className: 'status' });
  const ask = el('button', { type: 'button', id: 'queue-purge', className: 'danger',
    textContent: 'Purge messages…' });
  const yes = el('button', { type: 'button', id: 'queue-purge-confirm', className: 'danger',
    textContent: 'Yes, purge' });
  const no = el('button', { type: 'button', textContent: 'Cancel' });
  const confirm = el('p', { className: 'confirm', hidden: true },
    `Remove every ready message from ${sel.name}? `, yes, ' ', no);
  const asking = (on) => { confirm.hidden = !on; ask.hidden = on; };
  ask.addEventListener('click', () => { asking(true); status.textContent = ''; });
  no.addEventListener('click', () => asking(false));
  yes.addEventListener('click', async () => {
    asking(false);
    try {
      await api('DELETE', path + '/contents');
      say(status, 'Queue purged.', false);
      refresh();
    } catch (e) {
      await failed(e, status);
    }
  });
  return box('Purge', ask, confirm, status);
}

function bindingsBox(path, columns) {
  const body = el('tbody');
  const b = box('Bindings', el('table', { className: 'bindings' },
    el('thead', null, el('tr', null, columns.map(([title]) => el('th', null, title)))), body));
  b.load = async () => {
    const list = await api('GET', path);
    body.replaceChildren(...list.map((x) => el('tr', null,
      columns.map(([, show]) => el('td', null, show(x))))));
    if (!list.length) body.append(el('tr', null, el('td', { colSpan: columns.length }, 'None.')));
  };
  return b;
}

function queueDetail(t, sel) {
  const path = `queues/${seg(sel.vhost)}/${seg(sel.name)}`;
  const bindings = bindingsBox(path + '/bindings', [['From exchange', (b) => exchangeName(b.source)],
    ['Routing key', (b) => b.routing_key], ['Arguments', (b) => json(b.arguments)]]);
  panel(t, 'Queue', sel, path, [['Type', 'type'], ['State', 'state'],
    ['Ready', 'messages_ready', count], ['Unacked', 'messages_unacknowledged', count],
    ['Total', 'messages', count], ['Consumers', 'consumers', count],
    ['Incoming', 'message_stats.publish_details.rate', rate],
    ['Deliver / get', 'message_stats.deliver_get_details.rate', rate],
    ['Durable', 'durable', yesNo], ['Auto-delete', 'auto_delete', yesNo],
    ['Exclusive', 'exclusive', yesNo], ['Arguments', 'arguments', json], ['Node', 'node']],
  publishBox('queue', sel, '', sel.name), getBox(path), purgeBox(path, sel), bindings);
  const stats = t.reload;
  t.reload = async () => { if (await stats()) await bindings.load(); };
}

function exchangeDetail(t, sel) {
  const path = `exchanges/${seg(sel.vhost)}/${seg(sel.name || 'amq.default')}`;
  const bindings = bindingsBox(path + '/bindings/source', [['To', (b) => b.destination],
    ['Kind', (b) => b.destination_type], ['Routing key', (b) => b.routing_key],
    ['Arguments', (b) => json(b.arguments)]]);
  panel(t, 'Exchange', sel, path, [['Type', 'type'],
    ['Rate in', 'message_stats.publish_in_details.rate', rate],
    ['Rate out', 'message_stats.publish_out_details.rate', rate],
    ['Durable', 'durable', yesNo], ['Auto-delete', 'auto_delete', yesNo],
    ['Internal', 'internal', yesNo], ['Arguments', 'arguments', json]],
  publishBox('exchange', sel, sel.name, null), sel.name === '' ? null : bindings);
  const stats = t.reload;
  t.reload = async () => { if ((await stats()) && sel.name !== '') await bindings.load(); };
}

// ---- start ----

for (const name of Object.keys(TABLES)) buildTable(name);
if (auth) {
  api('GET', 'whoami').then(start, (e) => (e.status === 401 ? logout(e.message) : showLogin(e.message)));
} else {
  showLogin();
}
