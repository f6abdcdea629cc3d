/* Payment codes (付款码) at the till's payment dialog: loaded before static/js/till.js, which makes
 * one handler with self.SongtaoPaycode.create(hooks) and calls it from its payment dialog.
 *
 * While the payment dialog is open, a scan (the scanner types digits and Enter into whatever has
 * the focus) that the providers' rule recognises — the same rule as the server's
 * pos.payments.providers.provider_for_code — is a payment code, never a product. It is posted
 * (POST /api/v1/payment-codes) for the amount still due, or for the amount the cashier typed just
 * before scanning (a split with cash); then the till asks for the answer every 2 s
 * (GET /api/v1/payment-codes/<id>) while the customer confirms with a password. Only a confirmed
 * payment becomes a part of the sale (with its attempt_id, which the server checks); once the money
 * is taken the dialog cannot be cancelled and the sale is recorded as soon as nothing is due.
 * Esc while waiting gives up: POST …/cancel reverses the order.
 *
 * Money is integer fen; nothing here does float arithmetic on amounts.
 */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const POST_TIMEOUT_MS = 45000;  // the server waits for the provider (its timeout, then a query)
  const SCAN_GAP_MS = 120;        // a scanner types faster than this between characters

  /** "wechat" | "alipay" | null — pos.payments.providers.provider_for_code, to the letter:
   *  WeChat 18 digits starting 10–15; Alipay 16–24 digits starting 25–30. */
  function providerForCode(code) {
    const c = String(code == null ? "" : code).trim();
    if (!/^[0-9]+$/.test(c)) return null;
    const head = Number(c.slice(0, 2));
    if (c.length === 18 && head >= 10 && head <= 15) return "wechat";
    if (c.length >= 16 && c.length <= 24 && head >= 25 && head <= 30) return "alipay";
    return null;
  }

  /** The last characters of the provider's transaction id, for the payment line. */
  function tail(ref) {
    const s = String(ref || "");
    return s.length > 6 ? s.slice(-6) : s;
  }

  /**
   * hooks: {
   *   dialog: the payment <dialog>, form: its form,
   *   api(method, path, body, timeoutMs) → {ok, network, status, data},
   *   msg(key, vars), yuan(fen), parseYuan(text), plainYuan(fen), methodLabel(code),
   *   configured(provider) → bool, offline() → bool, till() → code,
   *   pay() → the dialog's state (clientSaleId, parts, method …) or null,
   *   rest() → fen still due, setMethod(code), render() (the dialog), setError(text),
   *   finish() (record the sale),
   * }
   */
  function create(h) {
    let run = { digits: "", at: 0, before: "" };  // the digits typed in a row, and the field before them
    let job = null;  // {attempt_id, provider, amount_fen, cancelling} while a code payment is open
    let timer = null; // the one pending poll
    const statusEl = h.dialog.querySelector("[data-paycode]");
    const statusText = h.dialog.querySelector("[data-paycode-status]");

    function show(text, kind) {
      statusEl.hidden = !text;
      statusEl.className = "paycode " + (kind || "");
      statusText.textContent = text || "";
      const cancel = h.dialog.querySelector("[data-paycode-cancel]");
      if (cancel) cancel.hidden = !job;
      h.dialog.classList.toggle("paycode-busy", !!job);
    }

    function fieldValue() {
      const el = document.activeElement;
      return el && el.tagName === "INPUT" && h.dialog.contains(el) ? el.value : "";
    }

    /** Capture-phase keydown on the dialog: notices a payment code being typed and takes its Enter. */
    function onKeydown(e) {
      if (!h.pay()) return;
      if (job && (e.key === "Enter" || /^\d$/.test(e.key))) { e.preventDefault(); e.stopPropagation(); return; }
      const now = Date.now();
      if (/^\d$/.test(e.key) && !e.altKey && !e.ctrlKey && !e.metaKey) {
        if (!run.digits || now - run.at > SCAN_GAP_MS) run = { digits: "", at: now, before: fieldValue(), el: document.activeElement };
        run.digits += e.key;
        run.at = now;
        return;
      }
      if (e.key === "Enter") {
        const typed = fieldValue().trim();
        // a scan (fast digits), or a code typed into a field by hand
        const code = providerForCode(run.digits) ? run.digits : providerForCode(typed) ? typed : null;
        const before = code === run.digits ? run.before : "";
        const el = run.el && h.dialog.contains(run.el) ? run.el : document.activeElement;
        run = { digits: "", at: 0, before: "" };
        if (!code) return;
        e.preventDefault();
        e.stopPropagation();
        if (el && el.tagName === "INPUT") el.value = before;  // the code is no amount nor reference
        start(code, before);
        return;
      }
      if (e.key.length === 1 || e.key === "Backspace") run = { digits: "", at: 0, before: "" };
    }

    /** The amount for the code: the one typed just before the scan (≤ what is due), else what is due. */
    function amountFor(before, restBefore, rest) {
      const typed = String(before || "").trim() === "" ? null : h.parseYuan(before);
      if (typed == null || typed <= 0 || typed === restBefore) return rest;
      return typed;
    }

    async function start(code, before) {
      const provider = providerForCode(code);
      const pay = h.pay();
      if (!pay || job) return;
      if (h.offline() || pay.offline || navigator.onLine === false) {
        h.setError(h.msg("need_network", { what: h.msg("paycode") }));
        return;
      }
      if (!h.configured(provider)) {
        h.setError(h.msg("paycode_not_configured", { provider: h.methodLabel(provider) }));
        return;
      }
      const restBefore = h.rest();
      h.setMethod(provider); // a code pays to the fen: what is due is no longer the 抹零 cash total
      const rest = h.rest();
      const amount = amountFor(before, restBefore, rest);
      if (rest <= 0) return;
      if (amount > rest) { h.setError(h.msg("noncash_too_much")); return; }
      h.setError("");
      job = { attempt_id: null, provider, amount_fen: amount, cancelling: false };
      show(h.msg("paycode_busy", { method: h.methodLabel(provider), amount: h.yuan(amount) }), "busy");
      const mine = job;
      const r = await h.api("POST", "/payment-codes", {
        till: h.till(), client_sale_id: pay.clientSaleId, amount_fen: amount, code,
      }, POST_TIMEOUT_MS);
      if (job !== mine) return; // the sale was given up meanwhile (reset)
      if (!r.ok || !r.data || !r.data.attempt_id) {
        job = null;
        // no answer: the server finishes (or reverses) what it may have started; never charge twice
        show(r.network || r.status >= 500 ? h.msg("paycode_no_answer") : "", "error");
        h.setError(r.network || r.status >= 500 ? "" : (r.data && r.data.error) || h.msg("error", { error: r.status }));
        return;
      }
      job.attempt_id = r.data.attempt_id;
      answered(r.data);
    }

    /** What the server said about the attempt: go on waiting, take the money, or say why not. */
    function answered(a) {
      if (!job) return;
      const state = a.state;
      if (state === "success") {
        const part = {
          method: a.provider || job.provider, amount_fen: job.amount_fen, tendered_fen: null,
          ref: a.transaction_id || null, attempt_id: job.attempt_id,
        };
        job = null;
        show(h.msg("paycode_done", { method: h.methodLabel(part.method), amount: h.yuan(part.amount_fen), tail: tail(part.ref) }), "ok");
        const pay = h.pay();
        if (!pay) return;
        pay.parts.push(part);
        if (h.rest() === 0) { h.render(); h.finish(); return; } // the money is taken: the sale is recorded now
        h.setMethod("cash"); // the rest of a split: cash (renders the dialog)
        return;
      }
      if (state === "failed" || state === "reversed") {
        job = null;
        const why = a.message || h.msg(state === "failed" ? "paycode_refused" : "paycode_reversed_plain");
        show(h.msg(state === "failed" ? "paycode_failed" : "paycode_reversed", { error: why }), "error");
        h.render();
        return;
      }
      // userpaying, unknown, notpay: ask again
      show(job.cancelling ? h.msg("paycode_cancelling")
        : state === "userpaying" ? h.msg("paycode_waiting") : h.msg("paycode_checking"), "busy");
      schedule();
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(poll, POLL_MS);
    }

    async function poll() {
      const mine = job;
      if (!mine) return;
      const r = await h.api("GET", `/payment-codes/${encodeURIComponent(mine.attempt_id)}`);
      if (job !== mine) return; // answered meanwhile (the cancel's answer), or given up
      if (r.ok && r.data) { answered(r.data); return; }
      show(h.msg("paycode_net"), "busy"); // not answered: ask again; the server keeps the attempt
      schedule();
    }

    /** The cashier gives up (Esc): reverse the order; the answer comes through the polling. */
    async function cancel() {
      if (!job || job.cancelling || !job.attempt_id) return;
      const mine = job;
      mine.cancelling = true;
      show(h.msg("paycode_cancelling"), "busy");
      const r = await h.api("POST", `/payment-codes/${encodeURIComponent(mine.attempt_id)}/cancel`, {});
      if (job !== mine) return; // the polling found the end first
      if (r.ok && r.data) {
        job.cancelling = r.data.state !== "reversed" && r.data.state !== "failed" && r.data.state !== "success";
        if (!job.cancelling && r.data.state === "reversed") {
          job = null;
          show(h.msg("paycode_cancelled"), "warn");
          h.render();
          return;
        }
        answered(r.data); // paid just before the cancel, or still on its way: the polling goes on
      } else {
        job.cancelling = false; // not answered: the cashier may press Esc again; the polling goes on
      }
    }

    /** Whether the dialog may close now (Esc or 返回); if not, what happens instead. */
    function mayClose() {
      if (job) { cancel(); return false; }
      const pay = h.pay();
      const taken = pay ? pay.parts.filter((p) => p.attempt_id) : [];
      if (taken.length) {
        h.setError(h.msg("paycode_keep", { amount: h.yuan(taken.reduce((s, p) => s + p.amount_fen, 0)) }));
        return false;
      }
      show("", "");
      return true;
    }

    /** The payment line of a part: a code payment shows the provider's transaction id's tail. */
    function partText(p) {
      if (!p.attempt_id) return null;
      return h.msg("paycode_part", { method: h.methodLabel(p.method), amount: h.yuan(p.amount_fen), tail: tail(p.ref) });
    }

    /** Reset between sales. */
    function reset() {
      job = null;
      clearTimeout(timer);
      run = { digits: "", at: 0, before: "" };
      show("", "");
    }

    h.dialog.addEventListener("keydown", onKeydown, true);
    const cancelBtn = h.dialog.querySelector("[data-paycode-cancel]");
    if (cancelBtn) cancelBtn.addEventListener("click", () => cancel());

    /** With the provider's credentials set, its money is taken by scanning only (the server refuses
     *  a WeChat / Alipay payment without a confirmed attempt). */
    function needsCode(method) {
      return (method === "wechat" || method === "alipay") && h.configured(method);
    }

    return { busy: () => !!job, cancel, mayClose, needsCode, partText, reset, start };
  }

  self.SongtaoPaycode = { providerForCode, create, tail };
})();
