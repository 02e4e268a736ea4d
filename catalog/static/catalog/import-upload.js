// Send the import's files in slices, each slice its own request, with a progress bar and a
// retry of a slice that fails; then ask for the import and open its page. Without this script
// (or without fetch and Blob.slice) the form posts both files in one request, as before.
(function () {
  const form = document.getElementById("catalog-import-form");
  if (!form || !window.fetch || !window.FormData || !window.Blob || !Blob.prototype.slice) return;
  const FIELDS = ["csv_file", "images_zip"];
  const RETRIES = 5;
  const panel = document.getElementById("import-upload");
  const bar = panel.querySelector("progress");
  const status = document.getElementById("import-upload-status");
  const problem = document.getElementById("import-upload-error");
  const button = form.querySelector("input[type=submit]");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const mb = (bytes) => (bytes / 1048576).toFixed(1) + " MB";

  class Refused extends Error {}  // the server said no: sending again will not help

  async function post(url, body, headers) {
    const response = await fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: Object.assign({"X-CSRFToken": csrf}, headers || {}),
    });
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("application/json")) {
      if (response.redirected || response.status === 403) {
        throw new Refused("You are logged out or may not import: reload the page and log in again.");
      }
      throw new Error("the server answered " + response.status);
    }
    const data = await response.json();
    if (response.status >= 400 && response.status < 500) throw new Refused(data.error);
    if (!response.ok) throw new Error(data.error || "the server answered " + response.status);
    return data;
  }

  async function withRetries(what, attempt) {
    for (let tries = 1; ; tries++) {
      try {
        return await attempt();
      } catch (error) {
        if (error instanceof Refused || tries > RETRIES) throw error;
        status.textContent = what + " failed (" + error.message + "); sending it again (" + tries + " of " + RETRIES + ")…";
        await new Promise((resume) => window.setTimeout(resume, 1000 * tries));
      }
    }
  }

  function show(sent, total) {
    bar.max = Math.max(total, 1);
    bar.value = sent;
    status.textContent = mb(sent) + " of " + mb(total) + " sent (" + Math.floor(100 * sent / Math.max(total, 1)) + " %)";
  }

  async function upload() {
    const files = {};
    for (const field of FIELDS) {
      const input = form.elements[field];
      if (input && input.files.length) files[field] = input.files[0];
    }
    const declared = new FormData();
    for (const [field, file] of Object.entries(files)) {
      declared.append(field + "_name", file.name);
      declared.append(field + "_size", String(file.size));
    }
    declared.append("kind", form.elements.kind ? form.elements.kind.value : "");
    const total = Object.values(files).reduce((sum, file) => sum + file.size, 0);
    const started = await withRetries("Starting the upload", () => post(form.dataset.uploadUrl, declared));
    let sent = 0;
    show(sent, total);
    for (const [field, file] of Object.entries(files)) {
      for (let index = 0, start = 0; start < file.size; index++, start += started.slice_bytes) {
        const piece = file.slice(start, Math.min(start + started.slice_bytes, file.size));
        await withRetries("Slice " + (index + 1) + " of " + file.name, () =>
          post(started.upload_url + field + "/" + index + "/", piece, {"Content-Type": "application/octet-stream"}));
        sent += piece.size;
        show(sent, total);
      }
    }
    status.textContent = "Every slice has arrived; starting the import…";
    const job = await withRetries("Starting the import", () => post(started.finish_url, null));
    window.location.assign(job.url);
  }

  form.addEventListener("submit", (event) => {
    const csv = form.elements.csv_file;
    if (!csv || !csv.files.length) return;  // the form's own answer says what is missing
    event.preventDefault();
    button.disabled = true;
    problem.hidden = true;
    panel.hidden = false;
    upload().catch((error) => {
      problem.textContent = "Nothing was imported. " + error.message;
      problem.hidden = false;
      panel.hidden = true;
      button.disabled = false;
    });
  });
  form.dataset.sliced = "ready";
})();
