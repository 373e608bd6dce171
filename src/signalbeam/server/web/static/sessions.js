/* Device page sessions: logs (every role) and a terminal (operators), over the session stream.
   A session is asked for with a CSRF-checked POST, then streamed over a same-origin WebSocket:
   binary frames are one stream byte (1 stdout, 2 stderr) and the bytes; text frames are JSON. */
(function () {
  "use strict";
  var panel = document.querySelector("[data-device-url]");
  if (!panel) { return; }
  var base = panel.dataset.deviceUrl;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var STDIN = 0, STDOUT = 1, STDERR = 2;

  function ask(fields) {
    var body = new URLSearchParams(fields);
    body.set("csrf", csrf);
    return fetch(base + "/sessions", { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { throw new Error(data.detail || ("HTTP " + response.status)); }
          return data;
        });
      });
  }

  function connect(path, handlers) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + path);
    socket.binaryType = "arraybuffer";
    var finished = false;
    socket.onmessage = function (message) {
      if (typeof message.data === "string") {
        var control = JSON.parse(message.data);
        if (control.type === "exit" || control.type === "error") { finished = true; }
        handlers.control(control);
      } else {
        var bytes = new Uint8Array(message.data);
        handlers.output(bytes[0], bytes.subarray(1));
      }
    };
    socket.onclose = function () {
      if (!finished) { handlers.control({ type: "error", detail: "connection lost" }); }
      handlers.closed();
    };
    return socket;
  }

  function say(element, text) { element.textContent = text; }

  // Logs
  var logsForm = document.getElementById("logs-form");
  var logsOut = document.getElementById("logs-output");
  var logsStatus = document.getElementById("logs-status");
  var logsStop = document.getElementById("logs-stop");
  var logsSocket = null;
  var decoders = {};
  logsForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (logsSocket) { logsSocket.close(); }
    var fields = Object.fromEntries(new FormData(logsForm).entries());
    fields.kind = "logs";
    logsOut.textContent = "";
    decoders = { 1: new TextDecoder(), 2: new TextDecoder() };
    say(logsStatus, "Asking the device…");
    ask(fields).then(function (created) {
      logsSocket = connect(created.stream, {
        output: function (stream, bytes) {
          var span = document.createElement("span");
          if (stream === STDERR) { span.className = "stderr"; }
          span.textContent = decoders[stream].decode(bytes, { stream: true });
          var atEnd = logsOut.scrollTop + logsOut.clientHeight >= logsOut.scrollHeight - 4;
          logsOut.appendChild(span);
          if (atEnd) { logsOut.scrollTop = logsOut.scrollHeight; }
        },
        control: function (control) {
          if (control.type === "started") { say(logsStatus, fields.follow ? "Following…" : "Reading…"); logsStop.hidden = !fields.follow; }
          if (control.type === "exit") { say(logsStatus, "End of log."); }
          if (control.type === "error") { say(logsStatus, "Error: " + control.detail); }
        },
        closed: function () { logsSocket = null; logsStop.hidden = true; }
      });
    }).catch(function (err) { say(logsStatus, "Error: " + err.message); });
  });
  logsStop.addEventListener("click", function () {
    if (logsSocket) { logsSocket.close(); say(logsStatus, "Stopped."); }
  });

  // Replay of a recorded terminal session (an asciinema v2 cast), operators only.
  var replay = document.getElementById("replay");
  if (replay && window.Terminal) { setUpReplay(replay); }

  // Terminal
  var openButton = document.getElementById("terminal-open");
  if (!openButton || !window.Terminal) { return; }
  var closeButton = document.getElementById("terminal-close");
  var termStatus = document.getElementById("terminal-status");
  var holder = document.getElementById("terminal");
  var unitSelect = document.getElementById("terminal-unit");
  var encoder = new TextEncoder();
  var termSocket = null;
  openButton.addEventListener("click", function () {
    holder.hidden = false;
    holder.textContent = "";
    var term = new window.Terminal({ rows: 24, cols: 100, convertEol: false });
    term.open(holder);
    // Empty is the host; else a unit the device reported (its container, or an app's directory).
    var unit = unitSelect.value;
    say(termStatus, "Asking the device…");
    unitSelect.disabled = true;
    ask({ kind: "shell", unit: unit, rows: term.rows, cols: term.cols }).then(function (created) {
      termSocket = connect(created.stream, {
        output: function (stream, bytes) { term.write(bytes); },
        control: function (control) {
          if (control.type === "started") {
            say(termStatus, unit ? "Connected to " + unit + " (recorded)." : "Connected (recorded).");
            openButton.hidden = true; closeButton.hidden = false; term.focus();
          }
          if (control.type === "exit") { say(termStatus, "Shell exited with status " + control.code + "."); }
          if (control.type === "error") { say(termStatus, "Error: " + control.detail); }
        },
        closed: function () { termSocket = null; openButton.hidden = false; closeButton.hidden = true; unitSelect.disabled = false; }
      });
      term.onData(function (data) {
        if (!termSocket || termSocket.readyState !== 1) { return; }
        var bytes = encoder.encode(data);
        var framed = new Uint8Array(bytes.length + 1);
        framed[0] = STDIN;
        framed.set(bytes, 1);
        termSocket.send(framed);
      });
      term.onResize(function (size) {
        if (termSocket && termSocket.readyState === 1) {
          termSocket.send(JSON.stringify({ type: "resize", rows: size.rows, cols: size.cols }));
        }
      });
    }).catch(function (err) { say(termStatus, "Error: " + err.message); unitSelect.disabled = false; });
  });
  closeButton.addEventListener("click", function () { if (termSocket) { termSocket.close(); } });

  function setUpReplay(box) {
    var status = document.getElementById("replay-status");
    var pauseButton = document.getElementById("replay-pause");
    var speedSelect = document.getElementById("replay-speed");
    var holder = document.getElementById("replay-terminal");
    var current = null;
    function show(state, text) {
      box.dataset.state = state;
      say(status, text);
      pauseButton.textContent = state === "playing" ? "Pause" : (state === "ended" ? "Play again" : "Play");
    }
    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-replay]");
      if (!button) { return; }
      if (current) { current.stop(); current = null; }
      box.hidden = false;
      holder.textContent = "";
      say(document.getElementById("replay-title"), button.dataset.title);
      show("loading", "Loading the recording…");
      fetch(button.dataset.replay, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) {
          return response.json().then(function (problem) { throw new Error(problem.detail || ("HTTP " + response.status)); });
        }
        return response.text();
      }).then(function (text) {
        var cast = parseCast(text);
        var term = new window.Terminal({ rows: cast.rows, cols: cast.cols, convertEol: false, disableStdin: true });
        term.open(holder);
        current = player(term, cast.frames, show);
        current.speed(Number(speedSelect.value));
        current.play();
      }).catch(function (err) { show("error", "Error: " + err.message); });
    });
    pauseButton.addEventListener("click", function () { if (current) { current.toggle(); } });
    speedSelect.addEventListener("change", function () { if (current) { current.speed(Number(speedSelect.value)); } });
    document.getElementById("replay-end").addEventListener("click", function () { if (current) { current.end(); } });
    document.getElementById("replay-close").addEventListener("click", function () {
      if (current) { current.stop(); current = null; }
      holder.textContent = "";
      box.hidden = true;
    });
  }

  // A cast: a JSON header line (width, height), then one [seconds, "o", text] line per output.
  function parseCast(text) {
    var lines = text.split("\n").filter(function (line) { return line.trim() !== ""; });
    var header = JSON.parse(lines[0]);
    var frames = [];
    for (var i = 1; i < lines.length; i++) {
      var item = JSON.parse(lines[i]);
      if (item[1] === "o") { frames.push({ at: Number(item[0]), text: String(item[2]) }); }
    }
    return { cols: header.width || 80, rows: header.height || 24, frames: frames };
  }

  // Plays frames at their recorded times (divided by the speed). A long quiet spell, such as
  // an operator reading, is cut to maxPause seconds so a replay never sits on a still screen.
  function player(term, frames, show) {
    var maxPause = 2;
    var next = 0, clock = 0, speed = 1, timer = null, state = "paused";
    function wait() {
      if (next >= frames.length) { state = "ended"; show("ended", "Ended."); return; }
      // The first output shows at once: the silence before it is the session starting.
      var seconds = next === 0 ? 0 : Math.min(Math.max(frames[next].at - clock, 0), maxPause) / speed;
      timer = setTimeout(step, seconds * 1000);
    }
    function step() {
      timer = null;
      var frame = frames[next++];
      term.write(frame.text);
      clock = frame.at;
      wait();
    }
    function halt() { if (timer) { clearTimeout(timer); timer = null; } }
    function play() {
      if (state === "ended") { term.reset(); next = 0; clock = 0; }
      state = "playing";
      show("playing", "Playing at " + speed + "×.");
      wait();
    }
    return {
      play: play,
      toggle: function () {
        if (state === "playing") { halt(); state = "paused"; show("paused", "Paused."); } else { play(); }
      },
      speed: function (value) {
        speed = value > 0 ? value : 1;
        if (state === "playing") { halt(); show("playing", "Playing at " + speed + "×."); wait(); }
      },
      end: function () {
        halt();
        term.write(frames.slice(next).map(function (frame) { return frame.text; }).join(""));
        next = frames.length;
        state = "ended";
        show("ended", "Ended.");
      },
      stop: function () { halt(); term.dispose(); }
    };
  }
})();
