/* The till's offline half (loaded before till.js): the catalogue it sells from kept in IndexedDB
 * and refreshed from GET /api/v1/catalogue (everything once, then the changes since its cursor),
 * the scan, search and quick keys answered from it, and the till's reserved receipt numbers.
 * Plain JS on the raw IndexedDB API (three object stores, no wrapper needed), no build step.
 *
 * What it mirrors on the server, rule for rule: inventory.catalogue.resolve_scan (a barcode, its
 * UPC-A/EAN-13 twin, a scale label by the active rules, a sku), inventory.scale.decode (prefix,
 * length and the GS1 check digit; a label that fails the check is no label),
 * inventory.search (barcode, sku prefix, name, pinyin initials; best first, the most sold first within a rank).
 *
 * Exposes self.SongtaoOffline; till.js decides when to use it (the server stays authoritative
 * whenever it answers).
 */
(function (root) {
  "use strict";

  const DB_NAME = "songtao-till";
  const DB_VERSION = 1;
  const BLOCK_SIZE = 20;

  // ------------------------------------------------------------------ IndexedDB

  let dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB_NAME, DB_VERSION);
        req.onupgradeneeded = () => {
          const d = req.result;
          if (!d.objectStoreNames.contains("products")) d.createObjectStore("products", { keyPath: "product_id" });
          if (!d.objectStoreNames.contains("meta")) d.createObjectStore("meta", { keyPath: "key" });
          if (!d.objectStoreNames.contains("blocks")) d.createObjectStore("blocks", { keyPath: "key" });
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return dbPromise;
  }

  /** Run fn(stores…) in one transaction; resolves with fn's result when the transaction commits. */
  async function tx(names, mode, fn) {
    const d = await db();
    return new Promise((resolve, reject) => {
      const t = d.transaction(names, mode);
      let result;
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
      result = fn(...names.map((n) => t.objectStore(n)));
    });
  }

  const getAll = (store) => new Promise((resolve, reject) => {
    const req = store.getAll();
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

  // ------------------------------------------------------------------ the catalogue in memory

  const cat = {
    byId: new Map(), byCode: new Map(), byPlu: new Map(), bySku: new Map(),
    rules: [], quick: { most_sold: [], weighed: [], popular: [] }, settings: null, cursor: null, refreshedAt: null, loaded: false,
  };

  function index(p) {
    cat.byId.set(p.product_id, p);
    (p.barcodes || []).forEach((c) => cat.byCode.set(c, p.product_id));
    if (p.scale_plu != null) cat.byPlu.set(p.scale_plu, p.product_id);
    cat.bySku.set(p.sku, p.product_id);
  }

  function unindex(id) {
    const p = cat.byId.get(id);
    if (!p) return;
    (p.barcodes || []).forEach((c) => { if (cat.byCode.get(c) === id) cat.byCode.delete(c); });
    if (p.scale_plu != null && cat.byPlu.get(p.scale_plu) === id) cat.byPlu.delete(p.scale_plu);
    if (cat.bySku.get(p.sku) === id) cat.bySku.delete(p.sku);
    cat.byId.delete(id);
  }

  function applyMeta(m) {
    if (m.key === "cursor") cat.cursor = m.value;
    else if (m.key === "refreshed_at") cat.refreshedAt = m.value;
    else if (m.key === "scale_rules") cat.rules = m.value;
    else if (m.key === "quick_keys") cat.quick = m.value;
    else if (m.key === "settings") cat.settings = m.value;
  }

  /** What the browser holds, into memory (once per page load). */
  async function load() {
    try {
      const [products, meta] = await tx(["products", "meta"], "readonly", (ps, ms) => Promise.all([getAll(ps), getAll(ms)]));
      products.forEach(index);
      meta.forEach(applyMeta);
    } catch (e) { /* no IndexedDB (private window): the till works online only */ }
    cat.loaded = true;
    return cat;
  }

  /** Ask the server for what changed since the cursor (everything the first time) and keep it. */
  async function refresh(api, till) {
    const q = "/catalogue?" + (till ? "till=" + encodeURIComponent(till) + "&" : "") +
      (cat.cursor != null ? "since=" + encodeURIComponent(cat.cursor) : "");
    const r = await api("GET", q);
    if (!r.ok || !r.data) return r;
    const d = r.data;
    await tx(["products", "meta"], "readwrite", (ps, ms) => {
      if (d.full) ps.clear();
      d.products.forEach((p) => ps.put(p));
      d.removed.forEach((id) => ps.delete(id));
      [["cursor", d.cursor], ["refreshed_at", d.refreshed_at], ["scale_rules", d.scale_rules],
       ["quick_keys", d.quick_keys], ["settings", d.settings]].forEach(([key, value]) => ms.put({ key, value }));
    });
    if (d.full) { cat.byId.clear(); cat.byCode.clear(); cat.byPlu.clear(); cat.bySku.clear(); }
    d.removed.forEach(unindex);
    d.products.forEach((p) => { unindex(p.product_id); index(p); });
    [["cursor", d.cursor], ["refreshed_at", d.refreshed_at], ["scale_rules", d.scale_rules],
     ["quick_keys", d.quick_keys], ["settings", d.settings]].forEach(([key, value]) => applyMeta({ key, value }));
    return r;
  }

  // ------------------------------------------------------------------ a product as the API's ProductOut

  function productOut(p, day) {
    const c = root.SongtaoPricing.certifiedOn(p.certificates || [], day || root.SongtaoPricing.localDate(new Date()));
    return {
      product_id: p.product_id, sku: p.sku, name: p.name, unit: p.unit, sold_by_weight: !!p.sold_by_weight,
      price_fen: p.price_fen, certified: c.certified, certificate_no: c.certificate_no,
    };
  }

  // ------------------------------------------------------------------ the scan (resolve_scan)

  function eanValid(code) {
    if (!/^[0-9]+$/.test(code) || ![8, 12, 13, 14].includes(code.length)) return false;
    const body = code.slice(0, -1);
    let sum = 0;
    for (let i = 0; i < body.length; i++) sum += (i % 2 === 0 ? 3 : 1) * Number(body[body.length - 1 - i]);
    return String((10 - (sum % 10)) % 10) === code[code.length - 1];
  }

  function parseRule(pattern) {
    const m = /^(\d+)\{(P+|W+|\$+)\}\{(P+|W+|\$+)\}C$/.exec(pattern || "");
    if (!m) return null;
    const [, prefix, a, b] = m;
    const plu = a[0] === "P" ? [prefix.length, prefix.length + a.length] : [prefix.length + a.length, prefix.length + a.length + b.length];
    const value = a[0] === "P" ? [plu[1], plu[1] + b.length] : [prefix.length, prefix.length + a.length];
    const kind = (a[0] === "P" ? b : a)[0] === "W" ? "weight" : "price";
    return { prefix, plu, value, kind, length: prefix.length + a.length + b.length + 1 };
  }

  function decodeLabel(code, rules) {
    if (!/^[0-9]+$/.test(code)) return null;
    for (const pattern of rules) {
      const r = parseRule(pattern);
      if (!r || code.length !== r.length || !code.startsWith(r.prefix)) continue;
      if (!eanValid(code)) return null; // a misread: never a guess
      const plu = Number(code.slice(r.plu[0], r.plu[1]));
      const value = Number(code.slice(r.value[0], r.value[1]));
      return r.kind === "weight" ? { plu, weight: value } : { plu, price: value };
    }
    return null;
  }

  function normalise(code) {
    let c = String(code).normalize("NFKC").trim();
    if (/^[0-9][0-9 ]*[0-9]$/.test(c)) c = c.replace(/ /g, "");
    return c.toUpperCase();
  }

  function variants(code) {
    const v = [code];
    if (/^[0-9]+$/.test(code)) {
      if (code.length === 13 && code.startsWith("0")) v.push(code.slice(1));
      else if (code.length === 12) v.push("0" + code);
    }
    return v;
  }

  /** What the server's /products/lookup would answer, from the browser's catalogue: the product
   *  with qty_milli / amount_fen / source; {error} for a label that cannot be sold; null if unknown. */
  function lookup(code, messages) {
    const raw = String(code || "").normalize("NFKC").trim();
    // eslint-disable-next-line no-control-regex
    if (!raw || raw.length > 64 || /[\x00-\x1f\x7f]/.test(raw)) return null;
    const scanned = normalise(raw);
    const vs = variants(scanned);
    for (const v of vs) {
      const id = cat.byCode.get(v);
      if (id != null) return Object.assign(productOut(cat.byId.get(id)), { qty_milli: null, amount_fen: null, source: "barcode" });
    }
    if (/^[0-9]+$/.test(scanned) && cat.rules.length) {
      for (const v of vs) {
        const label = decodeLabel(v, cat.rules);
        if (!label) continue;
        const p = cat.byId.get(cat.byPlu.get(label.plu));
        if (!p) return null;
        if (!p.sold_by_weight) return { error: messages.not_weighed.replace("{name}", p.name) };
        if (label.weight != null) {
          if (label.weight <= 0) return { error: messages.zero_label };
          return Object.assign(productOut(p), { qty_milli: label.weight, amount_fen: null, source: "scale_weight" });
        }
        if (label.price <= 0 || p.price_fen <= 0) return { error: messages.zero_label };
        const qty = Math.floor((2 * label.price * 1000 + p.price_fen) / (2 * p.price_fen));
        return Object.assign(productOut(p), { qty_milli: qty, amount_fen: label.price, source: "scale_price" });
      }
    }
    let id = cat.bySku.get(raw);
    if (id == null) {
      const upper = raw.toUpperCase();
      for (const p of cat.byId.values()) { if (p.sku.toUpperCase() === upper && (id == null || p.product_id < id)) id = p.product_id; }
    }
    return id != null ? Object.assign(productOut(cat.byId.get(id)), { qty_milli: null, amount_fen: null, source: "sku" }) : null;
  }

  // ------------------------------------------------------------------ search (search_products)

  const FRAGMENT_MIN = 3; // inventory.search: below three Latin characters only prefixes match
  const SEARCH_CAP = 200;

  function search(q, limit) {
    const typed = String(q || "").trim().slice(0, 120);
    const text = typed.normalize("NFKC");
    if (!text) return [];
    const lowered = text.toLowerCase();
    const names = Array.from(new Set([typed.toLowerCase(), lowered]));
    // inventory.search.is_fragment: from three characters, or any Chinese text (茶, 蜂蜜)
    const fragments = names.filter((t) => Array.from(t).length >= FRAGMENT_MIN || /[^\x00-\x7f]/.test(t));
    const codes = new Set(variants(text.replace(/ /g, "").toUpperCase()));
    const squeezed = lowered.replace(/ /g, "");
    const initials = /^[0-9a-z]+$/.test(squeezed) ? squeezed : "";
    const sold = new Map((cat.quick.popular || []).map(([id, n]) => [id, n]));
    const hits = [];
    for (const p of cat.byId.values()) {
      const sku = p.sku.toLowerCase();
      const name = p.name.toLowerCase();
      const pinyin = p.pinyin_initials || "";
      const barcode = (p.barcodes || []).some((c) => codes.has(c));
      let rank = null;
      if (sku === lowered || barcode) rank = 0;
      else if (sku.startsWith(lowered)) rank = 1;
      else if (initials && pinyin.startsWith(initials)) rank = 2;
      else if (names.some((t) => name.startsWith(t))) rank = 3;
      else if (fragments.some((t) => name.includes(t)) || (initials.length >= FRAGMENT_MIN && pinyin.includes(initials))) rank = 4;
      if (rank != null) hits.push([rank, -(sold.get(p.product_id) || 0), sku, p]);
    }
    const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    hits.sort((a, b) => (a[0] - b[0]) || (a[1] - b[1]) || cmp(a[2], b[2]) || cmp(a[3].sku, b[3].sku));
    const day = root.SongtaoPricing.localDate(new Date());
    return hits.slice(0, Math.min(limit || 20, SEARCH_CAP)).map((h) => productOut(h[3], day));
  }

  function quickKeys() {
    const day = root.SongtaoPricing.localDate(new Date());
    const ids = (cat.quick.most_sold || []).concat(cat.quick.weighed || []);
    return ids.map((id) => cat.byId.get(id)).filter(Boolean).map((p) => productOut(p, day));
  }

  /** The certificates of a product as the catalogue holds them (for certifiedOn at the sale's time). */
  const product = (id) => cat.byId.get(id) || null;

  // ------------------------------------------------------------------ receipt numbers reserved for this till

  const blockKey = (till, day) => `${till}|${day}`;

  async function blocks(till) {
    try {
      const all = await tx(["blocks"], "readonly", (bs) => getAll(bs));
      return all.filter((b) => b.till === till);
    } catch (e) {
      return [];
    }
  }

  async function saveBlock(b) {
    await tx(["blocks"], "readwrite", (bs) => { bs.put(b); });
  }

  /** The next reserved number of the till for that local day, taken for good; null when none. */
  async function takeNumber(till, day) {
    const all = await blocks(till);
    const b = all.find((x) => x.day === day);
    if (!b || !b.numbers.length) return null;
    const n = b.numbers.shift();
    b.used = (b.used || []).concat([n]).slice(-500);
    await saveBlock(b);
    return n;
  }

  /** While online: what the server holds for the till (its unused numbers, less the ones this
   *  browser has taken for sales not yet sent), a block for today and tomorrow, topped up when half
   *  of a day's block is used. ``held``: the numbers of sales still waiting to be sent. */
  async function syncBlocks(api, till, days, held) {
    const r = await api("GET", "/receipt-blocks?till=" + encodeURIComponent(till));
    if (!r.ok || !r.data) return r;
    const mine = await blocks(till);
    const taken = new Set(held || []);
    mine.forEach((b) => (b.used || []).forEach((n) => taken.add(n)));
    const server = new Map((r.data.blocks || []).map((b) => [b.day, b.numbers]));
    for (const day of days) {
      const prev = mine.find((b) => b.day === day) || { key: blockKey(till, day), till, day, numbers: [], used: [], size: BLOCK_SIZE };
      prev.numbers = (server.get(day) || []).filter((n) => !taken.has(n));
      if (prev.numbers.length < BLOCK_SIZE / 2) {
        const more = await api("POST", "/receipt-blocks", { till, day, count: BLOCK_SIZE });
        if (more.ok && more.data && Array.isArray(more.data.numbers)) {
          prev.numbers = prev.numbers.concat(more.data.numbers.filter((n) => !taken.has(n)));
        }
      }
      await saveBlock(prev);
    }
    // blocks of days gone by are forgotten
    const keep = new Set(days);
    for (const b of mine) {
      if (!keep.has(b.day) && b.day < days[0]) await tx(["blocks"], "readwrite", (bs) => { bs.delete(b.key); });
    }
    return r;
  }

  async function numbersLeft(till, day) {
    const b = (await blocks(till)).find((x) => x.day === day);
    return b ? b.numbers.length : 0;
  }

  root.SongtaoOffline = {
    load, refresh, lookup, search, quickKeys, product, takeNumber, syncBlocks, numbersLeft,
    catalogue: cat, eanValid, decodeLabel,
  };
})(self);
