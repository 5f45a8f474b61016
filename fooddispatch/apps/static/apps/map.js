/* FDMap: the one map setup of our pages, on the vendored Leaflet (/assets/vendor/leaflet/).
 * With a tile server configured (GET /v1/maps/config: FOODDISPATCH_MAP_TILE_URL) the map draws streets with
 * the attribution shown; without one, or offline, it draws zones, restaurants and routes on a plain
 * background. Everything drawn here is vector (no marker images), so it needs nothing from the network. */
(function () {
  'use strict';
  let configPromise = null;
  function config() {
    if (!configPromise) {
      configPromise = fetch('/v1/maps/config').then(r => (r.ok ? r.json() : {})).catch(() => ({}));
    }
    return configPromise;
  }
  const COLORS = { restaurant: '#e8590c', dropoff: '#1c7ed6', courier: '#2b8a3e', route: '#495057', zone: '#7048e8' };

  async function create(el, opts) {
    opts = opts || {};
    const map = L.map(el, { zoomControl: true, attributionControl: true, preferCanvas: false })
      .setView(opts.center || [52.52, 13.405], opts.zoom || 14);
    const cfg = await config();
    if (cfg.tile_url) {
      L.tileLayer(cfg.tile_url, { attribution: cfg.attribution || '', maxZoom: 19, crossOrigin: true }).addTo(map);
      el.classList.add('fd-tiles');
    } else {
      el.classList.add('fd-plain');
    }
    return map;
  }

  function dot(map, lat, lng, color, radius, label) {
    const m = L.circleMarker([lat, lng], { radius: radius, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1 });
    if (label) m.bindTooltip(label, { direction: 'top', offset: [0, -radius] });
    return m.addTo(map);
  }

  function restaurant(map, lat, lng, name) { return dot(map, lat, lng, COLORS.restaurant, 9, name || 'Restaurant'); }
  function dropoff(map, lat, lng, label) { return dot(map, lat, lng, COLORS.dropoff, 8, label || 'Drop-off'); }

  /* A courier marker that moves; `place(null)` hides it. */
  function courier(map, label) {
    let marker = null;
    return {
      place(lat, lng) {
        if (lat === null || lat === undefined) {
          if (marker) { marker.remove(); marker = null; }
          return;
        }
        if (!marker) {
          marker = dot(map, lat, lng, COLORS.courier, 10, label || 'Courier');
        } else {
          marker.setLatLng([lat, lng]);
        }
      },
      label(text) { if (marker) marker.setTooltipContent(text); label = text; },
      get shown() { return marker !== null; },
      get latlng() { return marker ? marker.getLatLng() : null; },
    };
  }

  function route(map, points) {
    return L.polyline(points, { color: COLORS.route, weight: 3, dashArray: '6 6', opacity: 0.8 }).addTo(map);
  }

  /* A delivery zone (GeoJSON Polygon or MultiPolygon). */
  function zone(map, geojson, label) {
    const layer = L.geoJSON(geojson, { style: { color: COLORS.zone, weight: 1, fillOpacity: 0.06 } });
    if (label) layer.bindTooltip(label);
    return layer.addTo(map);
  }

  function fit(map, points, maxZoom) {
    const ok = points.filter(p => p && isFinite(p[0]) && isFinite(p[1]));
    if (ok.length === 1) map.setView(ok[0], maxZoom || 15);
    else if (ok.length > 1) map.fitBounds(L.latLngBounds(ok), { padding: [30, 30], maxZoom: maxZoom || 16 });
  }

  window.FDMap = { create, config, restaurant, dropoff, courier, route, zone, fit, dot, COLORS };
})();
