/* The customer's tracking page (/t/{token}). Everything it shows comes from the tracking view
 * (GET /v1/orders/{id}/tracking, with the link's token) and the link's live socket
 * (/v1/orders/{id}/tracking/ws?token=): status changes refetch the view, courier positions move the
 * marker. A dropped connection is retried with back-off while the view is polled, so the page survives
 * network loss; a reload starts again from the token in the address. */
(function () {
  'use strict';
  const t = FDi18n.t;
  const STEPS = ['placed', 'accepted', 'preparing', 'ready', 'picked_up', 'delivered'];
  const ENDED = new Set(['delivered', 'cancelled', 'rejected', 'expired']);
  const $ = id => document.getElementById(id);
  const state = { status: null, view: null, positions: 0, lastPosition: null, socketOpen: false, frames: 0,
                  views: 0, error: null };
  window.__track = state;

  const token = decodeURIComponent(location.pathname.replace(/^\/t\//, ''));
  let orderId = null;
  try {
    const body = token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/');
    orderId = JSON.parse(atob(body + '='.repeat((4 - body.length % 4) % 4))).o;
  } catch (e) { orderId = null; }

  let map = null, courierMarker = null, placed = false, routeLine = null;
  // In the restaurant's time zone: "arrives around 19:40" means the same for everyone on the order.
  let timeZone = null;
  const clock = at => FDi18n.time(at, timeZone);

  function problem(text) {
    state.error = text;
    $('problem').textContent = text;
    $('problem').classList.remove('hidden');
  }

  function renderEta(eta, status) {
    if (status === 'delivered') { $('eta').textContent = eta ? t('track.arrived_at', { time: clock(eta) }) : ''; return; }
    if (!eta || ENDED.has(status)) { $('eta').textContent = ''; return; }
    const mins = Math.max(1, Math.round((new Date(eta) - Date.now()) / 60000));
    $('eta').textContent = t('track.arrives_around', { time: clock(eta), minutes: mins });
  }

  function renderTimeline(view) {
    const reached = new Map(view.timeline.map(s => [s.status, s.at]));
    const list = $('timeline');
    list.textContent = '';
    for (const status of STEPS) {
      const label = t(`step.${status}`);
      if (status === 'preparing' && !reached.has('preparing')) continue;
      const li = document.createElement('li');
      li.dataset.status = status;
      li.textContent = label;
      if (reached.has(status)) {
        li.className = 'done';
        const stamp = document.createElement('time');
        stamp.textContent = clock(reached.get(status));
        li.appendChild(stamp);
      }
      list.appendChild(li);
    }
    if (ENDED.has(view.status) && view.status !== 'delivered') {
      const li = document.createElement('li');
      li.className = 'done ended';
      li.textContent = t(`headline.${view.status}`);
      list.appendChild(li);
    }
  }

  function showCourier(c) {
    if (!courierMarker) return;
    if (!c || ENDED.has(state.status)) {
      courierMarker.place(null);
      $('courier-card').hidden = true;
      state.lastPosition = null;
      return;
    }
    courierMarker.place(c.lat, c.lng);
    const who = c.courier || c;
    const name = who.first_name || t('track.your_courier');
    const vehicle = who.vehicle ? ` · ${who.vehicle}` : '';
    $('courier').textContent = `${name}${vehicle}` + (c.eta_to === 'pickup' ? t('track.heading_to_restaurant') : '');
    $('courier-card').hidden = false;
    courierMarker.label(name);
  }

  async function render(view) {
    state.view = view;
    state.status = view.status;
    state.views += 1;
    document.body.dataset.status = view.status;
    timeZone = view.restaurant.time_zone || null;
    $('restaurant').textContent = view.restaurant.name || t('track.your_restaurant');
    $('headline').textContent = t(`headline.${view.status}`);
    renderEta(view.eta, view.status);
    renderTimeline(view);
    $('items').textContent = '';
    for (const item of view.items) {
      const li = document.createElement('li');
      li.textContent = `${item.quantity} × ${item.name}`;
      $('items').appendChild(li);
    }
    $('note-card').hidden = !view.delivery_note;
    $('note').textContent = view.delivery_note || '';
    if (!map) {
      map = await FDMap.create($('map'), { center: [view.restaurant.lat, view.restaurant.lng] });
      courierMarker = FDMap.courier(map, t('track.courier'));
    }
    if (!placed) {
      FDMap.restaurant(map, view.restaurant.lat, view.restaurant.lng, view.restaurant.name);
      FDMap.dropoff(map, view.dropoff.lat, view.dropoff.lng, t('track.you'));
      routeLine = FDMap.route(map, [[view.restaurant.lat, view.restaurant.lng], [view.dropoff.lat, view.dropoff.lng]]);
      FDMap.fit(map, [[view.restaurant.lat, view.restaurant.lng], [view.dropoff.lat, view.dropoff.lng]]);
      placed = true;
    }
    if (ENDED.has(view.status) && routeLine) { routeLine.remove(); routeLine = null; }
    showCourier(view.courier);
  }

  let fetching = null;
  async function refresh() {
    if (fetching) return fetching;
    fetching = (async () => {
      try {
        const resp = await fetch(`/v1/orders/${encodeURIComponent(orderId)}/tracking`,
                                 { headers: { 'X-Tracking-Token': token }, cache: 'no-store' });
        if (resp.status === 404) { problem(t('track.link_invalid')); return false; }
        if (resp.status === 410) {
          const body = await resp.json().catch(() => ({}));
          const code = body.error && body.error.code;
          problem(t(code === 'tracking_link_revoked' ? 'track.link_revoked' : 'track.link_expired'));
          return false;
        }
        if (!resp.ok) return true;
        await render(await resp.json());
        return true;
      } catch (e) {
        return true;  // offline: keep trying
      } finally {
        fetching = null;
      }
    })();
    return fetching;
  }

  function onFrame(frame) {
    state.frames += 1;
    if (frame.type === 'status') {
      if (frame.status && ENDED.has(frame.status)) {
        state.status = frame.status;
        $('headline').textContent = t(`headline.${frame.status}`);
        showCourier(null);
      }
      refresh();
    } else if (frame.type === 'courier_position') {
      if (ENDED.has(state.status)) return;
      state.positions += 1;
      state.lastPosition = [frame.lat, frame.lng];
      showCourier(frame);
      if (frame.eta_seconds !== undefined && frame.eta_to === 'dropoff') {
        renderEta(new Date(new Date(frame.at).getTime() + frame.eta_seconds * 1000).toISOString(), state.status);
      }
    }
  }

  let retry = 1000, poller = null, socket = null;
  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/v1/orders/${encodeURIComponent(orderId)}/tracking/ws?token=${encodeURIComponent(token)}`);
    socket.onopen = () => {
      state.socketOpen = true;
      retry = 1000;
      $('reconnecting').classList.add('hidden');
      if (poller) { clearInterval(poller); poller = null; }
      refresh();
    };
    socket.onmessage = ev => { try { onFrame(JSON.parse(ev.data)); } catch (e) { /* not ours */ } };
    socket.onclose = ev => {
      state.socketOpen = false;
      if (ev.code === 4410) { refresh(); return; }  // the link was revoked or expired: the view says which
      if (state.error) return;
      if (state.status === 'delivered') return;  // nothing more will happen
      $('reconnecting').classList.remove('hidden');
      if (!poller) poller = setInterval(refresh, 5000);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  window.addEventListener('online', () => { if (socket && socket.readyState > 1) connect(); });
  setInterval(() => { if (state.view) renderEta(state.view.eta, state.status); }, 30000);
  // The estimate also moves between events (a courier on the way to the restaurant, a kitchen running late).
  setInterval(() => { if (state.socketOpen && !ENDED.has(state.status)) refresh(); }, 15000);

  (async () => {
    if (!orderId) { problem(t('track.link_invalid')); return; }
    if (await refresh()) connect();
  })();
})();
