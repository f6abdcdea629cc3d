/* Catalogue pages: a question before a change that is hard to undo (forms with data-confirm),
   and the product picker of the certificate form (search, then tick to cover). Without
   JavaScript everything still works: the forms submit, skus are typed into a text box. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // after a refusal the cursor waits in the first field to correct (a scanner can rescan there)
  var wrong = document.querySelector('main [aria-invalid="true"]');
  if (wrong && typeof wrong.focus === "function") {
    wrong.focus();
    if (typeof wrong.select === "function" && wrong.type !== "file") wrong.select();
  }
})();

(function () {
  "use strict";
  var picker = document.querySelector(".cat-picker");
  if (!picker) return;
  var input = picker.querySelector(".cat-picker-q");
  var results = picker.querySelector(".cat-picker-results");
  var covered = document.getElementById("covered");
  var empty = document.querySelector(".cat-covered-empty");
  var url = picker.getAttribute("data-lookup");
  var timer = null, seq = 0;
  picker.hidden = false;

  function isCovered(id) {
    return !!covered.querySelector('input[name="product_ids"][value="' + id + '"]');
  }

  function addCovered(item) {
    var existing = covered.querySelector('input[name="product_ids"][value="' + item.id + '"]');
    if (existing) { existing.checked = true; return; }
    var li = document.createElement("li");
    var label = document.createElement("label");
    label.className = "cat-check";
    var box = document.createElement("input");
    box.type = "checkbox"; box.name = "product_ids"; box.value = item.id; box.checked = true;
    var text = document.createElement("span");
    text.textContent = item.name + " ";
    var sku = document.createElement("small");
    sku.className = "muted"; sku.textContent = item.sku;
    text.appendChild(sku);
    label.appendChild(box); label.appendChild(document.createTextNode(" ")); label.appendChild(text);
    li.appendChild(label);
    covered.appendChild(li);
    if (empty) empty.hidden = true;
  }

  function render(items) {
    results.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "cat-pick";
      button.textContent = item.name + " · " + item.sku;
      function picked() {
        button.disabled = true; button.classList.add("cat-picked");
        button.textContent = "✓ " + item.name + " · " + item.sku;
      }
      if (isCovered(item.id)) picked();
      button.addEventListener("click", function () { addCovered(item); picked(); });
      li.appendChild(button);
      results.appendChild(li);
    });
    if (!items.length && input.value.trim()) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = picker.getAttribute("data-none") || "—";
      results.appendChild(none);
    }
  }

  function search() {
    var q = input.value.trim();
    var mine = ++seq;
    if (!q) { render([]); return; }
    fetch(url + "?q=" + encodeURIComponent(q), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : {items: []}; })
      .then(function (data) { if (mine === seq) render(data.items || []); })
      .catch(function () { /* the typed skus still work */ });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {  // a scanner ends with Enter: search, do not submit the form
      event.preventDefault();
      clearTimeout(timer);
      search();
    }
  });
})();
