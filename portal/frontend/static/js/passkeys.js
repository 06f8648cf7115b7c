/* Passkey buttons: sign in, accept an invitation, add a passkey, sign a document. Needs @simplewebauthn/browser (UMD).
 *
 * Markup (templates/auth/_passkey.html):
 *   <div data-passkey data-options-url=… data-submit-url=… [data-next=…] [data-display-name-input=ID]
 *        [data-name-input=ID] data-msg-*=…>
 *     <button data-passkey-start hidden>…</button>      shown when the browser can use passkeys
 *     <p data-passkey-unsupported hidden>…</p>          shown when it cannot
 *     <p data-passkey-status role="status"></p>  <p data-passkey-error role="alert" hidden></p>
 *   </div>
 * Every request is a JSON POST carrying the CSRF token of <meta name="csrf-token"> in x-csrftoken.
 * The server answers {publicKey} for options, {redirect} on success and {message} on refusal.
 */
(function () {
  "use strict";

  var lib = window.SimpleWebAuthnBrowser;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function ServerRefusal(message) {
    this.name = "ServerRefusal";
    this.message = message;
  }

  async function postJSON(url, body, fallback) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        "x-csrftoken": csrfToken(),
      },
      body: JSON.stringify(body || {}),
    });
    var data = {};
    try {
      data = await response.json();
    } catch (e) {
      data = {};
    }
    if (!response.ok) {
      throw new ServerRefusal(data.detail || fallback); // RFC 9457 problem details
    }
    return data;
  }

  function valueOf(id) {
    var el = id ? document.getElementById(id) : null;
    return el ? el.value : "";
  }

  function supported() {
    return Boolean(lib && lib.browserSupportsWebAuthn && lib.browserSupportsWebAuthn());
  }

  function setup(widget) {
    var button = widget.querySelector("[data-passkey-start]");
    var unsupported = widget.querySelector("[data-passkey-unsupported]");
    var status = widget.querySelector("[data-passkey-status]");
    var error = widget.querySelector("[data-passkey-error]");
    var d = widget.dataset;
    if (!button) return;
    if (!supported()) {
      button.hidden = true;
      if (unsupported) unsupported.hidden = false;
      return;
    }
    button.hidden = false;
    if (unsupported) unsupported.hidden = true;

    function showError(message) {
      status.textContent = "";
      error.textContent = message;
      error.hidden = false;
    }

    function explain(err) {
      if (err instanceof ServerRefusal) return err.message;
      var name = err && err.name;
      if (name === "NotAllowedError" || name === "AbortError") return d.msgCancelled;
      if (name === "InvalidStateError") return d.msgExists;
      if (name === "SecurityError") return d.msgInsecure;
      return d.msgFailed;
    }

    button.addEventListener("click", async function () {
      button.disabled = true;
      error.hidden = true;
      error.textContent = "";
      status.textContent = d.msgWorking || "";
      try {
        var displayName = valueOf(d.displayNameInput);
        var options = await postJSON(d.optionsUrl, { display_name: displayName }, d.msgFailed);
        var credential =
          d.passkey === "signin" || d.passkey === "sign"
            ? await lib.startAuthentication({ optionsJSON: options.publicKey })
            : await lib.startRegistration({ optionsJSON: options.publicKey });
        var result = await postJSON(
          d.submitUrl,
          { credential: credential, name: valueOf(d.nameInput), next: d.next || "" },
          d.msgFailed
        );
        status.textContent = d.msgDone || "";
        window.location.assign(result.redirect || "/");
      } catch (err) {
        showError(explain(err));
        button.disabled = false;
      }
    });
  }

  function init() {
    document.querySelectorAll("[data-passkey]").forEach(setup);
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        window.print();
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
