// Live status: every 2 s the page is fetched again and its [data-live]
// part swapped in place (no reload, so forms outside it keep their state).
// `document.body.dataset.polls` counts the swaps' fetches, for tests.
(function () {
  "use strict";
  var busy = false;
  function poll() {
    var cur = document.querySelector("[data-live]");
    if (!cur || busy || document.hidden) return;
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Pbatch-Live": "1" } })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var next = doc.querySelector("[data-live]");
        if (next && next.innerHTML !== cur.innerHTML) cur.replaceWith(next);
        document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  setInterval(poll, 2000);
})();
