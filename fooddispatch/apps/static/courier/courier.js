/* The courier web app (/courier): sign in, go online, stream the phone's position (watchPosition) over the
 * courier socket (/v1/courier/ws), answer offers, hand off to the phone's maps app (geo: links), confirm
 * pickup and delivery, see today's earnings.
 * Fixes are numbered (`seq`, kept across reloads) and kept until the server acks them: through a network
 * loss they queue, and on reconnect the server's first ack says what it has stored, so the rest is sent
 * again, in order. Actions carry an id, so a resend is recorded once. */
(function () {
  'use strict';
  const t = FDi18n.t;
  const $ = id => document.getElementById(id);
  const MAX_QUEUE = 2000;
  const state = {
    token: localStorage.getItem('courier.token'), me: null, connected: false, status: 'offline',
    seq: 0, acked: 0, queue: [], offer: null, job: null, fixes: 0, sent: 0, resent: 0, rejected: 0, lastFix: null,
    earnings: null, socket: null,
  };
  window.__courier = state;
  const pending = new Map();  // action id -> {resolve, reject}
  let retry = 1000, watchId = null, map = null, me = null, jobLayer = null, offerTimer = null;

  function notice(text, error) {
    const el = $('notice');
    el.textContent = text;
    el.className = error ? 'banner error' : 'banner';
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => el.classList.add('hidden'), 8000);
  }
  async function api(path) {
    const resp = await fetch(path, { headers: { 'Authorization': `Bearer ${state.token}` } });
    if (resp.status === 401) { signOut(t('courier.session_ended')); throw new Error('unauthenticated'); }
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    return resp.json();
  }
  const seqKey = () => `courier.seq.${state.me.account_id}`;
  const jobKey = () => `courier.job.${state.me.account_id}`;

  // ---- the socket ----------------------------------------------------------------------------------
  function send(frame) {
    if (!state.connected) return false;
    state.socket.send(JSON.stringify(frame));
    return true;
  }
  function sendFixes(points) {
    for (let i = 0; i < points.length; i += 500) {
      const chunk = points.slice(i, i + 500);
      send(chunk.length === 1 ? Object.assign({ type: 'location' }, chunk[0]) : { type: 'location', points: chunk });
    }
  }
  function action(frame, timeoutMs) {
    const id = `a${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
    return new Promise((resolve, reject) => {
      if (!send(Object.assign({}, frame, { id }))) { reject(Object.assign(new Error('offline'), { code: 'offline' })); return; }
      const timer = setTimeout(() => { pending.delete(id); reject(Object.assign(new Error('no answer'), { code: 'timeout' })); },
                               timeoutMs || 10000);
      pending.set(id, { resolve: v => { clearTimeout(timer); resolve(v); }, reject: e => { clearTimeout(timer); reject(e); } });
    });
  }
  function onAck(frame) {
    if (frame.id !== undefined && pending.has(frame.id)) {
      pending.get(frame.id).resolve(frame);
      pending.delete(frame.id);
    }
    if (frame.seq !== undefined) {
      const first = !state.resumed;
      state.resumed = true;
      if (first && state.seq < frame.seq) {
        // The server knows later fixes than this phone (another phone, cleared storage): number ours after them.
        let next = frame.seq;
        for (const p of state.queue) p.seq = ++next;
        state.seq = next;
      }
      state.acked = first ? frame.seq : Math.max(state.acked, frame.seq);
      state.seq = Math.max(state.seq, frame.seq);
      localStorage.setItem(seqKey(), String(state.seq));
      state.queue = state.queue.filter(p => p.seq > frame.seq);
      if (first && state.queue.length) {  // what the server does not have yet, in order
        state.resent += state.queue.length;
        sendFixes(state.queue);
      }
    }
  }
  function onError(frame) {
    if (frame.id !== undefined && pending.has(frame.id)) {
      pending.get(frame.id).reject(Object.assign(new Error(frame.message), { code: frame.code, state: frame.state }));
      pending.delete(frame.id);
      return;
    }
    if (frame.seq !== undefined) {  // the point is done (rejected): it is not sent again
      state.rejected += 1;
      state.queue = state.queue.filter(p => p.seq !== frame.seq);
      return;
    }
    if (frame.offer_id && state.offer && frame.offer_id === state.offer.offer_id) hideOffer();
    if (frame.offer_id && state.job && frame.offer_id === state.job.offer_id) {
      setJob(null);
      notice(t('courier.offer_gone'), true);
      return;
    }
    notice(frame.message || frame.code, true);
  }
  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/v1/courier/ws?access_token=${encodeURIComponent(state.token)}`);
    state.socket = socket;
    socket.onopen = () => {
      state.connected = true;
      state.resumed = false;
      retry = 1000;
      $('link').textContent = t('courier.connected');
      $('link').className = 'pill live';
      send({ type: 'status', status: state.status === 'online' ? 'online' : 'offline', id: `s${Date.now()}` });
    };
    socket.onmessage = ev => {
      const frame = JSON.parse(ev.data);
      if (frame.type === 'ack') onAck(frame);
      else if (frame.type === 'error') onError(frame);
      else if (frame.type === 'offer') showOffer(frame);
      else if (frame.type === 'offer_cancelled') { if (state.offer && state.offer.offer_id === frame.offer_id) hideOffer(t('courier.offer_withdrawn')); }
      else if (frame.type === 'status' && frame.status === 'offline') { setStatus('offline'); notice(t('courier.taken_offline')); }
      else if (frame.type === 'reposition') notice(t('courier.reposition'));
      else if (frame.type === 'assigned') onAssigned(frame);
      else if (frame.type === 'unassigned') onUnassigned(frame);
    };
    socket.onclose = () => {
      if (state.socket !== socket) return;
      state.connected = false;
      $('link').textContent = t('courier.reconnecting');
      $('link').className = 'pill off';
      for (const [, p] of pending) p.reject(Object.assign(new Error('connection lost'), { code: 'offline' }));
      pending.clear();
      if (!state.token) return;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }
  /* Drop the connection as a network loss would (tests and the "reconnect" gesture use it). */
  state.dropSocket = () => { if (state.socket) state.socket.close(); };

  // ---- position ------------------------------------------------------------------------------------
  function onPosition(pos) {
    const c = pos.coords;
    state.seq += 1;
    localStorage.setItem(seqKey(), String(state.seq));
    const fix = { lat: c.latitude, lng: c.longitude, ts: pos.timestamp / 1000, seq: state.seq };
    if (c.accuracy !== null && isFinite(c.accuracy)) fix.accuracy = c.accuracy;
    if (c.speed !== null && isFinite(c.speed)) fix.speed = c.speed;
    if (c.heading !== null && isFinite(c.heading)) fix.heading = c.heading;
    state.fixes += 1;
    state.lastFix = fix;
    state.queue.push(fix);
    if (state.queue.length > MAX_QUEUE) state.queue.splice(0, state.queue.length - MAX_QUEUE);
    if (state.connected && state.resumed) { state.sent += 1; sendFixes([fix]); }
    $('gps').textContent = `GPS: ${fix.lat.toFixed(5)}, ${fix.lng.toFixed(5)}` + (fix.accuracy ? ` (±${Math.round(fix.accuracy)} m)` : '') +
      (state.queue.length > 1 ? t('courier.waiting_to_send', { count: state.queue.length }) : '');
    if (map) { me.place(fix.lat, fix.lng); if (!state.job && !state.offer) map.panTo([fix.lat, fix.lng]); }
  }
  function watch(on) {
    if (!navigator.geolocation) { notice(t('courier.no_geolocation'), true); return; }
    if (on && watchId === null) {
      watchId = navigator.geolocation.watchPosition(onPosition, err => {
        if (err.code === 1) notice(t('courier.allow_location'), true);
        else if (err.code === 2) $('gps').textContent = t('courier.gps_none');
      }, { enableHighAccuracy: true, maximumAge: 0 });
    } else if (!on && watchId !== null) {
      navigator.geolocation.clearWatch(watchId);
      watchId = null;
    }
  }
  function setStatus(status) {
    state.status = status;
    localStorage.setItem('courier.status', status);
    $('toggle').textContent = t(status === 'online' ? 'courier.go_offline' : 'courier.go_online');
    $('toggle').className = status === 'online' ? '' : 'primary';
    document.body.dataset.status = status;
    watch(status === 'online');
  }

  // ---- offers and the job --------------------------------------------------------------------------
  const money = FDi18n.money;
  function showOffer(offer) {
    state.offer = offer;
    const stops = offer.dropoffs.length;
    $('offer-text').textContent = t(stops > 1 ? 'courier.offer_text_other' : 'courier.offer_text_one', { payout: money(offer.payout), stops });
    $('offer').classList.remove('hidden');
    clearInterval(offerTimer);
    const tick = () => {
      const left = Math.max(0, Math.round((new Date(offer.expires_at) - Date.now()) / 1000));
      $('offer-countdown').textContent = `${left} s`;
      if (left <= 0) hideOffer(t('courier.offer_expired'));
    };
    tick();
    offerTimer = setInterval(tick, 1000);
    drawStops(offer);
  }
  function hideOffer(message) {
    clearInterval(offerTimer);
    state.offer = null;
    $('offer').classList.add('hidden');
    if (message) notice(message);
    drawStops(state.job);
  }
  async function answer(accepted) {
    const offer = state.offer;
    if (!offer) return;
    try {
      await action({ type: 'offer_response', offer_id: offer.offer_id, accepted });
      hideOffer();
      if (accepted) setJob({ offer_id: offer.offer_id, order_ids: offer.order_ids, pickup: offer.pickup,
                             dropoffs: offer.dropoffs, stage: 'pickup', delivered: [], details: {} });
    } catch (e) { notice(t('courier.could_not_answer', { error: e.message }), true); }
  }
  /* An operator gave us an order by hand (no offer to answer): a job of its own, or one more pickup of the job
     while we are still on the way to the restaurant. */
  function onAssigned(frame) {
    const job = state.job;
    if (job && job.order_ids.includes(frame.order_id)) return;
    const dropoff = { order_id: frame.order_id, lat: frame.dropoff.lat, lng: frame.dropoff.lng };
    if (!job) setJob({ offer_id: null, order_ids: [frame.order_id], pickup: frame.pickup, dropoffs: [dropoff],
                       stage: 'pickup', delivered: [], details: {} });
    else if (job.stage === 'pickup') { job.order_ids.push(frame.order_id); job.dropoffs.push(dropoff); setJob(job); }
    else { job.later = [...(job.later || []), frame]; setJob(job); notice(t('courier.assigned_later')); return; }
    notice(t('courier.assigned'));
  }
  /* An operator gave one of our orders to another courier. */
  function onUnassigned(frame) {
    const job = state.job;
    if (job && job.later) job.later = job.later.filter(f => f.order_id !== frame.order_id);
    if (!job || !job.order_ids.includes(frame.order_id)) return;
    job.order_ids = job.order_ids.filter(id => id !== frame.order_id);
    job.dropoffs = job.dropoffs.filter(d => d.order_id !== frame.order_id);
    setJob(job.order_ids.length ? job : null);
    notice(t('courier.unassigned'));
  }
  function setJob(job) {
    state.job = job;
    if (job) localStorage.setItem(jobKey(), JSON.stringify(job)); else localStorage.removeItem(jobKey());
    renderJob();
    drawStops(job || state.offer);
  }
  function geoLink(lat, lng, label) { return `geo:${lat},${lng}?q=${lat},${lng}(${encodeURIComponent(label)})`; }
  function nextStop(job) {
    if (job.stage === 'pickup') return { lat: job.pickup.lat, lng: job.pickup.lng, label: t('courier.restaurant') };
    const d = job.dropoffs.find(x => !job.delivered.includes(x.order_id));
    return d ? { lat: d.lat, lng: d.lng, label: t('courier.dropoff'), order_id: d.order_id } : null;
  }
  async function loadDetails(job) {
    for (const id of job.order_ids) {
      if (job.details[id]) continue;
      try { const o = await api(`/v1/orders/${id}`); job.details[id] = { address: o.address, note: o.delivery_note }; }
      catch (e) { /* not assigned to us yet: later */ }
    }
  }
  async function renderJob() {
    const job = state.job;
    $('job').classList.toggle('hidden', !job);
    if (!job) return;
    const stop = nextStop(job);
    $('job-title').textContent = t(job.stage === 'pickup' ? 'courier.go_to_restaurant' : 'courier.deliver');
    const actions = $('job-actions');
    actions.textContent = '';
    let text = '';
    if (job.stage === 'pickup') {
      text = t(job.order_ids.length > 1 ? 'courier.pick_up_other' : 'courier.pick_up_one', { count: job.order_ids.length });
      const b = document.createElement('button');
      b.className = 'ok'; b.id = 'picked-up'; b.textContent = t('courier.picked_up');
      b.onclick = () => step('picked_up', job.order_ids, b);
      actions.appendChild(b);
    } else if (stop) {
      const d = job.details[stop.order_id] || {};
      text = (d.address ? `${d.address}. ` : '') + (d.note ? `Note: ${d.note}` : '');
      const b = document.createElement('button');
      b.className = 'ok'; b.id = 'delivered'; b.textContent = t('courier.delivered');
      b.onclick = () => step('delivered', [stop.order_id], b);
      actions.appendChild(b);
    }
    $('job-text').textContent = text;
    if (stop) $('navigate').href = geoLink(stop.lat, stop.lng, stop.label);
    await loadDetails(job);
    if (state.job === job && job.stage !== 'pickup' && stop) {
      const d = job.details[stop.order_id] || {};
      $('job-text').textContent = (d.address ? `${d.address}. ` : '') + (d.note ? `Note: ${d.note}` : '');
    }
  }
  /* A pick-up or delivery, per order; the assignment may reach the order a moment after the offer's
   * ack, so "not yours yet" is retried for a while. */
  async function step(kind, orderIds, buttonEl) {
    buttonEl.disabled = true;
    const job = state.job;
    try {
      for (const orderId of orderIds) {
        for (let attempt = 0; ; attempt++) {
          try {
            await action(kind === 'delivered' ? { type: kind, order_id: orderId, proof: null } : { type: kind, order_id: orderId });
            break;
          } catch (e) {
            if (e.code === 'invalid_transition' && ((kind === 'picked_up' && ['picked_up', 'delivered'].includes(e.state)) ||
                                                    (kind === 'delivered' && e.state === 'delivered'))) break;
            // Not ours yet (`resource_missing`; `not_found` and `order_not_found` before it), or not heard: ask again.
            if (attempt >= 15 || !['resource_missing', 'not_found', 'order_not_found', 'unavailable', 'timeout', 'offline'].includes(e.code)) throw e;
            await new Promise(r => setTimeout(r, 1000));
          }
        }
        if (kind === 'delivered') job.delivered.push(orderId);
      }
      if (kind === 'picked_up') job.stage = 'dropoff';
      if (job.delivered.length === job.order_ids.length) { setJob(null); notice(t('courier.thanks')); loadEarnings(); (job.later || []).forEach(onAssigned); }
      else setJob(job);
    } catch (e) {
      notice(t('courier.could_not_confirm', { error: e.message }), true);
    } finally {
      buttonEl.disabled = false;
    }
  }
  function drawStops(plan) {
    if (!map) return;
    if (jobLayer) jobLayer.remove();
    jobLayer = L.layerGroup().addTo(map);
    if (!plan) return;
    const points = [[plan.pickup.lat, plan.pickup.lng], ...plan.dropoffs.map(d => [d.lat, d.lng])];
    jobLayer.addLayer(L.circleMarker(points[0], { radius: 9, color: '#fff', weight: 2, fillColor: FDMap.COLORS.restaurant, fillOpacity: 1 }).bindTooltip(t('courier.restaurant')));
    for (const p of points.slice(1)) jobLayer.addLayer(L.circleMarker(p, { radius: 8, color: '#fff', weight: 2, fillColor: FDMap.COLORS.dropoff, fillOpacity: 1 }).bindTooltip(t('courier.dropoff')));
    const here = me && me.latlng ? [[me.latlng.lat, me.latlng.lng]] : [];
    jobLayer.addLayer(L.polyline([...here, ...points], { color: FDMap.COLORS.route, weight: 3, dashArray: '6 6' }));
    FDMap.fit(map, [...here, ...points]);
  }

  // ---- earnings ------------------------------------------------------------------------------------
  async function loadEarnings() {
    try {
      const wallet = await api('/v1/wallets/me');
      const today = new Date().toDateString();
      const parts = [];
      let deliveries = 0;
      for (const b of wallet.balances.filter(x => x.kind === 'courier_earnings')) {
        const tx = await api(`/v1/wallets/me/transactions?kind=courier_earnings&currency=${b.currency}&limit=100`);
        const todays = tx.data.filter(x => new Date(x.created).toDateString() === today && x.amount > 0);
        deliveries += todays.length;
        parts.push(money({ amount: todays.reduce((s, x) => s + x.amount, 0), currency: b.currency }));
      }
      state.earnings = parts;
      $('earnings').textContent = parts.length
        ? t(deliveries === 1 ? 'courier.earnings_one' : 'courier.earnings_other', { amount: parts.join(' + '), count: deliveries })
        : t('courier.nothing_yet');
    } catch (e) { /* shown next time */ }
  }

  // ---- start ---------------------------------------------------------------------------------------
  async function start() {
    $('signin').classList.add('hidden');
    $('app').classList.remove('hidden');
    state.me = await api('/v1/me');
    if (state.me.role !== 'courier') { signOut(t('courier.couriers_only')); return; }
    $('who').textContent = state.me.name || t('courier.title');
    state.seq = Number(localStorage.getItem(seqKey()) || 0);
    const saved = localStorage.getItem(jobKey());
    map = await FDMap.create($('map'), { zoom: 15 });
    me = FDMap.courier(map, t('courier.you'));
    state.job = saved ? JSON.parse(saved) : null;
    setJob(state.job);
    setStatus(localStorage.getItem('courier.status') === 'online' ? 'online' : 'offline');
    connect();
    loadEarnings();
  }
  function signOut(message) {
    state.token = null;
    localStorage.removeItem('courier.token');
    watch(false);
    if (state.socket) state.socket.close();
    $('app').classList.add('hidden');
    $('signin').classList.remove('hidden');
    if (message) { $('signin-error').textContent = message; $('signin-error').classList.remove('hidden'); }
  }

  $('signin').addEventListener('submit', async ev => {
    ev.preventDefault();
    const resp = await fetch('/v1/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: $('email').value, password: $('password').value }) });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok || data.role !== 'courier') {
      $('signin-error').textContent = resp.ok ? t('courier.couriers_only') : ((data.error && data.error.message) || t('courier.signin_failed'));
      $('signin-error').classList.remove('hidden');
      return;
    }
    state.token = data.token;
    localStorage.setItem('courier.token', data.token);
    start().catch(() => {});
  });
  $('toggle').addEventListener('click', async () => {
    const next = state.status === 'online' ? 'offline' : 'online';
    setStatus(next);
    try { await action({ type: 'status', status: next }); }
    catch (e) { notice(e.code === 'offline' ? t(`courier.queued_${next}`) : e.message, e.code !== 'offline'); }
  });
  $('accept').addEventListener('click', () => answer(true));
  $('decline').addEventListener('click', () => answer(false));
  $('signout').addEventListener('click', () => signOut());
  window.addEventListener('online', () => { if (state.socket && state.socket.readyState > 1) connect(); });

  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/courier/sw.js', { scope: '/courier' }).catch(() => {});
  }
  if (state.token) start().catch(() => {});
})();
