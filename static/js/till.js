/* The hall cashier screen (templates/pos/till.html). Plain JS, no build step.
 *
 * Money is integer fen and quantities integer thousandths (qty_milli) everywhere; amounts shown
 * are made as strings from integers, never by float arithmetic. The server prices every basket
 * (POST /api/v1/baskets/price) and records the sale; this script only keeps the basket.
 *
 * A sale is never recorded twice nor lost: its client_sale_id is made here when payment starts,
 * the whole sale is saved in localStorage before it is sent, and it is sent again (with backoff)
 * until the server answers; on reload, a sale still pending is sent again. The server treats a
 * repeated client_sale_id as the same sale.
 *
 * Offline (the server cannot be reached): scans, search and quick keys come from the catalogue the
 * browser keeps (static/js/till_offline.js), baskets are priced by self.SongtaoPricing with the
 * same rule as the server, and a cash sale is kept with the moment it was paid (sold_at), the unit
 * prices charged and a receipt number reserved for the till; it is sent, under its client_sale_id,
 * when the server answers again. What needs the server (a manager's PIN, voids, refunds, non-cash
 * payments, reports, closing) says so. The page itself comes from the service worker (/till/sw.js).
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("till-config").textContent);
  const MSG = JSON.parse(document.getElementById("till-messages").textContent);
  let CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const OFF = self.SongtaoOffline;
  const P = self.SongtaoPricing;
  const API_TIMEOUT_MS = 10000;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ------------------------------------------------------------------ formatting (integers only)

  function msg(key, vars) {
    return String(MSG[key] || key).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
  }

  function plainYuan(fen) {
    const neg = fen < 0;
    const a = Math.abs(fen);
    const f = a % 100;
    return (neg ? "-" : "") + String((a - f) / 100) + "." + String(f).padStart(2, "0");
  }

  function yuan(fen) {
    fen = Number(fen) || 0;
    const neg = fen < 0;
    const a = Math.abs(fen);
    const f = a % 100;
    const whole = String((a - f) / 100).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (neg ? "-" : "") + "¥" + whole + "." + String(f).padStart(2, "0");
  }

  function fmtQty(milli, byWeight) {
    const f = milli % 1000;
    const whole = String((milli - f) / 1000);
    if (byWeight) return whole + "." + String(f).padStart(3, "0");
    return f ? whole + "." + String(f).padStart(3, "0").replace(/0+$/, "") : whole;
  }

  /** "12.8", "¥12.80", "1,280" → fen; null when it is not an amount. */
  function parseYuan(text) {
    const t = String(text || "").trim().replace(/[,，\s]/g, "").replace(/^[¥￥]/, "");
    const m = /^(\d{0,9})(?:\.(\d{0,2}))?$/.exec(t);
    if (!m || !(m[1] || m[2])) return null;
    return Number(m[1] || "0") * 100 + Number((m[2] || "").padEnd(2, "0"));
  }

  /** "3" pieces or "0.523" kg → qty_milli; null when not a positive quantity of that kind. */
  function parseQty(text, byWeight) {
    const m = /^(\d{0,6})(?:\.(\d{0,3}))?$/.exec(String(text || "").trim());
    if (!m || !(m[1] || m[2])) return null;
    const frac = Number((m[2] || "").padEnd(3, "0"));
    if (!byWeight && frac) return null;
    const milli = Number(m[1] || "0") * 1000 + frac;
    return milli > 0 ? milli : null;
  }

  /** unit price × qty_milli / 1000, rounded half up to the fen (as inventory.money does). */
  function lineGross(priceFen, qtyMilli) {
    return SongtaoPricing.lineAmountFen(priceFen, qtyMilli);
  }

  /** part of an amount: amount × num / den, rounded half up. */
  function share(amount, num, den) {
    if (!den) return 0;
    return Number((BigInt(amount) * BigInt(num) * 2n + BigInt(den)) / (2n * BigInt(den)));
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // crypto.randomUUID exists only in secure contexts; a till PC may reach the server over plain http.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    }[c]));
  }

  // ------------------------------------------------------------------ storage

  const store = {
    get(key, fallback) {
      try {
        const v = localStorage.getItem(key);
        return v == null ? fallback : JSON.parse(v);
      } catch (e) {
        return fallback;
      }
    },
    set(key, value) {
      localStorage.setItem(key, JSON.stringify(value));
    },
    del(key) {
      localStorage.removeItem(key);
    },
  };
  const K = {
    till: "songtao.till",
    pending: "songtao.till.pending",
    basket: () => `songtao.till.${state.till}.basket`,
    parked: () => `songtao.till.${state.till}.parked`,
    last: () => `songtao.till.${state.till}.last`,
    shift: () => `songtao.till.${state.till}.shift`,
  };

  // ------------------------------------------------------------------ the API

  async function api(method, path, body, timeoutMs) {
    const opts = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": CSRF },
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    const abort = window.AbortController ? new AbortController() : null;
    const timer = abort ? setTimeout(() => abort.abort(), timeoutMs || API_TIMEOUT_MS) : null;
    if (abort) opts.signal = abort.signal;
    try {
      res = await fetch(cfg.api + path, opts);
    } catch (e) {
      setOffline(true);
      return { ok: false, network: true, status: 0, data: null };
    } finally {
      clearTimeout(timer);
    }
    if (res.status < 502 || res.status > 504) setOffline(false);
    // Offline sales are stamped by the server's clock when this PC's is more than 2 s off (the
    // Date header counts whole seconds: its middle is the best guess).
    const date = Date.parse(res.headers.get("Date") || "");
    if (!isNaN(date)) {
      const off = date + 500 - Date.now();
      clockOffset = Math.abs(off) > 2000 ? off : 0;
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    return { ok: res.ok, network: false, status: res.status, data };
  }

  /** The server did not answer (the network, or a proxy in front of a stopped server). */
  const unreachable = (r) => r.network || r.status === 502 || r.status === 504;

  function errorText(r) {
    if (r.network) return msg("offline");
    return (r.data && r.data.error) || msg("error", { error: r.status });
  }

  /** POST, and when the server answers that a manager must approve (403 on approval_pin), ask
   *  for the PIN and send again with it: the server checks the PIN, never this script. */
  async function postApproved(path, body) {
    let r = await api("POST", path, body);
    while (r.status === 403 && r.data && r.data.field === "approval_pin") {
      const pin = await askPin(errorText(r));
      if (pin == null) break;
      r = await api("POST", path, Object.assign({}, body, { approval_pin: pin }));
    }
    return r;
  }

  // ------------------------------------------------------------------ state

  const state = {
    till: null,
    shift: null,
    lines: [],          // {product_id, sku, name, sold_by_weight, price_fen, certified, qty_milli, line_discount_fen}
    orderDiscount: 0,
    selected: -1,
    priced: null,       // the server's Basket for the current lines
    priceSeq: 0,
    approvalPin: null,  // a manager's PIN for this sale's discount: kept in memory only, never stored
    pay: null,
    sending: false,
    offline: !navigator.onLine,  // the last request got no answer (or the browser says so)
  };

  function saveBasket() {
    if (state.till) store.set(K.basket(), { lines: state.lines, orderDiscount: state.orderDiscount });
  }

  function clearBasket() {
    state.lines = [];
    state.orderDiscount = 0;
    state.selected = -1;
    state.priced = null;
    state.approvalPin = null;
    saveBasket();
    render();
    reprice();
  }

  // ------------------------------------------------------------------ working offline

  let clockOffset = 0; // server clock − this PC's clock, from the last answer's Date header

  function setOffline(off) {
    if (state.offline === off) return;
    state.offline = off;
    renderNet();
    if (!off && scanMsg.dataset.offline) say("", "");
    if (!off) setTimeout(online, 0);
  }

  /** The hall's settings the till prices by: the catalogue's (fresher), else the page's. */
  function settings() {
    const c = OFF.catalogue.settings;
    return c || { rounding_to_jiao: cfg.rounding_to_jiao, discount_limit_percent: cfg.discount_limit_percent, hall_name: cfg.hall_name };
  }

  const serverNow = () => new Date(Date.now() + clockOffset);

  /** A moment as ISO 8601 in the hall's zone: 2026-12-05T23:59:07+08:00. */
  function shanghaiIso(d) {
    const parts = {};
    new Intl.DateTimeFormat("en-CA", {
      timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).formatToParts(d).forEach((p) => { parts[p.type] = p.value; });
    const ms = String(d.getUTCMilliseconds()).padStart(3, "0");
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}.${ms}+08:00`;
  }

  function nextDay(day) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + 1);
    return d.toISOString().slice(0, 10);
  }

  /** The basket priced in the browser, as the server's /baskets/price would (certified on ``day``). */
  function localBasket(lines, orderDiscount, paidInCash, day) {
    day = day || P.localDate(serverNow().toISOString());
    const priced = lines.map((l) => {
      const p = OFF.product(l.product_id);
      const cert = p ? P.certifiedOn(p.certificates, day) : { certified: !!l.certified, certificate_no: l.certificate_no || null };
      return {
        product_id: l.product_id, sku: l.sku, name: l.name, unit: l.unit || (l.sold_by_weight ? "kg" : "piece"),
        sold_by_weight: !!l.sold_by_weight, qty_milli: l.qty_milli, price_fen: l.price_fen,
        line_discount_fen: l.line_discount_fen || 0, certified: cert.certified, certificate_no: cert.certificate_no,
      };
    });
    const b = P.priceBasket(priced, { orderDiscountFen: orderDiscount, roundingToJiaoSetting: !!settings().rounding_to_jiao, paidInCash });
    b.local = true;
    return b;
  }

  function pendingCount() {
    return pendingList().length;
  }

  function renderNet() {
    $("#offline-badge").hidden = !state.offline;
    document.body.classList.toggle("is-offline", state.offline);
    const list = pendingList();
    const refused = list.filter((p) => p.error).length;
    const q = $("#queue-info");
    q.hidden = !list.length;
    q.textContent = list.length ? msg("queue", { n: list.length }) + (refused ? " · " + msg("queue_refused", { n: refused }) : "") : "";
    q.title = list.filter((p) => p.error).map((p) => p.error).join("\n");
    const at = OFF.catalogue.refreshedAt;
    $("#catalogue-info").textContent = at ? msg("catalogue_at", { at: localTime(at) }) : msg("catalogue_none");
  }

  /** Said instead of doing what needs the server, while it cannot be reached. */
  function needsNetwork(what) {
    if (!state.offline) return false;
    flashError(msg("need_network", { what: msg(what) }));
    scanMsg.dataset.offline = "1"; // cleared when the server answers again
    return true;
  }

  let refreshing = false;
  /** The catalogue's changes since the last refresh, the receipt numbers, then the waiting sales. */
  async function refreshOffline() {
    if (refreshing || !state.till) return;
    refreshing = true;
    try {
      const r = await OFF.refresh(api, state.till);
      if (r.ok) {
        renderNet();
        if (!quickLoaded) loadQuick();
        const today = P.localDate(serverNow().toISOString());
        const held = pendingList().map((p) => p.sale.receipt_no).filter(Boolean);
        await OFF.syncBlocks(api, state.till, [today, nextDay(today)], held);
      }
    } catch (e) { /* the next tick tries again */ }
    refreshing = false;
    await flushQueue();
  }

  function online() {
    refreshOffline();
  }

  let flushing = false;
  /** Send the sales made offline, oldest first, each under its own client_sale_id: a sale the
   *  server already has is answered as a duplicate, so a sale is recorded once however often this
   *  runs. Stops at the first unanswered request; a refused sale stays, marked, for the manager. */
  async function flushQueue() {
    if (flushing || state.sending) return;
    flushing = true;
    try {
      for (const p of pendingList()) {
        if (!p.offline || p.error) continue;
        let r = await api("POST", "/sales", p.sale);
        if (r.status === 400 && await refreshCsrf()) r = await api("POST", "/sales", p.sale);
        if (r.ok) {
          dropPending(p.sale.client_sale_id);
          const no = r.data && (r.data.receipt_no || (r.data.sale && r.data.sale.receipt_no));
          if (no) store.set(K.last(), { receipt_no: no, total_fen: r.data.total_fen, shift_id: state.shift ? state.shift.id : null });
          continue;
        }
        if (unreachable(r) || r.status >= 500 || r.status === 401 || r.status === 408 || r.status === 429 || r.status === 400) break;
        p.error = errorText(r); // refused (422, 409 …): kept, shown, never sent again by itself
        savePending(p);
      }
    } finally {
      flushing = false;
      renderNet();
    }
  }

  /** The page may come from the service worker's cache with an old CSRF token: take a fresh one. */
  async function refreshCsrf() {
    try {
      const res = await fetch(cfg.sw_scope, { credentials: "same-origin", cache: "no-store" });
      const m = /<meta name="csrf-token" content="([^"]+)"/.exec(await res.text());
      if (m && m[1] !== CSRF) { CSRF = m[1]; return true; }
    } catch (e) { /* still offline */ }
    return false;
  }

  window.addEventListener("online", () => online());
  window.addEventListener("offline", () => setOffline(true));
  setInterval(() => {
    if (state.offline || pendingList().some((p) => p.offline && !p.error)) refreshOffline();
  }, 10000);
  setInterval(() => { if (!state.offline) refreshOffline(); }, 120000);

  // ------------------------------------------------------------------ dialogs and focus

  const scan = $("#scan");
  const NOT_CANCELLABLE = new Set(["dlg-till", "dlg-open", "dlg-handover", "dlg-sending"]);
  // Choosing the till, opening the shift and taking over another's shift block the till but not
  // the top bar (one may log out).
  const GATES = new Set(["dlg-till", "dlg-open", "dlg-handover"]);

  function openDialogs() {
    return $$("dialog[open]");
  }

  function topDialog() {
    const open = openDialogs();
    return open.length ? open[open.length - 1] : null;
  }

  function focusScan() {
    if (!openDialogs().length) scan.focus();
  }

  function showDialog(id, focusSel) {
    const d = document.getElementById(id);
    setError(d, "");
    if (!d.open) {
      if (GATES.has(id)) {
        d.show();
        document.body.classList.add("gated");
      } else {
        d.showModal();
      }
    }
    const target = focusSel ? $(focusSel, d) : $("input:not([type=radio]):not([type=checkbox]), button", d);
    if (target) {
      target.focus();
      if (target.select) target.select();
    }
    return d;
  }

  function closeDialog(d) {
    if (typeof d === "string") d = document.getElementById(d);
    if (d && d.open) d.close();
  }

  function setError(d, text) {
    const p = $("[data-error]", d);
    if (p) p.textContent = text || "";
  }

  function fill(name, text) {
    $$(`[data-fill="${name}"]`).forEach((el) => { el.textContent = text; });
  }

  $$("dialog").forEach((d) => {
    d.addEventListener("cancel", (e) => {
      e.preventDefault(); // Esc is handled by the keyboard handler below
    });
    d.addEventListener("close", () => {
      if (!$$("dialog.gate[open]").length) document.body.classList.remove("gated");
      if (d._onClose) {
        const fn = d._onClose;
        d._onClose = null;
        fn();
      }
      setTimeout(focusScan, 0);
    });
  });

  // the scan field keeps the focus whatever is clicked, so a scanner can always be used
  scan.addEventListener("blur", () => setTimeout(focusScan, 0));
  document.addEventListener("click", (e) => {
    if (!openDialogs().length && !e.target.closest("input, select, textarea")) focusScan();
  });

  /** Ask a manager's PIN; resolves with the PIN or null when cancelled. */
  function askPin(why) {
    return new Promise((resolve) => {
      const d = document.getElementById("dlg-pin");
      fill("pin-why", why || "");
      const form = $("form", d);
      form.reset();
      d._resolve = (v) => { d._resolve = null; resolve(v); };
      d._onClose = () => { if (d._resolve) d._resolve(null); };
      showDialog("dlg-pin", "input[name=pin]");
    });
  }

  $('[data-form="pin"]').addEventListener("submit", (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-pin");
    const pin = e.target.pin.value.trim();
    if (!/^\d{4,8}$/.test(pin)) { setError(d, msg("pin_wrong")); return; }
    const resolve = d._resolve;
    d._resolve = null;
    d._onClose = null;
    closeDialog(d);
    if (resolve) resolve(pin);
  });

  // ------------------------------------------------------------------ messages and the beep

  let audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.type = "square";
      o.frequency.value = 880;
      g.gain.value = 0.15;
      o.connect(g);
      g.connect(audio.destination);
      o.start();
      o.stop(audio.currentTime + 0.3);
    } catch (e) { /* no sound card: the flash says it */ }
  }

  const scanMsg = $("#scan-msg");
  let msgTimer = null;
  function say(text, kind) {
    delete scanMsg.dataset.offline;
    scanMsg.textContent = text;
    scanMsg.className = "scan-msg " + (kind || "");
    clearTimeout(msgTimer);
    if (kind !== "error" && kind !== "warn") msgTimer = setTimeout(() => { scanMsg.textContent = ""; scanMsg.className = "scan-msg"; }, 4000);
  }

  function flashError(text) {
    beep();
    say(text, "error");
    scan.classList.remove("flash");
    void scan.offsetWidth; // restart the animation
    scan.classList.add("flash");
  }
  scan.addEventListener("animationend", () => scan.classList.remove("flash"));

  // ------------------------------------------------------------------ rendering

  const tbody = $("#lines tbody");

  function pricedLine(i) {
    const p = state.priced;
    if (p && p.lines && p.lines.length === state.lines.length) return p.lines[i];
    return null;
  }

  function render() {
    const rows = state.lines.map((l, i) => {
      const pl = pricedLine(i);
      const unit = pl ? pl.unit_price_fen : l.price_fen;
      const gross = pl ? pl.gross_fen : lineGross(l.price_fen, l.qty_milli);
      const qty = fmtQty(l.qty_milli, l.sold_by_weight) + (l.sold_by_weight ? " kg" : "");
      return `<tr data-index="${i}" class="${i === state.selected ? "selected" : ""}" aria-selected="${i === state.selected}">
        <td class="no">${i + 1}</td>
        <td class="name">${l.certified ? `<span class="cert" title="${esc(msg("certified"))}">★</span>` : ""}${l.warning ? `<span class="line-warning" title="${esc(l.warning)}">⚠</span>` : ""}${esc(l.name)}
          <small class="muted">${esc(l.sku || "")}</small></td>
        <td class="num">${yuan(unit)}${l.sold_by_weight ? esc(msg("per_kg")) : ""}</td>
        <td class="num"><button type="button" class="qty" data-line-action="qty">${qty}</button></td>
        <td class="num">${l.line_discount_fen ? "-" + yuan(l.line_discount_fen) : ""}</td>
        <td class="num amount">${yuan(gross - (l.line_discount_fen || 0))}</td>
        <td class="ops"><button type="button" class="rm" data-line-action="remove" aria-label="${esc(msg("remove"))}">×</button></td>
      </tr>`;
    });
    tbody.innerHTML = rows.join("");
    $("#basket-empty").hidden = state.lines.length > 0;
    const sel = tbody.querySelector("tr.selected");
    if (sel) sel.scrollIntoView({ block: "nearest" });
    renderTotals();
  }

  function localSubtotal() {
    return state.lines.reduce((sum, l) => sum + lineGross(l.price_fen, l.qty_milli), 0);
  }

  function renderTotals() {
    const p = state.priced;
    const current = p && p.lines && p.lines.length === state.lines.length;
    if (!state.lines.length) {
      ["#t-subtotal", "#t-discount", "#t-rounding", "#t-certified", "#t-total", "#t-cash-total"].forEach((s) => { $(s).textContent = yuan(0); });
      $("#t-items").textContent = "";
      $("#t-cash-row").hidden = true;
      return;
    }
    if (current) {
      $("#t-subtotal").textContent = yuan(p.subtotal_fen);
      $("#t-discount").textContent = p.discount_fen ? "-" + yuan(p.discount_fen) : yuan(0);
      // 抹零 is for cash only: shown as what a wholly-cash payment saves, beside the cash total
      $("#t-rounding").textContent = p.cash_rounding_fen ? "-" + yuan(p.cash_rounding_fen) : yuan(0);
      $("#t-certified").textContent = yuan(p.certified_fen);
      $("#t-total").textContent = yuan(p.total_fen);
      $("#t-cash-total").textContent = yuan(p.cash_total_fen);
      $("#t-cash-row").hidden = p.cash_total_fen === p.total_fen;
    } else {
      $("#t-subtotal").textContent = yuan(localSubtotal());
      $("#t-total").textContent = msg("until_first_priced");
      $("#t-cash-row").hidden = true;
    }
    $("#t-items").textContent = msg("items", { n: state.lines.length });
  }

  // ------------------------------------------------------------------ pricing

  function payloadLines(lines) {
    return (lines || state.lines).map((l) => ({
      product_id: l.product_id,
      qty_milli: l.qty_milli,
      line_discount_fen: l.line_discount_fen || 0,
    }));
  }

  async function reprice() {
    const seq = ++state.priceSeq;
    if (!state.lines.length) {
      state.priced = null;
      renderTotals();
      return true;
    }
    // priced by the server with the hall's 抹零 setting: total_fen as paid by WeChat, Alipay, card …
    // (never rounded), cash_total_fen as paid wholly in cash (抹零 applies, when on)
    const r = state.offline ? { network: true } : await api("POST", "/baskets/price", {
      lines: payloadLines(),
      order_discount_fen: state.orderDiscount,
      paid_in_cash: false,
    });
    if (seq !== state.priceSeq) return false; // a newer basket is being priced
    if (unreachable(r) && OFF.catalogue.byId.size) {
      // offline: the same rule in the browser, from the prices the lines were scanned at
      try {
        state.priced = localBasket(state.lines, state.orderDiscount, false);
      } catch (e) { // what the server would refuse (a quantity too large …), said as it would
        state.priced = null;
        render();
        flashError(e.message);
        return false;
      }
      render();
      return true;
    }
    if (!r.ok) {
      state.priced = null;
      render();
      flashError(errorText(r));
      return false;
    }
    state.priced = r.data.basket || r.data;
    render();
    return true;
  }

  function changed() {
    saveBasket();
    render();
    reprice();
  }

  // ------------------------------------------------------------------ adding goods

  function normalise(p) {
    return {
      product_id: p.product_id != null ? p.product_id : p.id,
      sku: p.sku,
      name: p.name,
      sold_by_weight: !!p.sold_by_weight,
      unit: p.unit || (p.sold_by_weight ? "kg" : "piece"),
      price_fen: p.price_fen,
      certified: !!p.certified,
      warning: p.warning || null, // e.g. the books hold only expired lots of it: the cashier checks the shelf
    };
  }

  /** After a line is added: the server's warning about the product (sold all the same), or "added". */
  function announce(p, text) {
    if (p.warning) {
      beep();
      say(p.warning, "warn");
    } else {
      say(text, "ok");
    }
  }

  function addProduct(raw, qtyMilli) {
    const p = normalise(raw);
    if (qtyMilli == null && p.sold_by_weight) {
      askQty(p, null, (q) => addProduct(raw, q));
      return;
    }
    if (qtyMilli == null) {
      // the same barcode scanned again: one more piece on its line
      const i = state.lines.findIndex((l) => l.product_id === p.product_id && !l.sold_by_weight && !l.line_discount_fen);
      if (i >= 0) {
        state.lines[i].qty_milli += 1000;
        if (p.warning) state.lines[i].warning = p.warning;
        state.selected = i;
        announce(p, msg("added", { name: p.name }) + " ×" + fmtQty(state.lines[i].qty_milli, false));
        changed();
        return;
      }
      qtyMilli = 1000;
    }
    state.lines.push(Object.assign(p, { qty_milli: qtyMilli, line_discount_fen: 0 }));
    state.selected = state.lines.length - 1;
    announce(p, msg("added", { name: p.name }));
    changed();
    if (raw.source === undefined) checkWarning(p); // from search or a quick key: not looked up yet
  }

  /** Ask the server, as a scan does, whether the cashier should be warned about a product (the
   *  books hold it here only in expired lots); the line is marked, the sale is not held up. */
  async function checkWarning(p) {
    if (!state.till || !p.sku || state.offline) return;
    const r = await api("GET", "/products/lookup?code=" + encodeURIComponent(p.sku) + "&till=" + encodeURIComponent(state.till));
    if (!r.ok || !r.data || r.data.product_id !== p.product_id || !r.data.warning) return;
    const marked = state.lines.filter((l) => l.product_id === p.product_id);
    if (!marked.length) return;
    marked.forEach((l) => { l.warning = r.data.warning; });
    announce(r.data, "");
    saveBasket();
    render();
  }

  async function onScan(code) {
    code = code.trim();
    if (!code) return;
    if (!requireShift()) return;
    const r = state.offline ? { network: true } : await api("GET", "/products/lookup?code=" + encodeURIComponent(code) +
      (state.till ? "&till=" + encodeURIComponent(state.till) : ""));
    if (unreachable(r) && OFF.catalogue.byId.size) {
      const hit = OFF.lookup(code, { not_weighed: msg("not_weighed"), zero_label: msg("zero_label") });
      if (!hit) { flashError(msg("unknown_code", { code: code.slice(0, 64) })); return; }
      if (hit.error) { flashError(hit.error); return; }
      addProduct(hit, hit.qty_milli != null ? hit.qty_milli : null);
      return;
    }
    if (!r.ok) {
      if (r.status === 404 && self.SongtaoPaycode.providerForCode(code)) { flashError(msg("paycode_outside")); return; }
      flashError(r.status === 404 ? ((r.data && r.data.error) || msg("unknown_code", { code })) : errorText(r));
      return;
    }
    const p = r.data.product || r.data;
    addProduct(p, p.qty_milli != null ? p.qty_milli : null);
  }

  $("#scan-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const code = scan.value;
    scan.value = "";
    onScan(code);
  });

  // ------------------------------------------------------------------ quantity (and weight)

  let qtyDone = null;
  let qtyByWeight = false;

  function askQty(product, current, done) {
    qtyDone = done;
    qtyByWeight = product.sold_by_weight;
    const d = document.getElementById("dlg-qty");
    fill("qty-title", current == null ? msg("weight_title") : msg("qty_title"));
    fill("qty-product", product.name + " · " + yuan(product.price_fen) + (product.sold_by_weight ? msg("per_kg") : ""));
    fill("qty-label", product.sold_by_weight ? msg(current == null ? "weight_label" : "qty_label_weight") : msg("qty_label_pieces"));
    $("input[name=qty]", d).value = current == null ? "" : fmtQty(current, product.sold_by_weight);
    showDialog("dlg-qty", "input[name=qty]");
  }

  $('[data-form="qty"]').addEventListener("submit", (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-qty");
    const q = parseQty(e.target.qty.value, qtyByWeight);
    if (q == null) { setError(d, msg("bad_qty")); return; }
    const done = qtyDone;
    qtyDone = null;
    closeDialog(d);
    if (done) done(q);
  });

  function selectedLine() {
    return state.selected >= 0 && state.selected < state.lines.length ? state.lines[state.selected] : null;
  }

  function changeQty() {
    const l = selectedLine();
    if (!l) { flashError(msg("no_line")); return; }
    askQty(l, l.qty_milli, (q) => {
      l.qty_milli = q;
      if (l.line_discount_fen > lineGross(l.price_fen, q)) l.line_discount_fen = 0;
      changed();
    });
  }

  function removeLine(i) {
    if (i == null) i = state.selected;
    const l = state.lines[i];
    if (!l) { flashError(msg("no_line")); return; }
    state.lines.splice(i, 1);
    state.selected = Math.min(i, state.lines.length - 1);
    if (!state.lines.length) state.orderDiscount = 0;
    say(msg("removed", { name: l.name }), "ok");
    changed();
  }

  function moveSelection(delta) {
    if (!state.lines.length) return;
    state.selected = Math.max(0, Math.min(state.lines.length - 1, (state.selected < 0 ? state.lines.length : state.selected) + delta));
    render();
  }

  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-index]");
    if (!tr) return;
    const i = Number(tr.dataset.index);
    state.selected = i;
    const act = e.target.closest("[data-line-action]");
    if (act && act.dataset.lineAction === "remove") removeLine(i);
    else if (act && act.dataset.lineAction === "qty") { render(); changeQty(); }
    else render();
  });

  // ------------------------------------------------------------------ discounts

  function discountTotal() {
    return state.lines.reduce((s, l) => s + (l.line_discount_fen || 0), 0) + state.orderDiscount;
  }

  function openDiscount() {
    if (!state.lines.length) { flashError(msg("no_line")); return; }
    const d = document.getElementById("dlg-discount");
    const form = $("form", d);
    form.reset();
    if (!selectedLine()) form.target.value = "order";
    updateDiscountBase();
    showDialog("dlg-discount", "input[name=amount]");
  }

  function discountBase(target) {
    if (target === "line") {
      const l = selectedLine();
      return l ? lineGross(l.price_fen, l.qty_milli) : 0;
    }
    return localSubtotal() - state.lines.reduce((s, l) => s + (l.line_discount_fen || 0), 0);
  }

  function updateDiscountBase() {
    const form = $('[data-form="discount"]');
    const target = form.target.value;
    const l = selectedLine();
    fill("discount-base", target === "line" && l
      ? msg("discount_base_line", { name: l.name, amount: yuan(discountBase("line")) })
      : msg("discount_base_order", { amount: yuan(discountBase("order")) }));
  }
  $$('[data-form="discount"] input[name=target]').forEach((r) => r.addEventListener("change", () => {
    updateDiscountBase();
    $('[data-form="discount"] input[name=amount]').focus();
  }));

  /** "5" or "5.50" yuan off; "9折" / "8.5折" pays 90% / 85%; "10%" takes 10% off. */
  function parseDiscount(text, base) {
    const t = String(text || "").trim();
    let m = /^(\d{1,2})(?:\.(\d))?\s*折$/.exec(t);
    if (m) {
      const tenths = Number(m[1]) * 10 + Number(m[2] || "0"); // 8.5折 → 85
      if (m[1].length === 2 && !m[2]) return base - share(base, Number(m[1]), 100); // 95折 = 95%
      if (tenths <= 0 || tenths > 100) return null;
      return base - share(base, tenths, 100);
    }
    m = /^(\d{1,3})\s*[%％]$/.exec(t);
    if (m) {
      const pct = Number(m[1]);
      if (pct > 100) return null;
      return share(base, pct, 100);
    }
    return parseYuan(t);
  }

  $('[data-form="discount"]').addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-discount");
    const target = e.target.target.value;
    const base = discountBase(target);
    const amount = parseDiscount(e.target.amount.value, base);
    if (amount == null) { setError(d, msg("bad_amount")); return; }
    if (amount > base) { setError(d, msg("discount_too_big")); return; }
    const l = selectedLine();
    const before = { line: l ? l.line_discount_fen : 0, order: state.orderDiscount };
    if (target === "line" && l) l.line_discount_fen = amount;
    else state.orderDiscount = amount;
    closeDialog(d);
    const limit = Number(settings().discount_limit_percent);
    const total = discountTotal();
    if (total * 100 > localSubtotal() * limit && !state.approvalPin && state.offline) {
      if (target === "line" && l) l.line_discount_fen = before.line;
      else state.orderDiscount = before.order;
      changed();
      flashError(msg("need_network", { what: msg("w_approval") }));
      return;
    }
    if (total * 100 > localSubtotal() * limit && !state.approvalPin) {
      const pin = await askPin(msg("discount_pin", { amount: yuan(total), n: limit }));
      if (pin == null) {
        if (target === "line" && l) l.line_discount_fen = before.line;
        else state.orderDiscount = before.order;
        changed();
        return;
      }
      // Asked of the server (throttled there) before saying 店长已授权; the sale is checked again.
      const check = await api("POST", "/approvals", { till: state.till, approval_pin: pin, purpose: "discount" });
      if (!check.ok) {
        if (target === "line" && l) l.line_discount_fen = before.line;
        else state.orderDiscount = before.order;
        changed();
        flashError(check.status === 403 ? msg("pin_wrong") : errorText(check));
        return;
      }
      state.approvalPin = pin;
      say(msg("discount_approved"), "ok");
    }
    changed();
  });

  // ------------------------------------------------------------------ park and resume

  function parked() {
    return store.get(K.parked(), []);
  }

  function parkNow() {
    if (!state.lines.length) { flashError(msg("empty_basket")); return false; }
    const list = parked();
    list.push({
      id: uuid(),
      at: localTime(new Date().toISOString()).slice(11),
      lines: state.lines,
      orderDiscount: state.orderDiscount,
      subtotal: localSubtotal(),
    });
    store.set(K.parked(), list);
    say(msg("parked", { n: state.lines.length, amount: yuan(localSubtotal()) }), "ok");
    clearBasket();
    return true;
  }

  function renderParked() {
    const list = parked();
    $("#parked-list").innerHTML = list.length
      ? list.map((p, i) => `<li><button type="button" data-resume="${i}" class="result parked">
          <kbd>${i + 1}</kbd> ${esc(msg("parked_item", { time: p.at, n: p.lines.length, amount: yuan(p.subtotal) }))}
          <small class="muted">${esc(p.lines.slice(0, 3).map((l) => l.name).join(msg("list_sep")))}</small></button></li>`).join("")
      : `<li class="muted">${esc(msg("no_parked"))}</li>`;
    $('[data-action="park-now"]').disabled = !state.lines.length;
  }

  function openPark() {
    renderParked();
    showDialog("dlg-park", state.lines.length ? '[data-action="park-now"]' : "[data-resume]");
  }

  function resume(i) {
    const list = parked();
    const p = list[i];
    if (!p) return;
    list.splice(i, 1);
    store.set(K.parked(), list);
    if (state.lines.length) parkNow(); // the current sale waits in its place
    closeDialog("dlg-park");
    state.lines = p.lines;
    state.orderDiscount = p.orderDiscount || 0;
    state.selected = state.lines.length - 1;
    state.approvalPin = null;
    say(msg("resumed"), "ok");
    changed();
  }

  $("#parked-list").addEventListener("click", (e) => {
    const b = e.target.closest("[data-resume]");
    if (b) resume(Number(b.dataset.resume));
  });

  // ------------------------------------------------------------------ payment

  const payForm = $('[data-form="pay"]');
  const methodLabel = (code) => cfg.method_labels[code] || code;

  function renderMethods() {
    $("#pay-methods").innerHTML = cfg.methods.map((m, i) => `<button type="button" role="radio" data-method="${m.code}"
      aria-checked="${state.pay && state.pay.method === m.code}" class="method${state.pay && state.pay.method === m.code ? " on" : ""}">
      <kbd>Alt+${i + 1}</kbd> ${esc(m.label)}</button>`).join("");
  }

  function paid() {
    return state.pay.parts.reduce((s, p) => s + p.amount_fen, 0);
  }

  /** What the customer owes: the cash total (抹零) only while everything is paid in cash, as the
   *  server decides (pos.sales.pricing.cash_rounding_applies); any other method pays to the fen. */
  function due() {
    const pay = state.pay;
    const cashOnly = pay.parts.every((p) => p.method === "cash") && (pay.method === "cash" || paid() >= pay.totalCash);
    return cashOnly ? pay.totalCash : pay.totalOther;
  }

  function renderPay() {
    const pay = state.pay;
    const rest = due() - paid();
    fill("pay-total", yuan(due()));
    fill("pay-rest", yuan(rest));
    const change = pay.parts.reduce((s, p) => s + (p.tendered_fen != null ? p.tendered_fen - p.amount_fen : 0), 0);
    fill("pay-change", yuan(change));
    $('[data-show="change"]', payForm).hidden = rest !== 0 || !change;
    $("#pay-parts").innerHTML = pay.parts.map((p, i) => `<li>${p.method === "cash"
      ? esc(msg("pay_parts_cash", { amount: yuan(p.amount_fen), tendered: yuan(p.tendered_fen), change: yuan(p.tendered_fen - p.amount_fen) }))
      : esc(PAYCODE.partText(p) || methodLabel(p.method) + " " + yuan(p.amount_fen) + (p.ref ? " · " + p.ref : ""))}
      ${p.attempt_id ? "" : `<button type="button" class="rm" data-remove-part="${i}" aria-label="${esc(msg("remove"))}">×</button>`}</li>`).join("");
    renderMethods();
    const done = rest === 0;
    $('[data-role="pay-add"]', payForm).hidden = done;
    $('[data-action="pay-finish"]', payForm).hidden = !done;
    payForm.amount.disabled = done;
    fill("pay-amount-label", pay.method === "cash" ? msg("cash_amount_label") : msg("amount_label"));
    $('[data-show="ref"]', payForm).hidden = done || pay.method === "cash" || PAYCODE.needsCode(pay.method);
    if (done) {
      setError(document.getElementById("dlg-pay"), "");
      $('[data-action="pay-finish"]', payForm).focus();
    } else {
      payForm.amount.value = plainYuan(rest);
      payForm.amount.focus();
      payForm.amount.select();
    }
  }

  function chooseMethod(code) {
    if (!state.pay || PAYCODE.busy()) return; // a code being paid keeps its method
    if (state.pay.offline && code !== "cash") {
      setError(document.getElementById("dlg-pay"), msg("need_network", { what: methodLabel(code) }));
      return;
    }
    state.pay.method = code;
    payForm.ref.value = "";
    renderPay();
  }

  async function startPay() {
    if (!requireShift()) return;
    if (!state.lines.length) { flashError(msg("empty_basket")); return; }
    const ok = await reprice();
    if (!ok || !state.priced) return;
    // the sale's id is made now, once: whatever happens to the network, this is one sale
    state.pay = {
      clientSaleId: uuid(), totalOther: state.priced.total_fen, totalCash: state.priced.cash_total_fen,
      parts: [], method: "cash", offline: !!state.priced.local,
    };
    PAYCODE.reset();
    if (due() === 0) { submitSale(); return; }
    showDialog("dlg-pay", "input[name=amount]");
    renderPay();
  }

  payForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-pay");
    const pay = state.pay;
    if (PAYCODE.busy()) return;
    const rest = due() - paid();
    if (rest === 0) { submitSale(); return; }
    const typed = payForm.amount.value.trim() === "" ? rest : parseYuan(payForm.amount.value);
    if (typed == null || typed <= 0) { setError(d, msg("bad_amount")); return; }
    setError(d, "");
    if (pay.method === "cash") {
      const amount = Math.min(typed, rest);
      const cash = pay.parts.find((p) => p.method === "cash"); // at most one cash payment
      if (cash) {
        cash.amount_fen += amount;
        cash.tendered_fen += typed;
      } else {
        pay.parts.push({ method: "cash", amount_fen: amount, tendered_fen: typed, ref: null });
      }
    } else {
      if (typed > rest) { setError(d, msg("noncash_too_much")); return; }
      if (PAYCODE.needsCode(pay.method)) { setError(d, msg("paycode_scan", { method: methodLabel(pay.method) })); return; }
      pay.parts.push({ method: pay.method, amount_fen: typed, tendered_fen: null, ref: payForm.ref.value.trim() || null });
    }
    payForm.ref.value = "";
    renderPay();
  });

  document.getElementById("dlg-pay").addEventListener("click", (e) => {
    const m = e.target.closest("[data-method]");
    if (m) { chooseMethod(m.dataset.method); return; }
    const rm = e.target.closest("[data-remove-part]");
    if (rm) {
      state.pay.parts.splice(Number(rm.dataset.removePart), 1);
      renderPay();
    }
  });

  // a scanned payment code (付款码) pays through WeChat Pay or Alipay: static/js/till_paycode.js
  const PAYCODE = self.SongtaoPaycode.create({
    dialog: document.getElementById("dlg-pay"), api, msg, yuan, parseYuan, plainYuan, methodLabel,
    configured: (provider) => (cfg.paycode_providers || []).includes(provider),
    offline: () => state.offline, till: () => state.till, pay: () => state.pay,
    rest: () => due() - paid(), setMethod: chooseMethod, render: renderPay,
    setError: (text) => setError(document.getElementById("dlg-pay"), text), finish: submitSale,
  });

  // ------------------------------------------------------------------ submitting a sale

  function pendingList() {
    return store.get(K.pending, []);
  }

  function savePending(p) {
    const list = pendingList().filter((x) => x.sale.client_sale_id !== p.sale.client_sale_id);
    list.push(p);
    store.set(K.pending, list);
  }

  function dropPending(id) {
    store.set(K.pending, pendingList().filter((x) => x.sale.client_sale_id !== id));
  }

  function setNet(text) {
    const el = $("#net-status");
    el.hidden = !text;
    el.textContent = text || "";
    $("#sending-msg").textContent = text || msg("sending");
  }

  async function submitSale() {
    const pay = state.pay;
    if (!pay || state.sending) return;
    if (pay.offline) { await submitOffline(); return; }
    const sale = {
      client_sale_id: pay.clientSaleId,
      till: state.till,
      lines: payloadLines(),
      order_discount_fen: state.orderDiscount,
      payments: pay.parts.map((p) => Object.assign({ method: p.method, amount_fen: p.amount_fen, tendered_fen: p.tendered_fen, ref: p.ref },
                                                   p.attempt_id ? { attempt_id: p.attempt_id } : {})),
    };
    // saved before it is sent, and the basket emptied with it: a reload now resends this sale
    // instead of letting it be rung up again
    const pending = { sale, basket: { lines: state.lines, orderDiscount: state.orderDiscount }, pin: null };
    savePending(pending);
    const pin = state.approvalPin;
    state.lines = [];
    state.orderDiscount = 0;
    state.selected = -1;
    state.priced = null;
    state.approvalPin = null;
    state.pay = null;
    saveBasket();
    render();
    closeDialog("dlg-pay");
    await sendPending(pending, pin);
  }

  /** A cash sale made while the server cannot be reached: kept (before anything else happens) with
   *  the moment it was paid, the unit prices charged and a receipt number reserved for this till
   *  and day; flushQueue sends it when the server answers again. Its receipt prints in the browser. */
  async function submitOffline() {
    const pay = state.pay;
    state.pay = null;
    const soldAt = shanghaiIso(serverNow());
    const day = soldAt.slice(0, 10);
    const payments = pay.parts.map((p) => ({ method: p.method, amount_fen: p.amount_fen, tendered_fen: p.tendered_fen, ref: p.ref }));
    const priced = localBasket(state.lines, state.orderDiscount, payments.every((p) => p.method === "cash"), day);
    let receiptNo = null;
    try { receiptNo = await OFF.takeNumber(state.till, day); } catch (e) { receiptNo = null; }
    const sale = {
      client_sale_id: pay.clientSaleId,
      till: state.till,
      lines: state.lines.map((l) => ({ product_id: l.product_id, qty_milli: l.qty_milli,
                                       line_discount_fen: l.line_discount_fen || 0, unit_price_fen: l.price_fen })),
      order_discount_fen: state.orderDiscount,
      payments,
      rounding_to_jiao: !!settings().rounding_to_jiao,
      sold_at: soldAt,
    };
    if (receiptNo) sale.receipt_no = receiptNo;
    const receipt = {
      receipt_no: receiptNo, sold_at: soldAt, basket: priced, payments, till: tillName(state.till),
      cashier: cfg.user.name, hall: settings().hall_name,
      change_fen: payments.reduce((s, p) => s + (p.tendered_fen != null ? p.tendered_fen - p.amount_fen : 0), 0),
    };
    savePending({ sale, offline: true, receipt, basket: { lines: state.lines, orderDiscount: state.orderDiscount } });
    state.lines = [];
    state.orderDiscount = 0;
    state.selected = -1;
    state.priced = null;
    state.approvalPin = null;
    saveBasket();
    render();
    closeDialog("dlg-pay");
    renderNet();
    const html = offlineReceiptHtml(receipt);
    fill("receipt-change", receipt.change_fen ? msg("change", { amount: yuan(receipt.change_fen) }) : "");
    $("#receipt-body").innerHTML = html;
    showDialog("dlg-receipt", '[data-action="new-sale"]');
    printHtml(html); // the server cannot print it: the browser's print dialog, to the receipt printer
    flushQueue();
  }

  /** The receipt of an offline sale, receipt-sized, from what the browser priced. */
  function offlineReceiptHtml(r) {
    const b = r.basket;
    const row = (left, right, cls) => `<tr${cls ? ` class="${cls}"` : ""}><td>${left}</td><td class="num">${right}</td></tr>`;
    const lines = b.lines.map((l) => row(
      `${l.certified ? "★" : ""}${esc(l.name)}<br><small>${fmtQty(l.qty_milli, l.sold_by_weight)}${l.sold_by_weight ? " kg" : ""} × ${yuan(l.unit_price_fen)}${l.discount_fen ? " −" + yuan(l.discount_fen) : ""}</small>`,
      yuan(l.net_fen)));
    const paid = r.payments.map((p) => row(esc(methodLabel(p.method)), yuan(p.tendered_fen != null ? p.tendered_fen : p.amount_fen)));
    return `<div class="receipt offline-receipt" data-receipt-no="${esc(r.receipt_no || "")}">
      <h3 class="receipt-hall">${esc(r.hall || "")}</h3>
      <p>${esc(msg("r_receipt_no"))}：<strong data-fill-receipt-no>${esc(r.receipt_no || msg("receipt_no_later"))}</strong></p>
      <p>${esc(localTime(r.sold_at))} · ${esc(r.till)} · ${esc(r.cashier)}</p>
      <p class="offline-note">${esc(msg("offline_receipt"))}</p>
      <table class="receipt-lines">${lines.join("")}</table>
      <table class="receipt-sums">
        ${row(esc(msg("r_subtotal")), yuan(b.subtotal_fen))}
        ${b.discount_fen ? row(esc(msg("r_discount")), "−" + yuan(b.discount_fen)) : ""}
        ${b.rounding_fen ? row(esc(msg("r_rounding")), "−" + yuan(b.rounding_fen)) : ""}
        ${row(esc(msg("r_total")), yuan(b.total_fen), "strong")}
        ${paid.join("")}
        ${r.change_fen ? row(esc(msg("r_change")), yuan(r.change_fen)) : ""}
        ${row(esc(msg("r_certified")), yuan(b.certified_fen))}
      </table></div>`;
  }

  /** Send one pending sale until the server answers; show the receipt or put the basket back. */
  async function sendPending(pending, pin) {
    state.sending = true;
    setNet("");
    showDialog("dlg-sending");
    let delay = 1000;
    let result = null;
    for (;;) {
      const body = Object.assign({}, pending.sale);
      if (pin) body.approval_pin = pin;
      const r = await api("POST", "/sales", body);
      if (r.ok) { result = { ok: true, data: r.data }; break; }
      if (r.network || r.status >= 500 || r.status === 408 || r.status === 429 || r.status === 401) {
        // not answered: nothing was decided, so the same sale goes again
        setNet(r.network ? msg("network_retry") : r.status === 401 ? msg("login_expired") : msg("server_retry"));
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
        continue;
      }
      if (r.status === 403) {
        closeDialog("dlg-sending");
        pin = await askPin(errorText(r));
        if (pin != null) { showDialog("dlg-sending"); continue; }
        result = { ok: false, error: errorText(r) };
        break;
      }
      result = { ok: false, error: errorText(r) }; // refused (422, 409 …): nothing was recorded
      break;
    }
    state.sending = false;
    setNet("");
    dropPending(pending.sale.client_sale_id);
    closeDialog("dlg-sending");
    if (result.ok) {
      await saleDone(result.data);
    } else {
      if (!state.lines.length && pending.basket) {
        state.lines = pending.basket.lines;
        state.orderDiscount = pending.basket.orderDiscount || 0;
        state.selected = state.lines.length - 1;
        changed();
      }
      flashError(msg("sale_refused", { error: result.error }));
    }
  }

  async function resendPending() {
    const list = pendingList().filter((p) => !p.offline);
    for (const p of list) {
      $("#sending-msg").textContent = msg("pending_resend");
      await sendPending(p, null);
    }
  }

  async function saleDone(data) {
    const receiptNo = data.receipt_no || (data.sale && data.sale.receipt_no);
    const shiftId = state.shift ? state.shift.id : null;
    store.set(K.last(), { receipt_no: receiptNo, total_fen: data.total_fen, shift_id: shiftId });
    fill("receipt-change", data.change_fen ? msg("change", { amount: yuan(data.change_fen) }) : "");
    await showReceipt(receiptNo);
    printReceipt(receiptNo, false);  // after the sale is recorded; a failed print never undoes it
  }

  /** A print is queued on the server (202 with its job): ask for the job until it is printed or
   *  failed, so no request waits for the printer. Gives the last answer, like api(). */
  async function printJob(r) {
    let tries = 0;
    while (r.ok && r.data && r.data.status === "pending" && r.data.job_id && tries < 120) {
      tries += 1;
      await new Promise((done) => setTimeout(done, tries < 10 ? 300 : 1000));
      r = await api("GET", `/print-jobs/${encodeURIComponent(r.data.job_id)}`);
    }
    if (r.ok && r.data && r.data.status === "pending") {
      return { ok: true, network: false, status: r.status, data: { ok: false, error: msg("print_timeout") } };
    }
    return r;
  }

  /** Send the receipt to the till's printer; on failure show "print failed" with a reprint button. */
  async function printReceipt(receiptNo, reprint) {
    let status = $("#print-status");
    if (!status) {
      status = document.createElement("p");
      status.id = "print-status";
      status.className = "print-status";
      status.setAttribute("role", "status");
      $("#receipt-body").insertAdjacentElement("afterend", status);
    }
    status.textContent = "";
    const r = await printJob(await api("POST", `/sales/${encodeURIComponent(receiptNo)}/print`, { reprint }));
    if (r.ok && r.data && r.data.ok) {
      status.textContent = reprint ? msg("reprinted") : "";
      return;
    }
    const why = (r.data && r.data.error) || (r.network ? (MSG.offline || "") : "");
    status.textContent = `${msg("print_failed")}${why ? ": " + why : ""} `;
    const again = document.createElement("button");
    again.type = "button";
    again.dataset.reprint = receiptNo;
    again.textContent = msg("reprint");
    again.addEventListener("click", () => printReceipt(receiptNo, true));
    status.appendChild(again);
    // the server cannot print it: the browser's print dialog, to the receipt printer; the
    // ESC/POS copy stays one 重印 away (here, or in 最近小票 later)
    const browser = document.createElement("button");
    browser.type = "button";
    browser.dataset.browserPrint = receiptNo;
    browser.textContent = msg("browser_print");
    browser.addEventListener("click", () => printHtml($("#receipt-body").innerHTML));
    status.appendChild(document.createTextNode(" "));
    status.appendChild(browser);
    if (unreachable(r) && !reprint) printHtml($("#receipt-body").innerHTML);
  }

  async function showReceipt(receiptNo) {
    const body = $("#receipt-body");
    body.innerHTML = "";
    try {
      const res = await fetch(cfg.receipt_url.replace("RECEIPT_NO", encodeURIComponent(receiptNo)) + "?fragment=1", {
        credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
      });
      body.innerHTML = res.ok ? await res.text() : `<p>${esc(receiptNo)}</p>`;
    } catch (e) {
      body.innerHTML = `<p>${esc(receiptNo)}</p>`;
    }
    showDialog("dlg-receipt", '[data-action="new-sale"]');
  }

  // ------------------------------------------------------------------ recent receipts (reprint at any time)

  async function openRecent() {
    if (!state.till) { chooseTill(); return; }
    if (needsNetwork("w_recent")) return;
    const list = $("#recent-list");
    list.innerHTML = "";
    showDialog("dlg-recent", '[data-action="cancel"]');
    const r = await api("GET", "/sales/recent?till=" + encodeURIComponent(state.till));
    if (!r.ok) { setError(document.getElementById("dlg-recent"), errorText(r)); return; }
    const items = r.data.items || [];
    list.innerHTML = items.length ? items.map((s) => `<tr data-receipt="${esc(s.receipt_no)}">
        <td>${esc(s.receipt_no)}</td><td>${esc(s.sold_at_local || localTime(s.sold_at))}</td>
        <td class="num">${yuan(s.total_fen)}</td>
        <td>${s.status === "voided" ? esc(msg("recent_voided")) : ""}${s.reprint_count ? " " + esc(msg("recent_reprints", { n: s.reprint_count })) : ""}</td>
        <td><button type="button" data-reprint-recent="${esc(s.receipt_no)}">${esc(msg("reprint"))}</button>
          <span class="recent-status" role="status"></span></td></tr>`).join("")
      : `<tr><td colspan="5" class="muted">${esc(msg("recent_none"))}</td></tr>`;
    const first = $("[data-reprint-recent]", list);
    if (first) first.focus();
  }

  $("#recent-list").addEventListener("click", async (e) => {
    const b = e.target.closest("[data-reprint-recent]");
    if (!b || b.disabled) return;
    const status = $(".recent-status", b.closest("td"));
    b.disabled = true;
    status.textContent = "";
    // the print is queued on the server: ask for its job until it is printed or failed
    const r = await printJob(await api("POST", `/sales/${encodeURIComponent(b.dataset.reprintRecent)}/print`,
                                       { reprint: true }));
    b.disabled = false;
    if (r.ok && r.data && r.data.ok) {
      status.textContent = msg("reprinted");
    } else {
      const why = (r.data && r.data.error) || (r.network ? msg("offline") : "");
      status.textContent = `${msg("print_failed")}${why ? ": " + why : ""}`;
    }
  });

  // ------------------------------------------------------------------ printing

  function printHtml(html) {
    const area = $("#print-area");
    if (area.parentElement !== document.body) document.body.appendChild(area); // beside main, not in it
    const till = cfg.tills.find((t) => t.code === state.till);
    let page = document.getElementById("print-page");
    if (!page) {
      page = document.createElement("style");
      page.id = "print-page";
      document.head.appendChild(page);
    }
    page.textContent = `@page { size: ${till && till.paper_mm === 58 ? 58 : 80}mm auto; margin: 2mm; }`;
    area.innerHTML = html;
    document.body.classList.add("printing");
    window.print();
    document.body.classList.remove("printing");
  }

  // ------------------------------------------------------------------ refunds

  const refundForm = $('[data-form="refund"]');
  let refundSale = null;
  let refundId = null;

  function openRefund() {
    if (!requireShift() || needsNetwork("w_refund")) return;
    refundForm.reset();
    refundSale = null;
    refundId = null;
    $('[data-show="refund-sale"]', refundForm).hidden = true;
    $('[data-role="refund-submit"]', refundForm).hidden = true;
    $("[data-ok]", refundForm).textContent = "";
    showDialog("dlg-refund", "input[name=receipt_no]");
  }

  async function findRefundSale() {
    const d = document.getElementById("dlg-refund");
    const no = refundForm.receipt_no.value.trim();
    if (!no) return;
    $("[data-ok]", refundForm).textContent = "";
    // a typed receipt number or the receipt's scanned QR code (its URL): the server reads either
    const r = await api("GET", "/sales/lookup?code=" + encodeURIComponent(no));
    if (!r.ok) {
      setError(d, r.status === 404 ? msg("refund_not_found", { no: no.length > 64 ? no.slice(0, 64) + "…" : no }) : errorText(r));
      return;
    }
    setError(d, "");
    refundSale = r.data.sale || r.data;
    refundForm.receipt_no.value = refundSale.receipt_no; // the scanned URL becomes the number it names
    refundId = uuid(); // one refund, however often it is sent
    fill("refund-sale-info", msg("refund_info", { no: refundSale.receipt_no, at: refundSale.sold_at_local || "", total: yuan(refundSale.total_fen) }));
    $("#refund-lines tbody").innerHTML = refundSale.lines.map((l) => {
      const can = l.refundable_qty_milli;
      return `<tr data-line-id="${l.id}" data-by-weight="${l.sold_by_weight ? 1 : 0}">
        <td><input type="checkbox" name="pick" ${can > 0 ? "" : "disabled"} aria-label="${esc(l.name)}"></td>
        <td>${l.certified ? '<span class="cert">★</span>' : ""}${esc(l.name)}</td>
        <td class="num">${fmtQty(l.qty_milli, l.sold_by_weight)}</td>
        <td class="num">${fmtQty(can, l.sold_by_weight)}</td>
        <td class="num"><input name="qty" class="qty-in" inputmode="decimal" autocomplete="off" value="" ${can > 0 ? "" : "disabled"}></td>
        <td><select name="dest" ${can > 0 ? "" : "disabled"}><option value="stock">${esc(msg("back_to_stock"))}</option>
          <option value="damaged">${esc(msg("damaged"))}</option></select></td></tr>`;
    }).join("");
    $('[data-show="refund-sale"]', refundForm).hidden = false;
    $('[data-role="refund-submit"]', refundForm).hidden = false;
    updateRefundEstimate();
    const first = $("#refund-lines input[name=pick]:not([disabled])");
    if (first) first.focus();
  }

  function refundPicks() {
    const picks = [];
    let bad = false;
    $$("#refund-lines tbody tr").forEach((tr) => {
      const pick = $("input[name=pick]", tr);
      if (!pick.checked) return;
      const line = refundSale.lines.find((l) => String(l.id) === tr.dataset.lineId);
      const q = parseQty($("input[name=qty]", tr).value, line.sold_by_weight);
      if (q == null || q > line.refundable_qty_milli) { bad = true; return; }
      picks.push({ line, qty: q, back_to_stock: $("select[name=dest]", tr).value === "stock" });
    });
    return bad ? null : picks;
  }

  function updateRefundEstimate() {
    const picks = refundPicks() || [];
    const est = picks.reduce((s, p) => s + share(p.line.net_fen, p.qty, p.line.qty_milli), 0);
    fill("refund-estimate", yuan(est));
  }

  $("#refund-lines").addEventListener("change", (e) => {
    const tr = e.target.closest("tr");
    if (e.target.name === "pick" && tr) {
      const qty = $("input[name=qty]", tr);
      const line = refundSale.lines.find((l) => String(l.id) === tr.dataset.lineId);
      qty.value = e.target.checked ? fmtQty(line.refundable_qty_milli, line.sold_by_weight) : "";
    }
    if (e.target.name === "qty" && tr) $("input[name=pick]", tr).checked = e.target.value.trim() !== "";
    updateRefundEstimate();
  });
  $("#refund-lines").addEventListener("input", updateRefundEstimate);

  refundForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-refund");
    const no = refundForm.receipt_no.value.trim();
    if (!refundSale || refundSale.receipt_no !== no) { await findRefundSale(); return; }
    const picks = refundPicks();
    if (!picks || !picks.length) { setError(d, msg("refund_none")); return; }
    if (!refundForm.reason.value.trim()) { refundForm.reason.focus(); return; }
    if (!refundForm.pin.value.trim()) { refundForm.pin.focus(); return; }
    const body = {
      client_refund_id: refundId,
      receipt_no: refundSale.receipt_no,
      lines: picks.map((p) => ({ sale_line_id: p.line.id, qty_milli: p.qty, back_to_stock: p.back_to_stock })),
      method: refundForm.method.value || null,
      reason: refundForm.reason.value.trim(),
      approval_pin: refundForm.pin.value.trim(),
      till: state.till, // the refund counts in this till's open shift (its cash leaves this drawer)
    };
    const r = await api("POST", "/refunds", body);
    if (!r.ok) {
      setError(d, errorText(r));
      refundForm.pin.value = "";
      return;
    }
    setError(d, "");
    const data = r.data.refund || r.data;
    const method = data.method || body.method || (refundSale.payments[0] && refundSale.payments[0].method);
    $("[data-ok]", refundForm).textContent = msg("refund_done", { no: data.refund_no, amount: yuan(data.total_fen), method: methodLabel(method) });
    // the refund receipt (naming the original) goes to this till's printer; a failure is only shown
    api("POST", `/refunds/${encodeURIComponent(data.refund_no)}/print`, {}).then(printJob).then((p) => {
      if (!(p.ok && p.data && p.data.ok)) {
        $("[data-ok]", refundForm).textContent += ` · ${msg("print_failed")}`;
      }
    });
    $('[data-show="refund-sale"]', refundForm).hidden = true;
    $('[data-role="refund-submit"]', refundForm).hidden = true;
    refundSale = null;
    refundForm.pin.value = "";
    $('[data-action="cancel"]', refundForm).focus();
  });

  // ------------------------------------------------------------------ void the last sale

  const voidForm = $('[data-form="void"]');
  function openVoid() {
    if (!requireShift() || needsNetwork("w_void")) return;
    const last = store.get(K.last(), null);
    if (!last || !last.receipt_no || last.shift_id !== state.shift.id) { flashError(msg("void_none")); return; }
    voidForm.reset();
    fill("void-info", msg("void_info", { no: last.receipt_no, amount: yuan(last.total_fen || 0) }));
    showDialog("dlg-void", "input[name=reason]");
  }

  voidForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-void");
    const last = store.get(K.last(), null);
    const r = await api("POST", `/sales/${encodeURIComponent(last.receipt_no)}/void`, {
      approval_pin: voidForm.pin.value.trim(), reason: voidForm.reason.value.trim(),
    });
    if (!r.ok) { setError(d, errorText(r)); voidForm.pin.value = ""; return; }
    store.del(K.last());
    closeDialog(d);
    say(msg("voided", { no: last.receipt_no }), "ok");
  });

  // ------------------------------------------------------------------ cash in and out

  const cashForm = $('[data-form="cash"]');
  function openCash() {
    if (!requireShift() || needsNetwork("w_cash")) return;
    cashForm.reset();
    showDialog("dlg-cash", "input[name=amount]");
  }

  cashForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-cash");
    const amount = parseYuan(cashForm.amount.value);
    if (!amount) { setError(d, msg("bad_amount")); return; }
    const kind = cashForm.kind.value;
    const reason = cashForm.reason.value.trim();
    if (!reason) { cashForm.reason.focus(); return; }
    const r = await postApproved(`/shifts/${state.shift.id}/cash`, { kind, amount_fen: amount, reason });
    if (!r.ok) { setError(d, errorText(r)); return; }
    closeDialog(d);
    say(msg("cash_done", { kind: msg(kind === "in" ? "cash_in" : "cash_out"), amount: yuan(amount) }), "ok");
  });

  // ------------------------------------------------------------------ X and Z reports, closing

  function byMethod(obj) {
    const entries = Object.entries(obj || {}).filter(([, v]) => v);
    if (!entries.length) return esc(msg("r_none"));
    return entries.map(([k, v]) => `${esc(methodLabel(k))} ${yuan(v)}`).join("<br>");
  }

  const minus = (fen) => (fen ? "-" + yuan(fen) : yuan(0));

  function reportHtml(rep, title) {
    const shift = rep.shift || {};
    const row = (key, value, cls) => `<tr${cls ? ` class="${cls}"` : ""}><th>${esc(msg(key))}</th><td class="num">${value}</td></tr>`;
    const when = (v) => esc(localTime(v));
    const head = [
      row("r_till", esc(shift.till || state.till)),
      row("r_shift", "#" + esc(shift.id || (state.shift && state.shift.id) || "")),
      row("r_opened", when(shift.opened_at)),
    ];
    if (shift.closed_at) head.push(row("r_closed", when(shift.closed_at)));
    head.push(
      row("r_sales_count", esc(rep.sales_count)),
      row("r_total", yuan(rep.total_fen), "strong"),
      row("r_certified", yuan(rep.certified_fen)),
      row("r_voids", esc(rep.voids_count || 0)),
      row("r_takings", byMethod(rep.takings_by_method)),
      row("r_refunds", byMethod(rep.refunds_by_method)),
    );
    const cash = [
      row("r_float", yuan(rep.opening_float_fen)),
      row("r_cash_sales", yuan(rep.cash_sales_fen)),
      row("r_cash_refunds", minus(rep.cash_refunds_fen)),
      row("r_cash_in", yuan(rep.cash_in_fen)),
      row("r_cash_out", minus(rep.cash_out_fen)),
      row("r_expected", yuan(rep.expected_cash_fen), "strong"),
    ];
    if (rep.counted_cash_fen != null) {
      cash.push(row("r_counted", yuan(rep.counted_cash_fen), "strong"));
      const diff = rep.difference_fen != null ? rep.difference_fen : rep.counted_cash_fen - rep.expected_cash_fen;
      cash.push(row("r_difference", (diff > 0 ? "+" : "") + yuan(diff), diff ? "strong diff-bad" : "strong"));
    }
    return `<section class="report" data-report="${rep.counted_cash_fen != null ? "z" : "x"}"><h3 class="print-only">${esc(title)}</h3>
      <div class="report-cols"><table class="table report-table">${head.join("")}</table>
      <table class="table report-table cash">${cash.join("")}</table></div></section>`;
  }

  async function openXReport() {
    if (!requireShift() || needsNetwork("w_xreport")) return;
    const r = await api("GET", `/shifts/${state.shift.id}/report`);
    if (!r.ok) { flashError(r.status === 403 ? msg("report_not_yours", { error: errorText(r) }) : errorText(r)); return; }
    fill("report-title", msg("x_title"));
    $("#report-body").innerHTML = reportHtml(r.data.report || r.data, msg("x_title"));
    showDialog("dlg-report", '[data-action="cancel"]');
  }

  const closeForm = $('[data-form="close"]');
  let expectedCash = null;

  function counted() {
    return $$("#denoms input").reduce((s, inp) => {
      const n = /^\d{1,6}$/.test(inp.value.trim()) ? Number(inp.value.trim()) : 0;
      return s + n * Number(inp.dataset.fen);
    }, 0);
  }

  function updateClose() {
    $$("#denoms tbody tr").forEach((tr) => {
      const inp = $("input", tr);
      const n = /^\d{1,6}$/.test(inp.value.trim()) ? Number(inp.value.trim()) : 0;
      $(".sum", tr).textContent = yuan(n * Number(inp.dataset.fen));
    });
    const c = counted();
    fill("close-counted", yuan(c));
    if (expectedCash != null) {
      const diff = c - expectedCash;
      fill("close-diff", (diff > 0 ? "+" : "") + yuan(diff));
      $('[data-fill="close-diff"]').classList.toggle("diff-bad", diff !== 0);
    }
  }

  async function openClose() {
    if (!requireShift() || needsNetwork("w_close")) return;
    if (state.lines.length) { flashError(msg("resume_first")); return; }
    const waiting = pendingCount();
    if (waiting) { flashError(msg("close_waiting", { n: waiting })); refreshOffline(); return; }
    $("#denoms tbody").innerHTML = cfg.denominations.map((d) => `<tr><th>${esc(d.label)}</th>
      <td class="num"><input inputmode="numeric" autocomplete="off" data-fen="${d.fen}" aria-label="${esc(d.label)}" value=""></td>
      <td class="num sum">¥0.00</td></tr>`).join("");
    expectedCash = null;
    fill("close-expected", "…");
    fill("close-diff", "…");
    showDialog("dlg-close", "#denoms input");
    updateClose();
    const r = await api("GET", `/shifts/${state.shift.id}/report`);
    if (r.ok) {
      const rep = r.data.report || r.data;
      expectedCash = rep.expected_cash_fen;
      fill("close-expected", yuan(expectedCash));
      updateClose();
    }
  }

  $("#denoms").addEventListener("input", updateClose);
  $("#denoms").addEventListener("keydown", (e) => {
    // Enter moves to the next denomination; on the last one it moves to 确认交班 and never
    // submits by itself, so a count half typed (or not typed at all) is not sent by a stray Enter
    if (e.key !== "Enter") return;
    const inputs = $$("#denoms input");
    const i = inputs.indexOf(e.target);
    if (i < 0) return;
    e.preventDefault();
    if (i < inputs.length - 1) {
      inputs[i + 1].focus();
      inputs[i + 1].select();
    } else {
      $('button[type="submit"]', closeForm).focus();
    }
  });

  closeForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-close");
    const denominations = {};
    for (const inp of $$("#denoms input")) {
      const t = inp.value.trim();
      if (t && !/^\d{1,6}$/.test(t)) { setError(d, msg("bad_qty")); inp.focus(); return; }
      if (t) denominations[inp.dataset.fen] = Number(t); // only what was counted: blank is not a count
    }
    if (!Object.keys(denominations).length) {  // the server refuses a blank count too
      setError(d, msg("count_required"));
      const first = $("#denoms input");
      if (first) first.focus();
      return;
    }
    const r = await postApproved(`/shifts/${state.shift.id}/close`, { denominations });
    if (!r.ok) { setError(d, errorText(r)); return; }
    const rep = r.data.report || r.data;
    closeDialog(d);
    state.shift = null;
    renderShift();
    const diff = rep.difference_fen != null ? rep.difference_fen : rep.counted_cash_fen - rep.expected_cash_fen;
    say(msg("shift_closed", { counted: yuan(rep.counted_cash_fen), expected: yuan(rep.expected_cash_fen), diff: yuan(diff) }), "ok");
    fill("report-title", msg("z_title"));
    $("#report-body").innerHTML = reportHtml(rep, msg("z_title"));
    const dlg = showDialog("dlg-report", '[data-action="print"]');
    dlg._onClose = () => loadShift(); // then the next cashier opens a shift
  });

  // ------------------------------------------------------------------ till and shift

  function tillName(code) {
    const t = cfg.tills.find((x) => x.code === code);
    return t ? `${t.code} · ${t.name}` : code;
  }

  function chooseTill() {
    if (state.sending) return;
    $("#till-choices").innerHTML = cfg.tills.map((t, i) => `<button type="button" class="big choice" data-till="${esc(t.code)}">
      <kbd>${i + 1}</kbd> <strong>${esc(t.code)}</strong> ${esc(t.name)}</button>`).join("");
    closeDialog("dlg-open");
    closeDialog("dlg-handover");
    showDialog("dlg-till", "[data-till]");
  }

  $("#till-choices").addEventListener("click", (e) => {
    const b = e.target.closest("[data-till]");
    if (b) setTill(b.dataset.till);
  });

  function setTill(code) {
    state.till = code;
    store.set(K.till, code);
    const url = new URL(window.location.href);
    if (url.searchParams.get("till") !== code) {
      url.searchParams.set("till", code);
      history.replaceState(null, "", url.pathname + url.search);
    }
    closeDialog("dlg-till");
    $("#till-name").textContent = tillName(code);
    fill("till-name", tillName(code));
    const saved = store.get(K.basket(), null);
    state.lines = (saved && saved.lines) || [];
    state.orderDiscount = (saved && saved.orderDiscount) || 0;
    state.selected = state.lines.length - 1;
    changed();
    loadShift();
  }

  /** An ISO moment as the hall's local "YYYY-MM-DD HH:MM" (Asia/Shanghai, whatever the PC's zone). */
  function localTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    const parts = {};
    new Intl.DateTimeFormat("en-CA", {
      timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(d).forEach((p) => { parts[p.type] = p.value; });
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
  }

  function renderShift() {
    const s = state.shift;
    if (!s) { $("#shift-info").textContent = msg("no_shift"); return; }
    const at = s.opened_at_local || localTime(s.opened_at);
    $("#shift-info").textContent = msg("shift", { id: s.id, at, who: s.cashier || s.cashier_name || cfg.user.name });
  }

  async function loadShift() {
    const r = await api("GET", "/shifts/current?till=" + encodeURIComponent(state.till));
    if (unreachable(r)) {
      // offline: the shift this browser last saw open goes on (the server checks it when the sales arrive)
      const known = store.get(K.shift(), null);
      if (known && known.cashier_id === cfg.user.id) {
        state.shift = known;
        renderShift();
        loadQuick();
        focusScan();
      } else {
        flashError(msg("need_network", { what: msg("w_open") }));
      }
      return;
    }
    if (!r.ok && r.status !== 404) { flashError(errorText(r)); return; }
    const data = r.ok ? r.data : null;
    const shift = data && (data.shift !== undefined ? data.shift : (data.id != null ? data : null));
    state.shift = shift && shift.status !== "closed" ? shift : null;
    if (state.shift) store.set(K.shift(), state.shift); else store.del(K.shift());
    if (state.shift && state.shift.cashier_id !== cfg.user.id) {
      // another cashier's shift: not to be used without a manager's approval (接班)
      const other = state.shift;
      state.shift = null;
      renderShift();
      showHandover(other);
      return;
    }
    closeDialog("dlg-handover");
    renderShift();
    if (!state.shift) {
      const form = $('[data-form="open"]');
      form.reset();
      showDialog("dlg-open", "input[name=float]");
      return;
    }
    loadQuick();
    focusScan();
    refreshOffline();
  }

  let handoverShift = null;
  const handoverForm = $('[data-form="handover"]');

  function showHandover(shift) {
    handoverShift = shift;
    handoverForm.reset();
    fill("handover-info", msg("handover_info", {
      id: shift.id, who: shift.cashier || "", at: localTime(shift.opened_at),
    }));
    closeDialog("dlg-open");
    showDialog("dlg-handover", "input[name=pin]");
  }

  handoverForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-handover");
    if (!handoverShift) return;
    const pin = handoverForm.pin.value.trim();
    const r = await api("POST", `/shifts/${handoverShift.id}/handover`, { approval_pin: pin || null });
    handoverForm.pin.value = "";
    if (!r.ok) { setError(d, errorText(r)); return; }
    closeDialog(d);
    say(msg("handover_done", { id: handoverShift.id }), "ok");
    handoverShift = null;
    loadShift();
  });

  function requireShift() {
    if (state.shift) return true;
    if (state.till) loadShift(); else chooseTill();
    return false;
  }

  $('[data-form="open"]').addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = document.getElementById("dlg-open");
    const amount = parseYuan(e.target.float.value);
    if (amount == null) { setError(d, msg("bad_amount")); return; }
    const r = await api("POST", "/shifts", { till: state.till, opening_float_fen: amount });
    if (!r.ok && r.status !== 409) { setError(d, errorText(r)); return; }
    closeDialog(d);
    if (r.ok) say(msg("opened", { amount: yuan(amount) }), "ok");
    loadShift();
  });

  // ------------------------------------------------------------------ quick keys and search

  let quickLoaded = false;
  async function loadQuick() {
    if (quickLoaded) return;
    const r = state.offline ? { network: true } : await api("GET", "/products/quick");
    if (unreachable(r) && OFF.catalogue.byId.size) r.data = { items: OFF.quickKeys() };
    else if (!r.ok) return;
    const d = r.data;
    let items = [];
    if (Array.isArray(d)) items = d;
    else {
      for (const key of ["most_sold", "top", "weighed", "items", "products"]) {
        if (Array.isArray(d[key])) items = items.concat(d[key]);
      }
    }
    const seen = new Set();
    items = items.map(normalise).filter((p) => !seen.has(p.product_id) && seen.add(p.product_id)).slice(0, 16);
    quickLoaded = true;
    $("#quick-keys").innerHTML = items.map((p, i) => `<button type="button" class="quick-key${p.sold_by_weight ? " weighed" : ""}" data-quick="${i}">
      <span class="qk-name">${p.certified ? "★" : ""}${esc(p.name)}</span>
      <span class="qk-price">${yuan(p.price_fen)}${p.sold_by_weight ? esc(msg("per_kg")) : ""}</span></button>`).join("");
    $("#quick-keys")._items = items;
  }

  $("#quick-keys").addEventListener("click", (e) => {
    const b = e.target.closest("[data-quick]");
    if (!b || !requireShift()) return;
    addProduct($("#quick-keys")._items[Number(b.dataset.quick)], null);
  });

  const searchQ = $("#search-q");
  let searchItems = [];
  let searchSel = 0;
  let searchSeq = 0;
  let searchTimer = null;

  function openSearch() {
    if (!requireShift()) return;
    searchQ.value = "";
    searchItems = [];
    $("#search-results").innerHTML = "";
    showDialog("dlg-search", "#search-q");
  }

  function renderSearch() {
    $("#search-results").innerHTML = searchItems.length
      ? searchItems.map((p, i) => `<li><button type="button" class="result${i === searchSel ? " on" : ""}" data-pick="${i}">
          <span>${p.certified ? '<span class="cert">★</span>' : ""}${esc(p.name)} <small class="muted">${esc(p.sku || "")}</small></span>
          <span class="num">${yuan(p.price_fen)}${p.sold_by_weight ? esc(msg("per_kg")) : ""}</span></button></li>`).join("")
      : (searchQ.value.trim() ? `<li class="muted">${esc(msg("search_none"))}</li>` : "");
  }

  async function runSearch() {
    const q = searchQ.value.trim();
    const seq = ++searchSeq;
    if (!q) { searchItems = []; renderSearch(); return; }
    const r = state.offline ? { network: true } : await api("GET", "/products/search?q=" + encodeURIComponent(q));
    if (seq !== searchSeq) return;
    if (unreachable(r) && OFF.catalogue.byId.size) r.data = { items: OFF.search(q, 20) };
    else if (!r.ok) { setError(document.getElementById("dlg-search"), errorText(r)); return; }
    const d = r.data;
    const list = Array.isArray(d) ? d : (d.items || d.products || d.results || []);
    searchItems = list.map(normalise);
    searchSel = 0;
    renderSearch();
  }

  searchQ.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 150);
  });

  function pickSearch(i) {
    const p = searchItems[i];
    if (!p) return;
    closeDialog("dlg-search");
    addProduct(p, null);
  }

  searchQ.addEventListener("keydown", async (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      searchSel = Math.max(0, Math.min(searchItems.length - 1, searchSel + (e.key === "ArrowDown" ? 1 : -1)));
      renderSearch();
    } else if (e.key === "Enter") {
      e.preventDefault();
      clearTimeout(searchTimer);
      if (!searchItems.length || searchSeq === 0) await runSearch();
      pickSearch(searchSel);
    }
  });
  $("#search-results").addEventListener("click", (e) => {
    const b = e.target.closest("[data-pick]");
    if (b) pickSearch(Number(b.dataset.pick));
  });

  // ------------------------------------------------------------------ buttons and the keyboard

  const ACTIONS = {
    pay: startPay,
    search: openSearch,
    qty: () => { if (requireShift()) changeQty(); },
    discount: () => { if (requireShift()) openDiscount(); },
    park: () => { if (requireShift()) openPark(); },
    "park-now": () => { if (parkNow()) closeDialog("dlg-park"); },
    refund: openRefund,
    recent: openRecent,
    void: openVoid,
    cash: openCash,
    xreport: openXReport,
    close: openClose,
    remove: () => removeLine(),
    help: () => showDialog("dlg-help", '[data-action="cancel"]'),
    "choose-till": chooseTill,
    "pay-finish": () => submitSale(),
    "refund-find": findRefundSale,
    "new-sale": () => closeDialog("dlg-receipt"),
    print: () => {
      const d = topDialog();
      const html = d && d.id === "dlg-receipt" ? $("#receipt-body").innerHTML : $("#report-body").innerHTML;
      printHtml(html);
    },
    cancel: () => cancelTop(),
  };

  document.addEventListener("click", (e) => {
    const b = e.target.closest("[data-action]");
    if (!b || b.disabled) return;
    const fn = ACTIONS[b.dataset.action];
    if (fn) fn();
  });

  function cancelTop() {
    const d = topDialog();
    if (!d || NOT_CANCELLABLE.has(d.id)) return;
    if (d.id === "dlg-pay" && !PAYCODE.mayClose()) return; // a code payment under way or taken
    if (d.id === "dlg-pay") state.pay = null; // nothing sent yet; a new payment makes a new id
    closeDialog(d);
  }

  const FKEYS = {
    F1: "help", F2: "search", F3: "qty", F4: "discount", F5: "park", F6: "refund",
    F7: "void", F8: "cash", F9: "xreport", F10: "close", F11: "recent", F12: "pay",
  };

  document.addEventListener("keydown", (e) => {
    const key = e.key;
    if (/^F\d{1,2}$/.test(key)) e.preventDefault(); // no reload (F5), full screen (F11), help page (F1) …
    const d = topDialog();
    if (d) {
      if (key === "Escape") { e.preventDefault(); cancelTop(); return; }
      if (d.id === "dlg-pay" && e.altKey && /^[1-9]$/.test(key)) {
        e.preventDefault();
        const m = cfg.methods[Number(key) - 1];
        if (m) chooseMethod(m.code);
        return;
      }
      if (d.id === "dlg-pay" && key === "F12") {
        if (state.pay && due() - paid() === 0) submitSale();
        return;
      }
      if (d.id === "dlg-park") {
        if (key === "F5") { ACTIONS["park-now"](); return; }
        if (/^[1-9]$/.test(key)) { e.preventDefault(); resume(Number(key) - 1); return; }
      }
      if (d.id === "dlg-till" && /^[1-9]$/.test(key)) {
        const t = cfg.tills[Number(key) - 1];
        if (t) { e.preventDefault(); setTill(t.code); }
        return;
      }
      if (d.id === "dlg-receipt" && (key === "p" || key === "P")) { e.preventDefault(); ACTIONS.print(); return; }
      if (d.id === "dlg-report" && key === "F9") return;
      return;
    }
    if (FKEYS[key]) { ACTIONS[FKEYS[key]](); return; }
    if (key === "Escape") { scan.value = ""; return; }
    if (e.target === scan || document.activeElement === document.body) {
      if (key === "+" && !e.ctrlKey) { e.preventDefault(); startPay(); return; }
      if (key === "ArrowDown") { e.preventDefault(); moveSelection(1); return; }
      if (key === "ArrowUp") { e.preventDefault(); moveSelection(-1); return; }
      if (key === "Delete" && !scan.value) { e.preventDefault(); removeLine(); return; }
    }
    if (document.activeElement !== scan && key.length === 1 && !e.ctrlKey && !e.altKey && !e.metaKey) {
      scan.focus(); // a scanner's first character is never lost
    }
  });

  window.addEventListener("beforeunload", saveBasket);

  // ------------------------------------------------------------------ start

  async function start() {
    render();
    if ("serviceWorker" in navigator && cfg.sw_url) {
      navigator.serviceWorker.register(cfg.sw_url, { scope: cfg.sw_scope }).catch(() => { /* not a secure context: online only */ });
    }
    await OFF.load();
    renderNet();
    const fromUrl = new URL(window.location.href).searchParams.get("till");
    const chosen = [cfg.till, fromUrl, store.get(K.till, null)].find((c) => c && cfg.tills.some((t) => t.code === c));
    if (chosen) state.till = chosen;
    // a sale being sent before a reload comes first; sales made offline wait for the server in the background
    if (pendingList().some((p) => !p.offline)) await resendPending();
    if (chosen) setTill(chosen);
    else chooseTill();
  }

  window.songtaoTill = { state, yuan, parseYuan, parseQty, fmtQty, pendingList, flushQueue, refreshOffline }; // for the browser tests
  start();
})();
