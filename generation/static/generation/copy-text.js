// "Copy" buttons on the Feeds pages: each copies the text of the element its data-copy names.
// The clipboard API needs HTTPS (or localhost); elsewhere the text is selected for Ctrl+C.
(function () {
  "use strict";

  function say(button, text, copied) {
    const status = document.querySelector(".copy-status");
    if (status) status.textContent = text;
    if (!copied) return;
    button.dataset.label = button.dataset.label || button.textContent;
    button.textContent = "Copied";
    setTimeout(function () {
      button.textContent = button.dataset.label;
    }, 2000);
  }

  function select(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = source.textContent.trim();
    const fallback = function () {
      select(source);
      say(button, "Selected: press Ctrl+C (⌘C on a Mac) to copy.");
    };
    if (!navigator.clipboard || !window.isSecureContext) {
      fallback();
      return;
    }
    navigator.clipboard.writeText(text).then(function () {
      say(button, "Copied to the clipboard.", true);
    }, fallback);
  });
})();
