/* TEMPORARY: the browser's pricing until static/js/pricing.js (helper "pricing-js") lands in main;
 * delete this file and its <script> in templates/pos/hall/till.html then. Defines
 * self.SongtaoPricing only when pricing.js has not, with the same contract: the arithmetic of
 * pos.sales.pricing.compute_amounts and inventory.money, in integers (BigInt where a product could
 * leave 2^53), and priceBasket shaped like the API's BasketOut. */
(function (root) {
  "use strict";
  if (root.SongtaoPricing) return;

  function lineAmountFen(unitPriceFen, qtyMilli) {
    return Number((BigInt(unitPriceFen) * BigInt(qtyMilli) + 500n) / 1000n);
  }

  function spreadFen(amountFen, weights) {
    if (!weights.length) return [];
    const total = weights.reduce((s, w) => s + w, 0);
    if (total === 0) { const z = weights.map(() => 0); z[0] = amountFen; return z; }
    const shares = weights.map((w) => Number((BigInt(amountFen) * BigInt(w)) / BigInt(total)));
    let remainder = amountFen - shares.reduce((s, x) => s + x, 0);
    const bySize = weights.map((w, i) => i).sort((a, b) => (weights[b] - weights[a]) || (a - b));
    for (const i of bySize) {
      const room = weights[i] - shares[i];
      if (room > 0 && remainder > 0) {
        const taken = Math.min(room, remainder);
        shares[i] += taken;
        remainder -= taken;
      }
    }
    shares[bySize[0]] += remainder;
    return shares;
  }

  const roundDownToJiao = (fen) => fen - (fen % 10);

  function computeAmounts(items, opts) {
    const orderDiscountFen = (opts && opts.orderDiscountFen) || 0;
    const gross = items.map((i) => lineAmountFen(i.unit_price_fen, i.qty_milli));
    const afterLine = gross.map((g, k) => g - (items[k].line_discount_fen || 0));
    const afterDiscounts = afterLine.reduce((s, x) => s + x, 0) - orderDiscountFen;
    const total = opts && opts.roundingToJiao ? roundDownToJiao(afterDiscounts) : afterDiscounts;
    const rounding = afterDiscounts - total;
    const shares = spreadFen(orderDiscountFen + rounding, afterLine);
    const lines = gross.map((g, k) => [g, g - afterLine[k] + shares[k], afterLine[k] - shares[k]]);
    const lineDiscounts = items.reduce((s, i) => s + (i.line_discount_fen || 0), 0);
    return { lines, subtotal: gross.reduce((s, x) => s + x, 0), discount: lineDiscounts + orderDiscountFen, rounding };
  }

  function cashRoundingApplies(roundingToJiao, payments) {
    return !!roundingToJiao && (payments || []).every((p) => p.method === "cash");
  }

  function localDate(iso) {
    const d = iso ? new Date(iso) : new Date();
    const parts = {};
    new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" })
      .formatToParts(d).forEach((p) => { parts[p.type] = p.value; });
    return `${parts.year}-${parts.month}-${parts.day}`;
  }

  /** The certificate valid on the local date (the one valid longest when several are). */
  function certifiedOn(certificates, day) {
    let best = null;
    for (const c of certificates || []) {
      if (c.valid_from <= day && day <= c.valid_to &&
          (!best || c.valid_to > best.valid_to || (c.valid_to === best.valid_to && c.certificate_no < best.certificate_no))) best = c;
    }
    return best ? { certified: true, certificate_no: best.certificate_no } : { certified: false, certificate_no: null };
  }

  function basket(lines, orderDiscountFen, rounding) {
    const items = lines.map((l) => ({ unit_price_fen: l.price_fen, qty_milli: l.qty_milli, line_discount_fen: l.line_discount_fen || 0 }));
    const a = computeAmounts(items, { orderDiscountFen, roundingToJiao: rounding });
    const priced = lines.map((l, k) => ({
      product_id: l.product_id, sku: l.sku, name: l.name, unit: l.unit, sold_by_weight: !!l.sold_by_weight,
      qty_milli: l.qty_milli, unit_price_fen: l.price_fen, gross_fen: a.lines[k][0],
      line_discount_fen: l.line_discount_fen || 0, discount_fen: a.lines[k][1], net_fen: a.lines[k][2],
      certified: !!l.certified, certificate_no: l.certificate_no || null, slot: null,
    }));
    const total = a.subtotal - a.discount - a.rounding;
    const certified = priced.reduce((s, p) => s + (p.certified ? p.net_fen : 0), 0);
    return { lines: priced, subtotal_fen: a.subtotal, discount_fen: a.discount, rounding_fen: a.rounding, total_fen: total,
             certified_fen: certified, uncertified_fen: total - certified };
  }

  function priceBasket(lines, opts) {
    const o = opts || {};
    const cashRounding = cashRoundingApplies(o.roundingToJiaoSetting, [{ method: "cash" }]);
    const rounding = o.paidInCash ? cashRounding : false;
    const b = basket(lines, o.orderDiscountFen || 0, rounding);
    const cash = cashRounding === rounding ? b : basket(lines, o.orderDiscountFen || 0, cashRounding);
    return Object.assign(b, { rounding_to_jiao: rounding, cash_rounding_fen: cash.rounding_fen, cash_total_fen: cash.total_fen });
  }

  root.SongtaoPricing = { lineAmountFen, spreadFen, roundDownToJiao, computeAmounts, cashRoundingApplies, priceBasket, certifiedOn, localDate };
})(self);
