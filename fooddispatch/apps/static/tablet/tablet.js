/* The restaurant tablet (/tablet): a store's incoming orders, live from the store's feed socket
 * (/v1/stores/{id}/orders/feed), and the kitchen's actions through the public API. The feed starts with a
 * hello listing the store's active orders; orders are kept by id, so a reconnect catches up (the hello
 * again, plus a read of any order it no longer lists) without missing or duplicating one.
 *
 * Opened as /tablet#key=fdk_… (a store-scoped API key, see the README) it signs in with that key: the
 * fragment never leaves the browser (it is not part of any request), the key is kept for this tab only
 * (sessionStorage) and wiped from the address bar at once, so it is neither bookmarked nor shown. */
(function () {
  'use strict';
  const $ = id => document.getElementById(id);
  const ENDED = new Set(['delivered', 'cancelled', 'rejected', 'expired']);
  const RANK = { placed: 0, accepted: 1, preparing: 2, ready: 3, picked_up: 4, delivered: 9, cancelled: 9, rejected: 9, expired: 9 };
  const COLUMN = { placed: 'col-new', accepted: 'col-kitchen', preparing: 'col-kitchen', ready: 'col-ready', picked_up: 'col-out' };
  const t = FDi18n.t;
  const REASONS = ['item_unavailable', 'too_busy', 'capacity', 'store_closed', 'address_problem', 'other']
    .map(code => [code, t(`tablet.reason.${code}`)]);
  const API_KEY = 'fdk_';
  keyFromFragment();
  const state = { token: sessionStorage.getItem('tablet.token'), storeId: localStorage.getItem('tablet.store'),
                  orders: new Map(), details: new Map(), connected: false, hellos: 0, beeps: 0, frames: 0 };
  window.__tablet = state;
  let audio = null, socket = null, retry = 1000, map = null, drops = null;

  /* #key=<secret> in the address: keep it for the tab, then take it out of the address bar (and history). */
  function keyFromFragment() {
    const key = new URLSearchParams(location.hash.slice(1)).get('key');
    if (!key) return;
    history.replaceState(null, '', location.pathname + location.search);
    if (key.startsWith(API_KEY)) sessionStorage.setItem('tablet.token', key);
  }
  function headers(extra) {
    const auth = state.token.startsWith(API_KEY) ? { 'X-Api-Key': state.token }
                                                 : { 'Authorization': `Bearer ${state.token}` };
    return Object.assign(auth, extra || {});
  }
  async function api(method, path, body) {
    const init = { method, headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}) };
    if (method !== 'GET') init.headers['Idempotency-Key'] = `${method}-${path}-${Date.now()}-${Math.random()}`;
    if (body !== undefined) init.body = JSON.stringify(body);
    const resp = await fetch(path, init);
    if (resp.status === 401) { signOut(t('tablet.session_ended')); throw new Error('unauthenticated'); }
    const data = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const message = (data.error && data.error.message) || `HTTP ${resp.status}`;
      notice(message, true);
      throw new Error(message);
    }
    return data;
  }
  function notice(text, error) {
    const el = $('notice');
    el.textContent = text;
    el.className = error ? 'banner error' : 'banner';
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => el.classList.add('hidden'), 6000);
  }

  function beep() {
    state.beeps += 1;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.25, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.6);
    } catch (e) { /* no sound available */ }
  }

  // ---- orders --------------------------------------------------------------------------------------
  function upsert(order) {
    const known = state.orders.get(order.id);
    if (known && RANK[order.status] < RANK[known.status]) return;  // an older frame than what we have
    const fresh = !known && order.status === 'placed';
    state.orders.set(order.id, Object.assign({}, known || {}, order));
    if (fresh) beep();
    if (!state.details.has(order.id)) loadDetail(order.id);
    render();
  }
  async function loadDetail(orderId) {
    state.details.set(orderId, null);
    try {
      const order = await api('GET', `/v1/orders/${orderId}`);
      state.details.set(orderId, order);
      upsert({ id: order.id, status: order.status, accept_by: order.accept_by, placed_at: order.placed_at });
    } catch (e) { state.details.delete(orderId); }
  }

  function onHello(hello) {
    state.hellos += 1;
    const listed = new Set();
    for (const o of hello.active_orders) { listed.add(o.id); upsert(o); }
    // Orders we showed that the hello no longer lists ended while we were away: read how.
    for (const [id, o] of state.orders) {
      if (!listed.has(id) && !ENDED.has(o.status)) loadDetail(id);
    }
  }
  function onOrderFrame(frame) {
    const data = frame.data || {};
    upsert({ id: frame.order_id, status: frame.status || data.status, accept_by: data.accept_by,
             placed_at: data.placed_at });
    if (state.details.has(frame.order_id) && frame.event_type !== 'order.placed') loadDetail(frame.order_id);
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    // A browser sets no headers on a websocket: the token or key goes as ?access_token=, the one place the
    // server reads it from a query (the server logs paths only, never query strings).
    socket = new WebSocket(`${scheme}://${location.host}/v1/stores/${state.storeId}/orders/feed?access_token=${encodeURIComponent(state.token)}`);
    socket.onopen = () => { retry = 1000; };
    socket.onmessage = ev => {
      const frame = JSON.parse(ev.data);
      state.frames += 1;
      if (frame.type === 'hello') {
        state.connected = true;
        $('feed-status').textContent = t('tablet.live');
        $('feed-status').className = 'pill live';
        onHello(frame);
      } else if (frame.type === 'order') {
        onOrderFrame(frame);
      }
    };
    socket.onclose = () => {
      state.connected = false;
      $('feed-status').textContent = t('tablet.reconnecting');
      $('feed-status').className = 'pill off';
      if (!state.token) return;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  /* Drop the connection as a network loss would (tests use it; the feed reconnects by itself). */
  state.dropSocket = () => { if (socket) socket.close(); };

  function button(label, cls, onClick) {
    const b = document.createElement('button');
    b.textContent = label;
    if (cls) b.className = cls;
    b.addEventListener('click', async () => {
      b.disabled = true;
      try { await onClick(); } catch (e) { /* shown in the notice */ } finally { b.disabled = false; }
    });
    return b;
  }
  function select(options, value) {
    const s = document.createElement('select');
    for (const [v, label] of options) {
      const o = document.createElement('option');
      o.value = v; o.textContent = label;
      s.appendChild(o);
    }
    if (value !== undefined) s.value = value;
    return s;
  }
  async function act(orderId, path, body) {
    const order = await api('POST', `/v1/orders/${orderId}/${path}`, body);
    state.details.set(orderId, order);
    upsert({ id: order.id, status: order.status, accept_by: order.accept_by });
  }

  function card(o) {
    const detail = state.details.get(o.id);
    const el = document.createElement('div');
    el.className = 'order' + (o.status === 'placed' ? ' fresh' : '');
    el.dataset.orderId = o.id;
    el.dataset.status = o.status;
    const top = document.createElement('div');
    top.className = 'top';
    const title = document.createElement('span');
    title.textContent = `#${o.id.slice(-6)}`;
    top.appendChild(title);
    if (o.status === 'placed' && o.accept_by) {
      const c = document.createElement('span');
      c.className = 'countdown';
      c.dataset.deadline = o.accept_by;
      top.appendChild(c);
    }
    el.appendChild(top);
    if (detail) {
      const ul = document.createElement('ul');
      for (const line of detail.lines) {
        const li = document.createElement('li');
        li.textContent = `${line.quantity - line.missing_quantity} × ${line.name}` + (line.missing_quantity ? t('tablet.missing_suffix', { count: line.missing_quantity }) : '');
        ul.appendChild(li);
      }
      el.appendChild(ul);
      if (detail.delivery_note) {
        const note = document.createElement('div');
        note.className = 'muted';
        note.textContent = t('tablet.note', { note: detail.delivery_note });
        el.appendChild(note);
      }
    }
    const actions = document.createElement('div');
    actions.className = 'actions';
    if (o.status === 'placed') {
      const prep = select([['300', '5 min'], ['600', '10 min'], ['900', '15 min'], ['1200', '20 min'], ['1800', '30 min']], '900');
      prep.className = 'prep';
      actions.append(prep, button(t('tablet.accept'), 'ok accept', () => act(o.id, 'accept', { prep_time_s: Number(prep.value) })));
      const reason = select(REASONS);
      actions.append(reason, button(t('tablet.reject'), 'danger reject', () => act(o.id, 'reject', { reason: reason.value })));
    } else if (o.status === 'accepted' || o.status === 'preparing') {
      actions.append(button(t('tablet.mark_ready'), 'ok ready', () => act(o.id, 'ready')));
    }
    if (detail && ['accepted', 'preparing', 'ready'].includes(o.status)) {
      const lines = select(detail.lines.filter(l => l.quantity > l.missing_quantity).map(l => [String(l.line_no), l.name]));
      const qty = document.createElement('input');
      qty.type = 'number'; qty.min = '1'; qty.value = '1'; qty.size = 2;
      actions.append(lines, qty, button(t('tablet.report_missing'), 'missing', () => act(o.id, 'missing_items',
        { lines: [{ line_no: Number(lines.value), quantity: Number(qty.value) }] })));
    }
    el.appendChild(actions);
    return el;
  }

  function render() {
    for (const id of ['col-new', 'col-kitchen', 'col-ready', 'col-out']) $(id).textContent = '';
    let fresh = 0;
    const sorted = [...state.orders.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const o of sorted) {
      const column = COLUMN[o.status];
      if (!column) continue;
      if (o.status === 'placed') fresh += 1;
      $(column).appendChild(card(o));
    }
    $('count-new').textContent = String(fresh);
    drawDrops(sorted);
    tick();
  }
  function drawDrops(orders) {
    if (!map) return;
    drops.clearLayers();
    for (const o of orders) {
      const d = state.details.get(o.id);
      if (!d || !COLUMN[o.status]) continue;
      drops.addLayer(L.circleMarker([d.dropoff.lat, d.dropoff.lng], { radius: 6, color: '#fff', weight: 2,
        fillColor: FDMap.COLORS.dropoff, fillOpacity: 1 }).bindTooltip(`#${o.id.slice(-6)} · ${o.status}`));
    }
  }
  function tick() {
    for (const el of document.querySelectorAll('.countdown')) {
      const left = Math.max(0, Math.round((new Date(el.dataset.deadline) - Date.now()) / 1000));
      el.textContent = t('tablet.to_accept', { clock: `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}` });
    }
  }
  setInterval(tick, 1000);

  // ---- the store -----------------------------------------------------------------------------------
  function showStore(store) {
    $('store-name').textContent = store.name;
    const paused = store.status !== 'online';
    $('store-status').textContent = store.status === 'paused' && store.paused_until
      ? t('tablet.paused_until', { time: FDi18n.time(store.paused_until, store.timezone) })
      : t(`tablet.status.${store.status}`);
    $('store-status').className = paused ? 'pill off' : 'pill live';
    $('open').classList.toggle('hidden', !paused);
  }
  async function loadMenu() {
    const menu = await api('GET', `/v1/merchant/stores/${state.storeId}/menu`);
    const list = $('menu-items');
    list.textContent = '';
    for (const category of menu.categories) {
      for (const item of category.items) {
        const li = document.createElement('li');
        li.dataset.itemId = item.id;
        const name = document.createElement('span');
        name.textContent = `${item.name}` + (item.availability === 'sold_out' ? t('tablet.sold_out_suffix') : '');
        const soldOut = item.availability === 'sold_out';
        li.append(name, button(t(soldOut ? 'tablet.back_in_stock' : 'tablet.sold_out_today'), soldOut ? '' : 'danger sold-out', async () => {
          await api('PATCH', `/v1/merchant/stores/${state.storeId}/items/${item.id}`,
                    { availability: soldOut ? 'in_stock' : 'sold_out' });
          notice(t(soldOut ? 'tablet.item_back' : 'tablet.item_sold_out', { item: item.name }));
          await loadMenu();
        }));
        list.appendChild(li);
      }
    }
  }

  async function start() {
    $('signin').classList.add('hidden');
    $('app').classList.remove('hidden');
    const me = await api('GET', '/v1/me');
    if (!me.tenant_id) { signOut(t('tablet.not_restaurant')); return; }
    const stores = await api('GET', `/v1/tenants/${me.tenant_id}/stores?limit=100`);
    if (!stores.items.length) { notice(t('tablet.no_store'), true); return; }
    if (!stores.items.some(s => s.id === state.storeId)) state.storeId = stores.items[0].id;
    localStorage.setItem('tablet.store', state.storeId);
    const pick = $('store-select');
    pick.textContent = '';
    for (const s of stores.items) {
      const o = document.createElement('option');
      o.value = s.id; o.textContent = s.name;
      pick.appendChild(o);
    }
    pick.value = state.storeId;
    pick.classList.toggle('hidden', stores.items.length < 2);
    pick.onchange = () => { localStorage.setItem('tablet.store', pick.value); location.reload(); };
    const store = stores.items.find(s => s.id === state.storeId);
    showStore(store);
    connect();
    map = await FDMap.create($('map'), { center: [store.lat, store.lng], zoom: 14 });
    FDMap.restaurant(map, store.lat, store.lng, store.name);
    drops = L.layerGroup().addTo(map);
    render();
  }

  function signOut(message) {
    state.token = null;
    sessionStorage.removeItem('tablet.token');
    if (socket) socket.close();
    $('app').classList.add('hidden');
    $('signin').classList.remove('hidden');
    if (message) { $('signin-error').textContent = message; $('signin-error').classList.remove('hidden'); }
  }

  $('signin').addEventListener('submit', async ev => {
    ev.preventDefault();
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();  // sound needs this gesture
    const key = $('apikey').value.trim();
    if (key) {
      state.token = key;
    } else {
      const resp = await fetch('/v1/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: $('email').value, password: $('password').value }) });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        $('signin-error').textContent = (data.error && data.error.message) || t('tablet.signin_failed');
        $('signin-error').classList.remove('hidden');
        return;
      }
      if (data.role !== 'staff') { signOut(t('tablet.staff_only')); return; }
      state.token = data.token;
    }
    sessionStorage.setItem('tablet.token', state.token);
    $('signin-error').classList.add('hidden');
    start().catch(() => {});
  });
  $('pause').addEventListener('click', async () => {
    const minutes = Math.max(1, Number($('pause-minutes').value) || 20);
    const until = new Date(Date.now() + minutes * 60000).toISOString();
    showStore(await api('POST', `/v1/merchant/stores/${state.storeId}/pause`, { until, reason: 'paused on the tablet' }));
    notice(t('tablet.paused_for', { minutes }));
  });
  $('open').addEventListener('click', async () => {
    showStore(await api('POST', `/v1/merchant/stores/${state.storeId}/open`));
  });
  $('menu-toggle').addEventListener('click', () => {
    const menu = $('menu');
    menu.classList.toggle('hidden');
    if (!menu.classList.contains('hidden')) loadMenu().catch(() => {});
  });
  $('signout').addEventListener('click', () => signOut());

  if (state.token) start().catch(() => {});
})();
