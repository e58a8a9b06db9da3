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
  function updateTotals(editor) {
    var places = parseInt(editor.dataset.places, 10);
    var paid = toMinor(editor.dataset.amount, places);
    var total = 0, bad = false;
    editor.querySelectorAll("input[data-alloc]").forEach(function (input) {
      var v = toMinor(input.value, places);
      if (v === null) { bad = true; input.setAttribute("aria-invalid", "true"); }
      else { input.removeAttribute("aria-invalid"); total += v; }
    });
    var onAccount = editor.querySelector("input[name=on_account_amount]");
    var acc = onAccount ? toMinor(onAccount.value, places) : 0;
    if (acc === null) { bad = true; acc = 0; }
    var remainder = paid - total - acc;
    var cur = editor.dataset.currency;
    editor.querySelector("[data-total]").textContent = fromMinor(total, places) + " " + cur;
    var rem = editor.querySelector("[data-remainder]");
    rem.textContent = bad ? "check the amounts" : fromMinor(remainder, places) + " " + cur;
    rem.className = (bad || remainder < 0) ? "bad" : (remainder === 0 ? "good" : "");
  }
  function bindEditors(root) {
    root.querySelectorAll("[data-allocation-editor]").forEach(function (editor) {
      if (editor.dataset.bound) { updateTotals(editor); return; }
      editor.dataset.bound = "1";
      editor.addEventListener("input", function () { updateTotals(editor); });
      updateTotals(editor);
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

  document.addEventListener("DOMContentLoaded", function () {
    bindEditors(document); bindSelectAll(document); drawCharts();
  });
  document.addEventListener("htmx:afterSwap", function (e) { bindEditors(e.target.closest("form") || document); });
})();
