// While assets run, poll the progress endpoint every 2 s and update the figures in place
// (textContent only: model and provider messages are never parsed as HTML). When nothing is
// running any more, reload once to show the finished images.
(function () {
  "use strict";
  const panel = document.getElementById("batch-progress");
  if (!panel || panel.dataset.running === "0") { return; }
  const set = (element, value) => { if (element) { element.textContent = value; } };
  const timer = setInterval(async function () {
    let data;
    try {
      const response = await fetch(panel.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
      if (!response.ok) { return; }
      data = await response.json();
    } catch (error) { return; }  // a network blip: try again on the next tick
    for (const [key, value] of Object.entries(data.counts)) {
      set(panel.querySelector('[data-count="' + key + '"]'), value);
    }
    for (const [status, count] of Object.entries(data.by_status)) {
      set(panel.querySelector('[data-status="' + status + '"]'), count);
    }
    set(panel.querySelector('[data-field="note"]'), data.note);
    // .errornote sets display itself, so the hidden attribute would not hide it.
    document.getElementById("batch-note").style.display = data.note ? "" : "none";
    for (const asset of data.assets) {
      const row = panel.querySelector('tr[data-asset="' + asset.id + '"]');
      if (!row) { continue; }
      for (const field of ["status", "qa", "cost", "problem"]) {
        set(row.querySelector('[data-field="' + field + '"]'), asset[field]);
      }
    }
    if (data.counts.running === 0) {
      clearInterval(timer);
      window.location.reload();
    }
  }, 2000);
})();
