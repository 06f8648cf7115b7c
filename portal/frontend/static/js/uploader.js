/* Evidence uploader: shrink photos on the phone, upload straight to object storage, then tell the portal.
 *
 * Markup: evidence/_macros.html uploader(); image_header.js beside it. For each picked file:
 *   1. size it from its header (no decoding): over the server's pixel limit (data-max-pixels) it is refused
 *      with the server's message (data-msg-pixels) and nothing is sent; a file whose header cannot be read
 *      is sent as it is, undecoded, for the server to judge;
 *   2. shrink: photos are decoded with createImageBitmap (EXIF orientation applied), drawn at most
 *      2048 px on the longest edge and re-encoded as JPEG (quality 0.8). The original's EXIF block (capture
 *      time, GPS for the unit's managers) is carried over with its orientation reset to "upright". When the
 *      decode or the drawing cannot be trusted (another size than the header's, a blank canvas, no JPEG
 *      out), the original goes instead;
 *   3. POST /evidence/slots (JSON) with a client id made once per file: a retry gets the same slot back;
 *   4. the presigned multipart POST with XMLHttpRequest (progress events drive a <progress>);
 *   5. POST /evidence/slots/{id}/complete; the gallery reloads on the "evidence-uploaded" event.
 * Network failures and 5xx answers are retried a bounded number of times with exponential backoff.
 */
