/* The hall's pricing rule in the browser: the same arithmetic as the server's
 * pos.sales.pricing.compute_amounts (with inventory.money.line_amount_fen, spread_fen and
 * round_down_to_jiao), the figures of POST /api/v1/baskets/price, cash_rounding_applies and
 * inventory.certification's choice of certificate — so that a till prices a basket offline to
 * the fen as the server will record it. tests/hall/test_pricing_js.py runs generated baskets
 * through both and finds no difference.
 *
 * A classic script (no build step, no modules): it works in a page and in a service worker and
 * defines self.SongtaoPricing. Money is integer fen, quantities integer thousandths (qty_milli);
 * products that could pass 2^53 are computed with BigInt, never with floats.
 */
(function (root) {
  "use strict";

  var MILLI = 1000n;
  var MAX_AMOUNT_FEN = 1000000000; // pos.sales.pricing.MAX_AMOUNT_FEN
  var MAX_QTY_MILLI = 1000000;     // pos.core.openapi.MAX_QTY_MILLI (what the API accepts on a line)
  var HALL_OFFSET_MS = 8 * 3600 * 1000; // Asia/Shanghai: UTC+8 all year since 1991

  function whole(value, what) {
    if (typeof value === "bigint") value = Number(value);
    if (!Number.isSafeInteger(value)) throw new Error(what + "必须是整数");
    return value;
  }

  function nonNegative(value, what) {
    value = whole(value, what);
    if (value < 0) throw new Error(what + "不能为负数");
    return value;
  }

  /** Unit price × quantity (thousandths), rounded half up to the fen: inventory.money.line_amount_fen. */
  function lineAmountFen(unitPriceFen, qtyMilli) {
    var price = whole(unitPriceFen, "单价"), qty = whole(qtyMilli, "数量");
    if (price < 0 || qty < 0) throw new Error("单价和数量不能为负数");
    return Number((BigInt(price) * BigInt(qty) + MILLI / 2n) / MILLI);
  }

  /** Split amountFen over lines in proportion to weights: each share rounded down, the remainder
   * to the largest line (the first of equal ones), a remainder that does not fit on it continuing
   * on the next largest; all to the first line when every weight is 0. inventory.money.spread_fen. */
  function spreadFen(amountFen, weights) {
    var amount = nonNegative(amountFen, "分摊金额");
    if (!Array.isArray(weights)) throw new Error("分摊权重必须是列表");
    if (!weights.length) {
      if (amount) throw new Error("没有商品行，无法分摊金额");
      return [];
    }
    var w = weights.map(function (x) { return BigInt(nonNegative(x, "分摊权重")); });
    var total = w.reduce(function (a, b) { return a + b; }, 0n);
    var shares;
    if (total === 0n) {
      shares = w.map(function () { return 0; });
      shares[0] = amount;
      return shares;
    }
    var big = BigInt(amount);
    var s = w.map(function (x) { return big * x / total; });
    var remainder = big - s.reduce(function (a, b) { return a + b; }, 0n);
    var bySize = w.map(function (_, i) { return i; }).sort(function (a, b) {
      if (w[a] !== w[b]) return w[a] > w[b] ? -1 : 1;
      return a - b;
    });
    bySize.forEach(function (i) {
      var room = w[i] - s[i];
      if (room > 0n && remainder > 0n) {
        var taken = room < remainder ? room : remainder;
        s[i] += taken;
        remainder -= taken;
      }
    });
    s[bySize[0]] += remainder; // only when the amount exceeds the weights' sum
    return s.map(Number);
  }

  /** 抹零: drop the fen below a jiao, only ever down. inventory.money.round_down_to_jiao. */
  function roundDownToJiao(fen) {
    var amount = whole(fen, "金额");
    if (amount < 0) throw new Error("金额不能为负数");
    return amount - amount % 10;
  }

  /** The arithmetic of a basket, as pos.sales.pricing.compute_amounts: items are
   * {qty_milli, unit_price_fen, line_discount_fen}; the order discount and 抹零 are spread over
   * the lines in proportion to their amounts after line discounts, so Σ net = total. */
  function computeAmounts(items, options) {
    var opts = options || {};
    var orderDiscount = opts.orderDiscountFen || 0;
    var gross = items.map(function (i) { return lineAmountFen(i.unit_price_fen, i.qty_milli); });
    var afterLine = items.map(function (i, k) { return gross[k] - (i.line_discount_fen || 0); });
    var afterDiscounts = sum(afterLine) - orderDiscount;
    var total = opts.roundingToJiao ? roundDownToJiao(afterDiscounts) : afterDiscounts;
    var rounding = afterDiscounts - total;
    var shares = spreadFen(orderDiscount + rounding, afterLine);
    var lines = gross.map(function (g, k) {
      return {gross_fen: g, discount_fen: g - afterLine[k] + shares[k], net_fen: afterLine[k] - shares[k]};
    });
    var subtotal = sum(gross);
    var discount = sum(items.map(function (i) { return i.line_discount_fen || 0; })) + orderDiscount;
    return {lines: lines, subtotal_fen: subtotal, discount_fen: discount, rounding_fen: rounding,
            total_fen: subtotal - discount - rounding};
  }

  /** 抹零 applies only to a sale paid wholly in cash (no payment at all counts as cash):
   * pos.sales.pricing.cash_rounding_applies. payments: [{method}]. */
  function cashRoundingApplies(roundingToJiao, payments) {
    if (!Array.isArray(payments)) payments = [];
    return Boolean(roundingToJiao) && payments.every(function (p) { return p && p.method === "cash"; });
  }

  function weighed(line) {
    return line.unit === "kg" || Boolean(line.sold_by_weight);
  }

  function fenField(value, label) {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(label + "必须是不小于零的整数（分）");
    if (value > MAX_AMOUNT_FEN) throw new Error(label + "太大");
    return value;
  }

  /** The checks of pos.sales.pricing.price_lines, with its messages (the first failing one). */
  function checkLines(lines, orderDiscountFen) {
    var afterLine = 0;
    lines.forEach(function (line, i) {
      var n = "第 " + (i + 1) + " 行";
      var qty = line.qty_milli;
      if (!Number.isSafeInteger(qty) || qty <= 0) throw new Error(n + "：数量必须大于零");
      if (qty > MAX_QTY_MILLI) throw new Error(n + "：数量太大");
      if (!weighed(line) && qty % 1000) throw new Error(n + "：「" + line.name + "」按件销售，数量必须是整数件");
      var price = fenField(line.price_fen, n + "单价");
      var gross = lineAmountFen(price, qty);
      if (Number(BigInt(price) * BigInt(qty) / MILLI) > MAX_AMOUNT_FEN) throw new Error(n + "：金额太大");
      var discount = fenField(line.line_discount_fen || 0, n + "折扣");
      if (discount > gross) throw new Error(n + "：折扣不能超过该行金额");
      afterLine += gross - discount;
    });
    fenField(orderDiscountFen, "整单折扣");
    if (afterLine > MAX_AMOUNT_FEN) throw new Error("销售金额太大");
    if (orderDiscountFen > afterLine) throw new Error("整单折扣不能超过应收金额");
  }

  /** The till's running total as POST /api/v1/baskets/price answers it (BasketOut): lines are
   * {product_id, sku, name, unit, sold_by_weight, qty_milli, price_fen (the catalogue price),
   * line_discount_fen, certified, certificate_no}; 抹零 applies when the hall's setting is on and
   * the basket is paid wholly in cash; cash_rounding_fen / cash_total_fen say what paying wholly
   * in cash would come to. Throws an Error with the server's message for a bad line. */
  function priceBasket(lines, options) {
    var opts = options || {};
    var setting = Boolean(opts.roundingToJiaoSetting);
    var orderDiscount = opts.orderDiscountFen || 0;
    var cashRounding = cashRoundingApplies(setting, [{method: "cash"}]);
    var rounding = opts.paidInCash ? cashRounding : cashRoundingApplies(setting, [{method: "wechat"}]);
    if (!lines || !lines.length) { // an emptied basket, as the API answers it
      return {lines: [], subtotal_fen: 0, discount_fen: 0, rounding_fen: 0, total_fen: 0, certified_fen: 0,
              uncertified_fen: 0, rounding_to_jiao: rounding, cash_rounding_fen: 0, cash_total_fen: 0};
    }
    checkLines(lines, orderDiscount);
    var items = lines.map(function (l) {
      return {qty_milli: l.qty_milli, unit_price_fen: l.price_fen, line_discount_fen: l.line_discount_fen || 0};
    });
    var basket = computeAmounts(items, {orderDiscountFen: orderDiscount, roundingToJiao: rounding});
    var cash = cashRounding === rounding ? basket
      : computeAmounts(items, {orderDiscountFen: orderDiscount, roundingToJiao: cashRounding});
    var certified = 0;
    var out = lines.map(function (l, k) {
      var a = basket.lines[k], isCertified = Boolean(l.certified);
      if (isCertified) certified += a.net_fen;
      return {product_id: l.product_id, sku: l.sku, name: l.name, unit: l.unit,
              sold_by_weight: Boolean(l.sold_by_weight), qty_milli: l.qty_milli, unit_price_fen: l.price_fen,
              gross_fen: a.gross_fen, line_discount_fen: items[k].line_discount_fen, discount_fen: a.discount_fen,
              net_fen: a.net_fen, certified: isCertified,
              certificate_no: isCertified && l.certificate_no != null ? l.certificate_no : null, slot: null};
    });
    return {lines: out, subtotal_fen: basket.subtotal_fen, discount_fen: basket.discount_fen,
            rounding_fen: basket.rounding_fen, total_fen: basket.total_fen, certified_fen: certified,
            uncertified_fen: basket.total_fen - certified, rounding_to_jiao: rounding,
            cash_rounding_fen: cash.rounding_fen, cash_total_fen: cash.total_fen};
  }

  /** The hall's (Asia/Shanghai, UTC+8) calendar date "YYYY-MM-DD" of a moment: a Date, or an
   * ISO 8601 date-time with its offset ("2026-11-30T16:00:00Z" is 2026-12-01). */
  function localDate(isoOrDate) {
    var ms;
    if (isoOrDate instanceof Date) {
      ms = isoOrDate.getTime();
    } else if (typeof isoOrDate === "string" && /[T ].*(Z|[+-]\d\d:?\d\d)$/i.test(isoOrDate.trim())) {
      ms = Date.parse(isoOrDate.trim());
    } else {
      throw new Error("时间必须带时区（ISO 8601）：" + isoOrDate);
    }
    if (!Number.isFinite(ms)) throw new Error("时间格式不正确：" + isoOrDate);
    return new Date(ms + HALL_OFFSET_MS).toISOString().slice(0, 10);
  }

  function codePointCompare(a, b) { // SQL's binary order of text (SQLite; PostgreSQL with "C")
    var x = Array.from(a), y = Array.from(b);
    for (var i = 0; i < Math.min(x.length, y.length); i++) {
      var d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d) return d;
    }
    return x.length - y.length;
  }

  /** Certification on a local date "YYYY-MM-DD", as inventory.certification decides it: a
   * certificate covers the day when valid_from <= day <= valid_to (both inclusive; a missing
   * bound never matches, as in SQL); of several, the one valid longest, then the smallest number. */
  function certifiedOn(certificates, day) {
    if (!/^\d{4}-\d\d-\d\d$/.test(day)) throw new Error("日期格式应为 YYYY-MM-DD：" + day);
    var best = null;
    (certificates || []).forEach(function (c) {
      if (!c || c.valid_from == null || c.valid_to == null) return;
      if (!(c.valid_from <= day && day <= c.valid_to)) return;
      if (best === null || c.valid_to > best.valid_to
          || (c.valid_to === best.valid_to && codePointCompare(c.certificate_no, best.certificate_no) < 0)) {
        best = c;
      }
    });
    return best ? {certified: true, certificate_no: best.certificate_no} : {certified: false, certificate_no: null};
  }

  function sum(values) {
    return values.reduce(function (a, b) { return a + b; }, 0);
  }

  root.SongtaoPricing = Object.freeze({
    lineAmountFen: lineAmountFen,
    spreadFen: spreadFen,
    roundDownToJiao: roundDownToJiao,
    computeAmounts: computeAmounts,
    cashRoundingApplies: cashRoundingApplies,
    priceBasket: priceBasket,
    certifiedOn: certifiedOn,
    localDate: localDate,
  });
})(self);
