// Live log: when the server says the store changed, fetch the log
// fragment again and put it in place. Without JavaScript (or
// EventSource) the page reloads itself every 30 s instead.
// #log's data-refresh says whether a refresh is under way ("busy") or
// not ("idle"): whoever drives the page (a test) waits for "idle" before
// touching the log, whose elements a refresh replaces.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || !window.EventSource || !window.fetch) { return; }
  var busy = false, again = false;
  log.setAttribute("data-refresh", "idle");
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    log.setAttribute("data-refresh", "busy");
    fetch(log.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) { log.innerHTML = html; })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); } else { log.setAttribute("data-refresh", "idle"); }
      });
  }
  var events = new EventSource("/router/console/events");
  events.addEventListener("changed", refresh);
  events.addEventListener("open", function () { document.documentElement.setAttribute("data-live", "on"); });
})();
