// Small progressive enhancements; every screen works without them (plain forms and links).
(function () {
  "use strict";

  // Allocation editor: show the running total and the remainder while amounts are typed.
  // Arithmetic in integer minor units of the payment's currency, never in binary floats.
  function toMinor(text, places) {
    var s = String(text || "").trim().replace(/,/g, "");
    if (!/^\d*(\.\d*)?$/.test(s) || s === "" || s === ".") return s === "" ? 0 : null;
    var parts = s.split(".");
    var frac = (parts[1] || "");
    // extra trailing zeros are exact (10.500 GBP is 10.50), as the server's exact() agrees
    while (frac.length > places && frac.charAt(frac.length - 1) === "0") frac = frac.slice(0, -1);
    if (frac.length > places) return null;
    while (frac.length < places) frac += "0";
    return parseInt(parts[0] || "0", 10) * Math.pow(10, places) + parseInt(frac || "0", 10);
  }
  function fromMinor(minor, places) {
    var neg = minor < 0; minor = Math.abs(minor);
    var unit = Math.pow(10, places);
    var whole = Math.floor(minor / unit).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var frac = places ? "." + String(minor % unit).padStart(places, "0") : "";
    return (neg ? "-" : "") + whole + frac;
  }
  function plain(minor, places) { return fromMinor(minor, places).replace(/,/g, ""); }
  // An invoice's rows in the editor: two rows of one invoice cannot both be posted, so the
  // footer says so (and the server refuses the submit) instead of counting both.
  function repeatedInvoices(editor) {
    var seen = {}, repeated = [];
    editor.querySelectorAll("tr[data-editor-row]").forEach(function (row) {
      var id = row.dataset.editorRow;
      if (seen[id] === 1) repeated.push(row.querySelector("a").textContent);
      seen[id] = (seen[id] || 0) + 1;
    });
    return repeated;
  }
  function updateTotals(editor) {
    var places = parseInt(editor.dataset.places, 10);
    var paid = toMinor(editor.dataset.amount, places);
    var total = 0, bad = false;
    editor.querySelectorAll("input[data-alloc]").forEach(function (input) {
      var v = toMinor(input.value, places);
      if (v === null) { bad = true; input.setAttribute("aria-invalid", "true"); }
      else { input.removeAttribute("aria-invalid"); total += v; }
    });
    var repeated = repeatedInvoices(editor);
    var remainder = paid - total;
    var cur = editor.dataset.currency;
    editor.querySelector("[data-total]").textContent =
      repeated.length ? "—" : fromMinor(total, places) + " " + cur;
    var rem = editor.querySelector("[data-remainder]");
    if (repeated.length) rem.textContent = repeated.join(", ") + " is in twice: remove a row";
    else rem.textContent = bad ? "check the amounts" : fromMinor(remainder, places) + " " + cur;
    rem.className = (bad || repeated.length || remainder < 0) ? "bad" : (remainder === 0 ? "good" : "");
    // what the footer shows travels with the form; the server refuses lines that differ
    var shown = editor.querySelector("input[data-shown-on-account]");
    if (shown) shown.value = (bad || repeated.length) ? "" : plain(remainder, places);
    refreshAddButtons(editor);
  }
  // "Add" is offered only for invoices not in the editor yet.
  function refreshAddButtons(editor) {
    document.querySelectorAll("button[data-add-invoice]").forEach(function (button) {
      var present = editor.querySelector('tr[data-editor-row="' + button.dataset.addInvoice + '"]');
      button.disabled = !!present;
      button.textContent = present ? "Added" : "Add";
    });
  }
  function bindEditors(root) {
    root.querySelectorAll("[data-allocation-editor]").forEach(function (editor) {
      if (editor.dataset.bound) { updateTotals(editor); return; }
      editor.dataset.bound = "1";
      editor.addEventListener("input", function () { updateTotals(editor); });
      editor.addEventListener("click", function (e) {
        var remove = e.target.closest("button[data-remove-row]");
        if (!remove) return;
        remove.closest("tr").remove();
        updateTotals(editor);
      });
      updateTotals(editor);
    });
  }
  // A second click on Add while the first row is on its way would add the invoice twice.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var button = e.detail.elt;
    if (!button || !button.dataset || !button.dataset.addInvoice) return;
    var editor = document.querySelector("[data-allocation-editor]");
    if (button.disabled || (editor && editor.querySelector('tr[data-editor-row="' + button.dataset.addInvoice + '"]'))) {
      e.preventDefault();
      return;
    }
    button.disabled = true;
  });

  // Every form that changes something is sent once: a second click (or Enter) while the first
  // submit is on its way does nothing. The server checks the form's token as well.
  function bindSubmitOnce() {
    document.addEventListener("submit", function (e) {
      var form = e.target;
      if ((form.getAttribute("method") || "get").toLowerCase() !== "post") return;
      if (form.dataset.submitting) { e.preventDefault(); return; }
      if (form.matches("[data-allocation-editor]")) updateTotals(form);
      form.dataset.submitting = "1";
      // disabled after this event, so the clicked button's own name/value is still sent
      setTimeout(function () {
        form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) {
          b.disabled = true;
          b.setAttribute("aria-busy", "true");
        });
      }, 0);
    });
    // back/forward restores a page from memory: its forms can be used again
    window.addEventListener("pageshow", function (e) {
      if (!e.persisted) return;
      document.querySelectorAll("form[data-submitting]").forEach(function (form) {
        delete form.dataset.submitting;
        form.querySelectorAll("button[aria-busy]").forEach(function (b) {
          b.disabled = false;
          b.removeAttribute("aria-busy");
        });
      });
    });
  }

  // Inbox: a "select all" checkbox for bulk approval.
  function bindSelectAll(root) {
    root.querySelectorAll("input[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        var name = box.dataset.selectAll || "plan_ids";
        document.querySelectorAll("input[name=" + name + "]").forEach(function (b) { b.checked = box.checked; });
      });
    });
  }

  // Dashboard charts from data rendered with json_script (no inline scripts: CSP-friendly).
  function drawCharts() {
    var node = document.getElementById("chart-data");
    if (!node || typeof Chart === "undefined") return;
    var data = JSON.parse(node.textContent);
    var rate = document.getElementById("chart-match-rate");
    if (rate) new Chart(rate, { type: "line", data: { labels: data.match_rate.labels,
      datasets: [{ label: "Matched %", data: data.match_rate.rates, borderColor: "#1f5fbf", tension: 0.2 }] },
      options: { maintainAspectRatio: false, animation: false, scales: { y: { min: 0, max: 100 } } } });
    var colours = ["#1f5fbf", "#067647", "#b54708", "#7a5af8", "#b42318", "#0e7490"];
    document.querySelectorAll("canvas[data-cash-chart]").forEach(function (canvas) {
      var chart = data.cash_by_source[parseInt(canvas.dataset.cashChart, 10)];
      new Chart(canvas, { type: "bar", data: { labels: chart.labels,
        datasets: chart.series.map(function (s, i) {
          return { label: s.label, data: s.data.map(Number), backgroundColor: colours[i % colours.length] }; }) },
        options: { maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true } } } });
    });
  }

  // Provider books: each clearing account's balance over time, AIQ beside the provider.
  function drawClearingCharts() {
    var node = document.getElementById("clearing-data");
    if (!node || typeof Chart === "undefined") return;
    var charts = JSON.parse(node.textContent);
    document.querySelectorAll("canvas[data-clearing-chart]").forEach(function (canvas) {
      var chart = charts[parseInt(canvas.dataset.clearingChart, 10)];
      new Chart(canvas, { type: "line", data: { labels: chart.labels, datasets: [
        { label: "AIQ clearing account", data: chart.aiq.map(Number), borderColor: "#1f5fbf", tension: 0.1 },
        { label: "Provider balance", data: chart.provider.map(function (v) { return v === null ? null : Number(v); }),
          borderColor: "#b54708", borderDash: [4, 3], tension: 0.1 }] },
        options: { maintainAspectRatio: false, animation: false } });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindEditors(document); bindSelectAll(document); bindSubmitOnce(); drawCharts(); drawClearingCharts();
  });
  document.addEventListener("htmx:afterSwap", function () { bindEditors(document); });
})();