(function () {
  "use strict";

  var MAX_EDGE = 2048;
  var QUALITY = 0.8;
  var MAX_TRIES = 5;
  var PARALLEL = 2;
  var SMALL_JPEG = 1.5 * 1024 * 1024; // a JPEG this small and at most MAX_EDGE px goes as taken
  var PROBE_EDGE = 16; // pixels per side of the blank-canvas probe

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function backoff(attempt) { return Math.min(8000, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() / 2); }

  /* -- EXIF carry-over ---------------------------------------------------------------------------- */

  // The APP1 "Exif" segment of a JPEG, or null.
  function exifSegment(buf) {
    var v = new DataView(buf);
    if (v.byteLength < 4 || v.getUint16(0) !== 0xffd8) return null;
    var at = 2;
    while (at + 4 <= v.byteLength) {
      var marker = v.getUint16(at);
      if ((marker & 0xff00) !== 0xff00 || marker === 0xffda) return null;
      var len = v.getUint16(at + 2);
      if (marker === 0xffe1 && len > 8 && v.getUint32(at + 4) === 0x45786966) {
        return new Uint8Array(buf.slice(at, at + 2 + len));
      }
      at += 2 + len;
    }
    return null;
  }

  // The canvas already turned the picture upright: set Orientation (0x0112) in IFD0 to 1.
  function resetOrientation(seg) {
    var v = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
    var tiff = 10;
    if (v.byteLength < tiff + 8) return seg;
    var little = v.getUint16(tiff) === 0x4949;
    var ifd = tiff + v.getUint32(tiff + 4, little);
    if (ifd + 2 > v.byteLength) return seg;
    var count = v.getUint16(ifd, little);
    for (var i = 0; i < count; i++) {
      var entry = ifd + 2 + i * 12;
      if (entry + 12 > v.byteLength) break;
      if (v.getUint16(entry, little) === 0x0112) v.setUint16(entry + 8, 1, little);
    }
    return seg;
  }

  function withExif(jpegBlob, seg) {
    return jpegBlob.arrayBuffer().then(function (buf) {
      var body = new Uint8Array(buf);
      return new Blob([body.subarray(0, 2), seg, body.subarray(2)], { type: "image/jpeg" });
    });
  }

  /* -- shrinking ---------------------------------------------------------------------------------- */

  // The picture's size from its header (image_header.js), read before anything decodes it.
  function readHeader(file) {
    var parser = window.PortalImageHeader;
    return parser ? parser.read(file) : Promise.resolve(null);
  }

  /* The file to send: refused (the server's message) when its header announces more pixels than the server
   * takes; as it is when its size cannot be read with certainty (a PDF, a damaged or unknown file: the
   * server reads it and decides, nothing here decodes it); otherwise shrunk when that can be done faithfully. */
  function prepare(root, file) {
    return readHeader(file).then(function (header) {
      // A file the system gave no type, or only a generic one (a .heic on some phones, a name without an
      // extension): the type its header names.
      if (header && (!file.type || file.type === "application/octet-stream")) {
        file = file.slice(0, file.size, header.type);
      }
      var limit = Number(root.dataset.maxPixels);
      if (!header || !(limit > 0)) return file; // (a page without the limit: never decode either)
      if (header.width * header.height > limit) throw new Problem(0, root.dataset.msgPixels || "", false);
      return shrink(file, header);
    });
  }

  function shrink(file, header) {
    var small = Math.max(header.width, header.height) <= MAX_EDGE;
    if (small && header.type === "image/jpeg" && file.size < SMALL_JPEG) return Promise.resolve(file); // as taken
    if (typeof createImageBitmap !== "function") return Promise.resolve(file);
    return createImageBitmap(file, { imageOrientation: "from-image" })
      .then(function (bitmap) {
        try {
          return draw(bitmap, header);
        } finally {
          bitmap.close();
        }
      }, function () { return null; }) // a format this browser cannot decode (HEIC in Chrome)
      .then(function (canvas) { return canvas ? encode(canvas) : null; })
      .then(function (blob) {
        if (!blob) return file; // the original, never a picture the phone could not make faithfully
        if (header.type !== "image/jpeg") return blob;
        return file.slice(0, 256 * 1024).arrayBuffer().then(function (head) {
          var seg = exifSegment(head);
          return seg ? withExif(blob, resetOrientation(seg)) : blob;
        });
      })
      .catch(function () { return file; });
  }

  /* The picture drawn at most MAX_EDGE px on its longest side, or null when the result cannot be trusted:
   * a decoded size other than the header's (a decoder that gave up or scaled down), no 2D context (out of
   * memory) or nothing drawn at all — what once turned a picture too big for the phone into a black JPEG. */
  function draw(bitmap, header) {
    var w = bitmap.width, h = bitmap.height;
    var upright = w === header.width && h === header.height;
    var turned = w === header.height && h === header.width; // EXIF orientation 5–8, HEIC's irot
    if (!upright && !turned) return null;
    var scale = Math.min(1, MAX_EDGE / Math.max(w, h));
    var canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(w * scale));
    canvas.height = Math.max(1, Math.round(h * scale));
    var ctx = canvas.getContext("2d");
    if (!ctx) return null;
    // Transparent areas become white, as the server flattens them (a JPEG has no alpha; it would be black).
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return blank(canvas) ? null : canvas;
  }

  /* True when the canvas holds one colour only: the white it was filled with when the decode silently
   * failed. A real photo of one flat colour is rare; it is then sent as taken, which costs only bytes. */
  function blank(canvas) {
    try {
      var probe = document.createElement("canvas");
      probe.width = probe.height = PROBE_EDGE;
      var ctx = probe.getContext("2d");
      ctx.drawImage(canvas, 0, 0, PROBE_EDGE, PROBE_EDGE);
      var px = ctx.getImageData(0, 0, PROBE_EDGE, PROBE_EDGE).data;
      for (var i = 4; i < px.length; i++) if (px[i] !== px[i % 4]) return false;
      return true;
    } catch (e) {
      return true; // unreadable (a tainted or lost canvas): not to be trusted either
    }
  }

  function encode(canvas) {
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", QUALITY); }).then(function (blob) {
      // null: the browser could not encode (memory); another type: it cannot write JPEG and fell back.
      return blob && blob.size > 0 && blob.type === "image/jpeg" ? blob : null;
    });
  }

  /* -- HTTP --------------------------------------------------------------------------------------- */

  function Problem(status, message, retry, code) {
    this.status = status; this.message = message; this.retry = retry; this.code = code || "";
  }

  /* The storage server's refusal, S3's XML (both backends answer it): <Error><Code>EntityTooLarge</Code>… */
  function storageCode(xhr) {
    var match = /<Code>([A-Za-z]+)<\/Code>/.exec(xhr.responseText || "");
    return match ? match[1] : "";
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "application/json", "x-csrftoken": csrfToken() },
      body: body === undefined ? "{}" : JSON.stringify(body),
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (resp.ok) return data;
        throw new Problem(resp.status, data.detail || "", resp.status >= 500 || resp.status === 409); // RFC 9457
      });
    }, function () { throw new Problem(0, "", true); });
  }

  function postForm(upload, blob, filename, onProgress) {
    return new Promise(function (resolve, reject) {
      var form = new FormData();
      Object.keys(upload.fields).forEach(function (k) { form.append(k, upload.fields[k]); });
      form.append("file", blob, filename); // last: S3 ignores fields after the file
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.url);
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = function () {
        // 412: this very file is already there (an earlier try got through but its answer was lost).
        if ((xhr.status >= 200 && xhr.status < 300) || xhr.status === 412) { onProgress(1); resolve(); return; }
        // 403: the signature expired while we waited; 5xx: the storage server had a bad moment. Anything
        // else (a file over the declared size, another type) is said in the person's language, not retried.
        reject(new Problem(xhr.status, "", xhr.status >= 500 || xhr.status === 403, storageCode(xhr)));
      };
      xhr.onerror = xhr.ontimeout = function () { reject(new Problem(0, "", true)); };
      xhr.timeout = 120000;
      xhr.send(form);
    });
  }

  /* -- one file ----------------------------------------------------------------------------------- */

  function Row(list, root, file) {
    this.root = root;
    this.li = document.createElement("li");
    this.name = document.createElement("span");
    this.name.textContent = file.name;
    this.bar = document.createElement("progress");
    this.bar.max = 100;
    this.bar.value = 0;
    this.bar.setAttribute("aria-label", (root.dataset.msgProgress || "{name}").replace("{name}", file.name));
    this.status = document.createElement("span");
    this.status.setAttribute("role", "status");
    this.li.append(this.name, this.bar, this.status);
    list.appendChild(this.li);
  }
  Row.prototype.say = function (key, isError) {
    this.status.textContent = this.root.dataset[key] || key;
    this.status.className = isError ? "ev-error" : "";
  };

  function uploadOne(root, list, file) {
    var row = new Row(list, root, file);
    var clientId = newId();
    var filename = file.name;
    row.say("msgShrinking");
    return prepare(root, file).then(function (blob) {
      var slotBody = {
        client_id: clientId,
        owner_type: root.dataset.ownerType,
        owner_id: root.dataset.ownerId,
        content_type: blob.type || "application/octet-stream",
        size: blob.size,
        filename: filename,
      };
      var attempt = 0;
      var uploaded = false; // the bytes reached storage: a retry only repeats the completion
      function complete() {
        uploaded = true;
        row.say("msgChecking");
        return postJson("/evidence/slots/" + clientId + "/complete");
      }
      function tryOnce() {
        row.say(attempt ? "msgRetrying" : "msgUploading");
        if (uploaded) return complete().catch(retry);
        return postJson("/evidence/slots", slotBody)
          .then(function (slot) {
            if (slot.evidence) return slot.evidence; // done on an earlier try
            return postForm(slot.upload, blob, filename, function (f) { row.bar.value = Math.round(f * 100); })
              .then(complete);
          })
          .catch(retry);
      }
      function retry(err) {
        attempt += 1;
        if (!(err instanceof Problem) || !err.retry || attempt >= MAX_TRIES) throw err;
        return sleep(backoff(attempt)).then(tryOnce);
      }
      return tryOnce();
    }).then(function () {
      row.bar.value = 100;
      row.say("msgDone");
      document.body.dispatchEvent(new CustomEvent("evidence-uploaded", { bubbles: true }));
    }, function (err) {
      var storageMessage = err instanceof Problem && err.code ? root.dataset["msgStorage" + err.code] : "";
      if (err instanceof Problem && (err.message || storageMessage)) {
        row.status.textContent = err.message || storageMessage;
        row.status.className = "ev-error";
      } else {
        row.say("msgFailed", true);
      }
    });
  }

  function uploadAll(root, files) {
    var list = root.querySelector("[data-evidence-uploads]");
    var queue = Array.prototype.slice.call(files);
    function next() {
      var file = queue.shift();
      return file ? uploadOne(root, list, file).then(next) : Promise.resolve();
    }
    var lanes = [];
    for (var i = 0; i < Math.min(PARALLEL, queue.length); i++) lanes.push(next());
    return Promise.all(lanes);
  }

  function init(root) {
    if (root.dataset.uploaderReady) return;
    root.dataset.uploaderReady = "1";
    var input = root.querySelector("[data-evidence-input]");
    input.addEventListener("change", function () {
      var files = input.files;
      if (files && files.length) uploadAll(root, files).then(function () { input.value = ""; });
    });
  }

  function initAll() { document.querySelectorAll("[data-evidence-uploader]").forEach(init); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initAll);
  else initAll();
  document.addEventListener("htmx:load", initAll);
})();
