/* The restocker's pages: +/− steppers, a visit draft kept in localStorage (keyed by route and
   stop) so that a reload loses nothing, confirmations, printing. */
(function () {
  "use strict";

  // +/− beside a count: never below the field's minimum.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-step]");
    if (!button) return;
    var input = button.parentElement.querySelector("input");
    var min = parseInt(input.dataset.min || "0", 10);
    var now = parseInt(input.value, 10);
    if (isNaN(now)) now = 0;
    input.value = Math.max(min, now + parseInt(button.dataset.step, 10));
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // Forms that ask first (load the van, finish the route).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  // A confirmed stop: its draft is no longer needed.
  document.querySelectorAll("[data-clear-draft]").forEach(function (el) {
    var store = storage();
    if (store) store.removeItem(el.dataset.clearDraft);
  });

  // A visit in progress: every change is kept; the draft is restored after a reload.
  var form = document.querySelector("form[data-draft-key]");
  if (!form) return;

  // A refused visit opens at the slot the refusal names, highlighted (the server marks it).
  var refused = form.querySelector("[data-refused]");
  if (refused) {
    refused.scrollIntoView({ block: "center" });
    var first = refused.querySelector("input[type=text]");
    if (first) first.focus({ preventScroll: true });
  }

  function number(input) {
    var n = input ? parseInt(input.value, 10) : NaN;
    return isNaN(n) ? 0 : n;
  }

  // A blind count: the count starts empty; "same as book" fills it in, for one slot or for all.
  function sameAsBook(button) {
    var input = button.closest("[data-slot]").querySelector('input[name^="counted-"]');
    input.value = button.dataset.sameAsBook;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  form.addEventListener("click", function (event) {
    var one = event.target.closest("[data-same-as-book]");
    if (one) sameAsBook(one);
    if (event.target.closest("[data-same-as-book-all]")) {
      form.querySelectorAll("[data-same-as-book]").forEach(sameAsBook);
    }
  });

  // Loading above a slot's capacity: warned beside the slot while typing, and asked before saving.
  // (A convenience: the server decides what it accepts.)
  function overCapacity(slot) {
    var after = number(slot.querySelector('input[name^="counted-"]')) + number(slot.querySelector('input[name^="loaded-"]'));
    slot.querySelectorAll('input[name^="pull-"][name$="-qty"]').forEach(function (input) { after -= number(input); });
    var over = after > parseInt(slot.dataset.capacity, 10);
    var warning = slot.querySelector("[data-over-warning]");
    warning.textContent = over ? slot.dataset.overText.replace("{n}", after) : "";
    warning.hidden = !over;
    slot.classList.toggle("rf-slot-over", over);
    return over ? warning.textContent : null;
  }
  function checkAll() {
    var messages = [];
    form.querySelectorAll("[data-slot][data-capacity]").forEach(function (slot) {
      var message = overCapacity(slot);
      if (message) messages.push(message);
    });
    return messages;
  }
  form.addEventListener("input", function (event) {
    var slot = event.target.closest("[data-slot][data-capacity]");
    if (slot) overCapacity(slot);
  });
  form.addEventListener("submit", function (event) {
    var messages = checkAll();
    if (!messages.length) return;
    var question = [form.dataset.overConfirm].concat(messages, [form.dataset.overConfirmEnd]).join("\n");
    if (!window.confirm(question)) {
      event.preventDefault();
      var first = form.querySelector(".rf-slot-over");
      if (first) first.scrollIntoView({ block: "center" });
    }
  });
  var key = form.dataset.draftKey;
  var store = storage();
  if (!store) return;

  function fields() {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrf_token" && el.type !== "hidden";
    });
  }

  function save() {
    var values = {};
    fields().forEach(function (el) { values[el.name] = el.value; });
    try { store.setItem(key, JSON.stringify({ saved: Date.now(), values: values })); } catch (e) { /* full */ }
  }

  var raw = store.getItem(key);
  // After a refusal the server shows what was submitted; that is newer than the draft.
  if (raw && !form.dataset.serverValues) {
    try {
      var draft = JSON.parse(raw).values || {};
      var restored = false;
      fields().forEach(function (el) {
        if (Object.prototype.hasOwnProperty.call(draft, el.name) && el.value !== draft[el.name]) {
          el.value = draft[el.name];
          restored = true;
        }
      });
      var notice = form.querySelector("[data-draft-notice]");
      if (restored && notice) notice.hidden = false;
    } catch (e) {
      store.removeItem(key);
    }
  }
  form.addEventListener("input", save);
  form.addEventListener("change", save);
  checkAll();
  form.dataset.draftReady = "1";
})();
