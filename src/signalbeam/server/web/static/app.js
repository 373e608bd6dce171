/* SignalBeam dashboard behaviour: live refresh over SSE, CSRF for htmx, copy, confirm, charts.
   No inline scripts anywhere, so the Content-Security-Policy can forbid them. */
(function () {
  "use strict";
  var body = document.body;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  document.addEventListener("htmx:configRequest", function (event) {
    if (csrfMeta) { event.detail.headers["X-CSRF-Token"] = csrfMeta.content; }
  });

  // Live updates: every committed event of the tenant arrives here; pages say which matter.
  function startLive() {
    if (!body.dataset.live || !window.EventSource) { return; }
    var indicator = document.querySelector(".live");
    var onlyDevice = body.dataset.device || "";
    var pending = null;
    var refresh = function () {
      if (pending) { return; }
      // Coalesce bursts (a fleet coming online at once) into one refresh a second.
      pending = setTimeout(function () { pending = null; htmx.trigger(body, "sb:refresh"); }, 800);
    };
    var source = new EventSource("/live");
    var opened = false;
    source.onopen = function () {
      if (indicator) { indicator.classList.add("on"); indicator.textContent = "Live"; }
      // After a reconnect (server restart, network blip) events may have been missed.
      if (opened) { refresh(); }
      opened = true;
    };
    source.onerror = function () {
      if (indicator) { indicator.classList.remove("on"); indicator.textContent = "Reconnecting…"; }
    };
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (err) { return; }
      if (onlyDevice && event.device_id !== onlyDevice) { return; }
      body.dispatchEvent(new CustomEvent("sb:event", { detail: event }));
      refresh();
    };
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copy);
    var text = source ? source.textContent.trim() : "";
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      // Plain http on a LAN has no clipboard API: select the text so Ctrl+C works.
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (err) { /* selected for the user */ }
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);

  function drawCharts(root) {
    var holder = (root || document).querySelector("[data-metrics]");
    if (!holder || !window.uPlot) { return; }
    fetch(holder.dataset.metrics, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (series) {
        var seriesNames = [["cpu", "CPU %", "#2454d6"], ["memory", "Memory %", "#1d7a46"], ["disk", "Disk %", "#b45309"]];
        seriesNames.forEach(function (spec) {
          var box = holder.querySelector('[data-series="' + spec[0] + '"]');
          if (!box) { return; }
          if (box.plot) { box.plot.destroy(); box.plot = null; }
          box.textContent = "";
          var values = series[spec[0]];
          if (!series.ts.length) {
            box.textContent = "No samples in this range yet.";
            return;
          }
          var width = Math.max(box.clientWidth, 240);
          box.plot = new uPlot({
            width: width, height: 180, title: spec[1],
            // The whole chosen range, even when the device has only just started reporting.
            scales: { x: { time: true, auto: false, range: [series.from, series.to] }, y: { range: [0, 100] } },
            series: [{}, { label: spec[1], stroke: spec[2], width: 2, fill: spec[2] + "22", spanGaps: true }],
            axes: [{}, { values: function (u, ticks) { return ticks.map(function (v) { return v + "%"; }); } }],
          }, [series.ts, values], box);
        });
      });
  }

  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
  startLive();
  drawCharts(document);
  // New samples arrive with every sync; a minute is fresh enough for a trend line.
  if (document.querySelector("[data-metrics]")) { setInterval(drawCharts, 60000); }
})();
