// Polls the progress view every second while an identifier import waits or runs, then reloads for the report.
// A static file, not an inline script: the Content Security Policy runs no script without the response's nonce.
(function () {
  var box = document.getElementById("identifier-import-progress");
  if (!box || ["pending", "running"].indexOf(box.dataset.status) < 0) return;
  var bar = box.querySelector("progress"), text = box.querySelector(".identifier-import-summary");
  function tick() {
    fetch(box.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        if (d.total_rows) { bar.max = d.total_rows; bar.value = d.processed_rows; }
        text.textContent = d.summary;
        if (d.finished) { window.location.reload(); } else { setTimeout(tick, 1000); }
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
