/* The manager's stock pages: more line rows, product hints, scanner-friendly count entry,
   confirmations and printing. Every page also works without this script (plain forms). */
(function () {
  "use strict";

  // --- "加一行": clone the last line row with the next free index -----------------------------
  document.querySelectorAll("[data-add-line]").forEach(function (button) {
    button.addEventListener("click", function () {
      var form = button.closest("form");
      var body = form.querySelector("[data-lines] tbody");
      var rows = body.querySelectorAll("[data-line]");
      var last = rows[rows.length - 1];
      var max = -1;
      body.querySelectorAll("input[name^='lines-']").forEach(function (input) {
        var m = /^lines-(\d+)-/.exec(input.name);
        if (m) { max = Math.max(max, parseInt(m[1], 10)); }
      });
      var next = max + 1;
      var row = last.cloneNode(true);
      row.querySelectorAll("input, select").forEach(function (input) {
        ["name", "id"].forEach(function (attr) {
          var v = input.getAttribute(attr);
          if (v) { input.setAttribute(attr, v.replace(/^lines-\d+-/, "lines-" + next + "-")); }
        });
        input.value = "";
        input.setAttribute("aria-invalid", "false");
      });
      row.querySelectorAll("label[for]").forEach(function (label) {
        label.setAttribute("for", label.getAttribute("for").replace(/^lines-\d+-/, "lines-" + next + "-"));
      });
      row.querySelectorAll(".error").forEach(function (e) { e.remove(); });
      row.querySelectorAll(".has-error").forEach(function (e) { e.classList.remove("has-error"); });
      row.querySelectorAll(".stk-hint").forEach(function (e) { e.textContent = ""; });
      body.appendChild(row);
      bindLookups(row);
      var first = row.querySelector("input");
      if (first) { first.focus(); }
    });
  });

  // --- product hints: what the typed text resolves to --------------------------------------
  function lookupUrl(input, q) {
    var source = document.querySelector("[data-source]");
    var url = ((input.form && input.form.dataset.lookup) || "/stock/lookup") + "?q=" + encodeURIComponent(q);
    if (source && source.value) { url += "&location=" + encodeURIComponent(source.value); }
    return url;
  }

  function hintFor(input) {
    var cell = input.closest("td") || input.closest("form");
    return cell ? cell.querySelector(".stk-hint") : null;
  }

  function bindLookups(root) {
    root.querySelectorAll("[data-product-lookup]").forEach(function (input) {
      if (input.dataset.bound) { return; }
      input.dataset.bound = "1";
      input.addEventListener("change", function () {
        var hint = hintFor(input);
        if (!hint) { return; }
        var q = input.value.trim();
        if (!q) { hint.textContent = ""; hint.classList.remove("error"); return; }
        fetch(lookupUrl(input, q), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (data) {
            if (input.value.trim() !== q) { return; }
            if (data.error) {
              hint.textContent = data.error;
              hint.classList.add("error");
            } else {
              var text = data.name + " · " + data.sku + " · " + data.unit;
              if (data.level !== undefined) { text += " · " + (hint.dataset.levelLabel || "") + data.level; }
              hint.textContent = text;
              hint.classList.remove("error");
            }
          })
          .catch(function () { hint.textContent = ""; });
      });
    });
  }
  bindLookups(document);

  // --- counting with a scanner: the scanner types the code and Enter; go to the quantity ---
  document.querySelectorAll("[data-enter-next]").forEach(function (input) {
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") { return; }
      event.preventDefault();
      input.dispatchEvent(new Event("change"));
      var fields = Array.prototype.slice.call(input.form.querySelectorAll("input:not([type=hidden])"));
      var next = fields[fields.indexOf(input) + 1];
      if (next) { next.focus(); next.select(); }
    });
  });

  // --- re-count a line: put its product in the scan field --------------------------------------
  document.querySelectorAll("[data-recount]").forEach(function (button) {
    button.addEventListener("click", function () {
      var scan = document.querySelector("#scan [data-enter-next]");
      if (!scan) { return; }
      scan.value = button.dataset.recount;
      scan.dispatchEvent(new Event("change"));
      var qty = scan.form.querySelector("input[inputmode=decimal]");
      window.scrollTo({ top: 0, behavior: "smooth" });
      if (qty) { qty.focus(); qty.select(); }
    });
  });

  // --- confirmations before posting, and printing --------------------------------------------
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
