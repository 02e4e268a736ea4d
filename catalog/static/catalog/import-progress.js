// Follow the import: figures every second, the whole page again when its state changes.
(function () {
  const page = document.querySelector(".import-job");
  const set = (id, text) => { const node = document.getElementById(id); if (node) node.textContent = text; };
  async function poll() {
    try {
      const response = await fetch(page.dataset.progressUrl, {credentials: "same-origin"});
      if (response.ok) {
        const data = await response.json();
        if (data.state !== page.dataset.state) { window.location.reload(); return; }
        const bar = page.querySelector("progress");
        bar.max = Math.max(data.total, 1); bar.value = data.done;
        set("import-done", data.done); set("import-total", data.total); set("import-phase", data.phase);
        set("import-photos", data.photos); set("import-errors-so-far", data.errors);
        set("import-left", data.seconds_left === null ? "starting" : "about " + data.seconds_left + " s left");
      }
    } catch (error) { /* the next poll tries again */ }
    window.setTimeout(poll, 1000);
  }
  window.setTimeout(poll, 1000);
})();
