// meta's page, live. One EventSource on the hub's /events: when the hub
// publishes a change, the page fetches itself again and swaps <main>. It
// says when it lost the hub, and catches up when it is back. Without this
// script every page still works; it only stands still.
(function () {
  "use strict";
  var body = document.body;
  if (!window.EventSource || !window.fetch || !window.DOMParser || body.dataset.live === "off") {
    return;
  }
  var status = document.getElementById("live-status");
  var gen = body.dataset.generation || "0";
  var source = null, watchdog = null, heartbeat = 15000, wasLost = false;
  var busy = false, again = false, signedOut = false;

  function say(state, text) {
    body.dataset.live = state;
    if (status) { status.textContent = text; }
  }

  // typing says the viewer is in a form field: the page waits until they
  // leave it rather than swap it from under them.
  function typing() {
    var a = document.activeElement;
    return a && a.form && document.getElementById("live").contains(a);
  }

  function refresh() {
    if (busy || typing()) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401 || (r.redirected && new URL(r.url).pathname === "/login")) {
          // The token was removed, or the cookie is gone: nothing more
          // to follow until the viewer signs in again.
          signedOut = true;
          if (source) { source.close(); source = null; }
          clearTimeout(watchdog);
          say("signed-out", "signed out: reload to sign in");
          return null;
        }
        // The hub failing to render keeps the page as it was: what it
        // shows is older, not gone.
        if (r.status >= 500) { throw new Error("the hub answered " + r.status); }
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live"), old = document.getElementById("live");
        if (!fresh || !old) { return; }
        old.replaceChildren.apply(old, Array.prototype.slice.call(fresh.childNodes).map(function (n) {
          return document.adoptNode(n);
        }));
        document.title = doc.title;
        gen = doc.body.dataset.generation || gen;
        body.dataset.generation = gen;
        body.dataset.refreshed = String(Number(body.dataset.refreshed || "0") + 1);
      })
      .catch(function () { lost(); })
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  document.addEventListener("focusout", function () {
    setTimeout(function () { if (again && !typing()) { again = false; refresh(); } }, 0);
  });

  function lost() {
    if (signedOut) { return; }
    wasLost = true;
    say("lost", "lost the hub: retrying");
  }

  // alive is any word from the hub: the watchdog starts again.
  function alive() {
    clearTimeout(watchdog);
    watchdog = setTimeout(function () { lost(); reconnect(); }, 3 * heartbeat);
  }

  function reconnect() {
    if (source) { source.close(); source = null; }
    if (signedOut) { return; }
    setTimeout(connect, 2000);
  }

  function connect() {
    if (signedOut || source) { return; }
    if (document.hidden) { say("paused", "paused while hidden"); return; }
    source = new EventSource("/events");
    source.addEventListener("hello", function (e) {
      var d = JSON.parse(e.data);
      if (d.heartbeat_ms) { heartbeat = d.heartbeat_ms; }
      alive();
      say("ok", "live");
      // A page rendered before this stream began (or by a hub since
      // restarted) may have missed changes: ask again.
      if (wasLost || String(d.generation) !== gen) { refresh(); }
      wasLost = false;
    });
    source.addEventListener("change", function () { alive(); refresh(); });
    source.addEventListener("ping", alive);
    source.onerror = function () {
      lost();
      // Closed: an answer that was not a stream (signed out, the hub
      // stopping). The browser does not retry those by itself; asking for
      // the page says which it was.
      if (source && source.readyState === EventSource.CLOSED) { refresh(); reconnect(); }
    };
  }
  // A hidden page lets go of its stream, and catches up when it is seen
  // again: over plain HTTP a browser opens at most six connections to a
  // host, and each open stream holds one, so six open tabs would leave
  // none for the seventh to load.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (source) { source.close(); source = null; }
      clearTimeout(watchdog);
      if (!signedOut) { wasLost = true; say("paused", "paused while hidden"); }
    } else {
      connect();
    }
  });
  connect();
})();
