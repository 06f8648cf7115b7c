/* Copy buttons for long values (hashes, credential ids) that pages show shortened.
 *
 * Markup (audit/pages/describe.py long_value): <button type="button" class="copy" data-copy="whole value"
 * data-copied="translated 'Copied'" hidden>. The buttons start hidden, so a browser without this script or
 * without the clipboard (a page not served over HTTPS or localhost) shows no button that does nothing; the
 * whole value stays in the tooltip and in the screen reader's text. Buttons that htmx swaps in later are
 * revealed on htmx:load.
 */
(function () {
  "use strict";

  function reveal(root) {
    if (!navigator.clipboard || !window.isSecureContext) return;
    var buttons = (root || document).querySelectorAll("button.copy[data-copy][hidden]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy[data-copy]");
    if (!button) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      var done = button.getAttribute("data-copied");
      if (!done) return;
      // The button's own text says it worked (the value stays in data-copy for another copy).
      button.textContent = done;
      button.classList.add("copied");
    });
  });

  document.addEventListener("htmx:load", function (event) { reveal(event.target); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  } else {
    reveal(document);
  }
})();
