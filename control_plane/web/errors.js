// Records every script error, failed resource and console.error into #pw-errors, so a
// headless browser (and an operator) can see that the page ran cleanly.
(function () {
  "use strict";
  var log = [];
  function show() {
    var status = document.getElementById("pw-status");
    var pre = document.getElementById("pw-errors");
    if (status) status.setAttribute("data-errors", String(log.length));
    if (pre) { pre.textContent = log.join("\n"); pre.hidden = log.length === 0; }
  }
  function record(text) {
    log.push(String(text).slice(0, 500));
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", show);
    } else {
      show();
    }
  }
  window.pwRecordError = record;
  window.addEventListener("error", function (ev) {
    var t = ev.target;
    if (t && t !== window && (t.src || t.href)) {
      record("failed to load " + (t.src || t.href));
    } else {
      record("error: " + ev.message + " at " + ev.filename + ":" + ev.lineno);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (ev) {
    record("unhandled rejection: " + (ev.reason && ev.reason.stack || ev.reason));
  });
  var original = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
})();
