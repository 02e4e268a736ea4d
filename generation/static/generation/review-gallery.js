// The review gallery's keyboard: A approve, R reject (a reason is asked for), F regenerate
// (feedback is asked for), arrows or J/K move, Enter opens the image's page (as a click on
// its picture does). Decisions are posted to the asset's decide URL
// asking for JSON, so the page stays; the focus moves on to the next card.
(function () {
  "use strict";
  const gallery = document.getElementById("gallery");
  if (!gallery) return;
  const canReview = gallery.dataset.canReview === "1";
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const cards = () => Array.from(gallery.querySelectorAll(".card"));
  const ASKS = {reject: "Why is it rejected? (Enter sends, Esc cancels)",
                regenerate: "What should change? (Enter sends, Esc cancels)"};

  function move(card, step) {
    const all = cards();
    const next = all[Math.min(Math.max(all.indexOf(card) + step, 0), all.length - 1)];
    if (next) next.focus();
  }

  function nextOpen(card) {
    const all = cards();
    const after = all.slice(all.indexOf(card) + 1).concat(all.slice(0, all.indexOf(card)));
    const open = after.find((c) => !c.classList.contains("done"));
    (open || card).focus();
  }

  async function decide(card, decision, text) {
    const body = new URLSearchParams({decision: decision, text: text || ""});
    const state = card.querySelector(".state");
    state.textContent = "Saving…";
    try {
      const response = await fetch(card.dataset.decideUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: {"X-CSRFToken": csrf, "Accept": "application/json"}});
      const answer = await response.json();
      if (!answer.ok) throw new Error(answer.error || response.statusText);
      state.textContent = answer.label + (decision === "regenerate" ? " — a new version is queued" : "");
      card.classList.add("done", answer.status);
      (answer.set_aside || []).forEach((id) => {  // the other variants of an approved one
        const sibling = gallery.querySelector(`.card[data-asset="${id}"]`);
        if (!sibling) return;
        sibling.classList.add("done", "set_aside");
        sibling.querySelector(".state").textContent = "Set aside (another variant approved)";
      });
      nextOpen(card);
    } catch (error) {
      card.classList.add("error");
      state.textContent = "Not saved: " + error.message;
    }
  }

  function ask(card, decision) {
    if (card.querySelector("textarea")) return;
    const box = document.createElement("textarea");
    box.rows = 3;
    box.placeholder = ASKS[decision];
    box.setAttribute("aria-label", ASKS[decision]);
    card.appendChild(box);
    box.focus();
    box.addEventListener("keydown", (event) => {
      event.stopPropagation();
      if (event.key === "Escape") { box.remove(); card.focus(); }
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        const text = box.value.trim();
        if (!text) return;
        box.remove();
        decide(card, decision, text);
      }
    });
  }

  function act(card, decision) {
    if (!canReview || card.classList.contains("done")) return;
    if (decision === "approve") decide(card, "approve");
    else ask(card, decision);
  }

  gallery.addEventListener("keydown", (event) => {
    const card = event.target.closest(".card");
    if (!card || event.target !== card || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    const steps = {arrowright: 1, arrowdown: 1, j: 1, arrowleft: -1, arrowup: -1, k: -1};
    if (key in steps) { event.preventDefault(); move(card, steps[key]); }
    else if (key === "a") { event.preventDefault(); act(card, "approve"); }
    else if (key === "r") { event.preventDefault(); act(card, "reject"); }
    else if (key === "f") { event.preventDefault(); act(card, "regenerate"); }
    else if (key === "enter") { event.preventDefault(); card.querySelector("a").click(); }
  });
  gallery.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-decision]");
    if (button) act(button.closest(".card"), button.dataset.decision);
  });
  const first = cards()[0];
  if (first) first.focus();
})();
