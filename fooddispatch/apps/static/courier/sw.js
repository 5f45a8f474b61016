/* The courier app's service worker: keeps the app's shell (page, scripts, styles, the map library) so the
 * app starts without a network; the page itself is always fetched fresh when the network is there.
 * API calls and sockets (/v1/...) are never cached. */
const SHELL = 'courier-shell-v2';
const FILES = [
  '/courier', '/courier/manifest.webmanifest',
  '/assets/courier/courier.js', '/assets/courier/courier.css', '/assets/courier/icon-192.png',
  '/assets/apps/apps.css', '/assets/apps/map.js', '/assets/apps/i18n.js',
  '/assets/vendor/leaflet/leaflet.js', '/assets/vendor/leaflet/leaflet.css',
];

self.addEventListener('install', event => {
  event.waitUntil(caches.open(SHELL).then(cache => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', event => {
  event.waitUntil(caches.keys()
    .then(keys => Promise.all(keys.filter(k => k !== SHELL).map(k => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', event => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== location.origin) return;
  const shell = event.request.mode === 'navigate' || FILES.includes(url.pathname);
  if (!shell) return;
  event.respondWith(
    fetch(event.request)
      .then(resp => {
        if (resp.ok) {
          const copy = resp.clone();
          caches.open(SHELL).then(cache => cache.put(event.request.mode === 'navigate' ? '/courier' : event.request, copy));
        }
        return resp;
      })
      .catch(() => caches.match(event.request.mode === 'navigate' ? '/courier' : event.request)));
});
