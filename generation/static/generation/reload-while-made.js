// An image being made: reload its page every few seconds until it is ready (the server leaves
// this script out once it is). A static file, as the Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  const note = document.getElementById("being-made");
  if (note) { setTimeout(function () { window.location.reload(); }, Number(note.dataset.reloadAfterMs)); }
})();
