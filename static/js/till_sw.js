/* The till's service worker, served by pos.hall.till at /till/sw.js (scope /till, allowed by its
 * Service-Worker-Allowed header) with VERSION, PAGE and ASSETS filled in: VERSION is a hash of the
 * till page's template and every asset, so a deploy that changes any of them installs a new worker
 * and a new cache, and the old cache is dropped.
 *
 * The till page: network first (a fresh page, with a fresh CSRF token, whenever the server
 * answers), the last good copy when it does not. The page's scripts and styles: from the cache of
 * this version. Everything else (the JSON API above all) is not touched: the page's script
 * decides what to do when the server cannot be reached.
 */
/* global self, caches, fetch, Response */
const VERSION = "__VERSION__";
const PAGE = "__PAGE__";
const ASSETS = __ASSETS__;
const CACHE = "songtao-till-" + VERSION;

/** The page as the logged-in cashier has it now (the page that registered this worker was
 *  fetched before it existed); never a login page that a redirect gave instead. */
async function keepPage(cache) {
  try {
    const response = await fetch(PAGE, { credentials: "same-origin", cache: "no-store" });
    if (response.ok && !response.redirected) await cache.put(PAGE, response);
  } catch (e) { /* offline already: the next navigation keeps it */ }
}

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(ASSETS).then(() => keepPage(cache)))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("songtao-till-") && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

async function page(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected) {
      await cache.put(PAGE, response.clone());
    }
    return response;
  } catch (e) {
    const cached = (await cache.match(PAGE)) || (await caches.match(PAGE));
    if (cached) return cached;
    throw e;
  }
}

async function asset(request) {
  const cached = await caches.match(request, { ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) (await caches.open(CACHE)).put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === PAGE && request.mode === "navigate") {
    event.respondWith(page(request));
  } else if (ASSETS.includes(url.pathname)) {
    event.respondWith(asset(request));
  }
});
