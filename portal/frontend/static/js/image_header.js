/* A picture's size read from its header, before anything decodes it (uploader.js asks).
 *
 * A 20000×20000 PNG of zeros is a few hundred KB on disk and 1.6 GB once decoded: a phone that decodes it
 * to shrink it stalls for seconds, and if the decode fails half-way the canvas sends a black picture. So
 * the uploader reads the size here first and refuses what the server would refuse (processing.MAX_PIXELS)
 * without decoding a pixel.
 *
 * window.PortalImageHeader.read(blob) → Promise of {type, width, height}, or null when the bytes are not
 * one of the formats the server accepts as a picture (JPEG, PNG, WebP, HEIC/HEIF) or the header is not
 * one we can read with certainty. It never rejects. Only small slices of the file are read (Blob.slice),
 * however big it is: a JPEG's segments are skipped by their lengths, an ISO-BMFF file's boxes likewise.
 */
(function () {
  "use strict";

  var MAX_STEPS = 512; // segments or boxes walked before giving up (a crafted file could chain thousands)
  var MAX_META = 4 * 1024 * 1024; // an HEIC's "meta" box is a few KB; more is not a photo from a phone
  // ISO-BMFF major brands of HEIC/HEIF stills and sequences (not AVIF's "avif", not a video's "isom").
  var HEIF_BRANDS = ["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"];

  function bytes(blob, start, length) {
    if (start < 0 || start >= blob.size) return Promise.resolve(new DataView(new ArrayBuffer(0)));
    return blob.slice(start, start + length).arrayBuffer().then(function (buf) { return new DataView(buf); });
  }

  function fourcc(v, at) {
    return String.fromCharCode(v.getUint8(at), v.getUint8(at + 1), v.getUint8(at + 2), v.getUint8(at + 3));
  }

  function size(type, width, height) {
    return width > 0 && height > 0 ? { type: type, width: width, height: height } : null;
  }

  /* -- PNG: the IHDR chunk comes first, right after the signature ------------------------------------- */

  function png(v) {
    if (v.byteLength < 24 || fourcc(v, 12) !== "IHDR") return null;
    return size("image/png", v.getUint32(16), v.getUint32(20));
  }

  /* -- WebP: RIFF, then one of three first chunks ---------------------------------------------------- */

  function webp(v) {
    if (v.byteLength < 30) return null;
    var chunk = fourcc(v, 12);
    if (chunk === "VP8 ") {
      // A key frame: 3 bytes of frame tag, the start code 9d 01 2a, then 14-bit width and height.
      if (v.getUint8(23) !== 0x9d || v.getUint8(24) !== 0x01 || v.getUint8(25) !== 0x2a) return null;
      return size("image/webp", v.getUint16(26, true) & 0x3fff, v.getUint16(28, true) & 0x3fff);
    }
    if (chunk === "VP8L") {
      // The signature byte 0x2f, then width − 1 and height − 1 in 14 bits each, least significant first.
      if (v.getUint8(20) !== 0x2f) return null;
      var bits = v.getUint32(21, true);
      return size("image/webp", (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
    }
    if (chunk === "VP8X") {
      // Flags and 3 reserved bytes, then the canvas's width − 1 and height − 1 in 24 bits each.
      var w = v.getUint8(24) | (v.getUint8(25) << 8) | (v.getUint8(26) << 16);
      var h = v.getUint8(27) | (v.getUint8(28) << 8) | (v.getUint8(29) << 16);
      return size("image/webp", w + 1, h + 1);
    }
    return null;
  }

  /* -- JPEG: walk the segments to the first frame header (SOFn), skipping APPn and the rest ----------- */

  // Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
  function isFrame(marker) {
    return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
  }

  async function jpeg(blob) {
    var at = 2;
    for (var step = 0; step < MAX_STEPS; step++) {
      var v = await bytes(blob, at, 9);
      if (v.byteLength < 4 || v.getUint8(0) !== 0xff) return null;
      var marker = v.getUint8(1);
      if (marker === 0xff) { at += 1; continue; } // fill byte before a marker
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { at += 2; continue; } // no length
      if (marker === 0xd9 || marker === 0xda) return null; // end of image or scan data without a frame
      var length = v.getUint16(2);
      if (length < 2) return null;
      if (isFrame(marker)) {
        // length, precision, then height and width. A height of 0 is declared later (DNL): not certain.
        if (v.byteLength < 9) return null;
        return size("image/jpeg", v.getUint16(7), v.getUint16(5));
      }
      at += 2 + length;
    }
    return null;
  }

  /* -- HEIC/HEIF: the primary item's "ispe" property inside meta/iprp/ipco --------------------------- */

  // The boxes inside v[start, end): [{type, start (of the body), end}]; null when one overruns.
  function boxes(v, start, end) {
    var out = [];
    var at = start;
    while (at + 8 <= end && out.length < MAX_STEPS) {
      var length = v.getUint32(at);
      var header = 8;
      if (length === 1) {
        if (at + 16 > end || v.getUint32(at + 8) !== 0) return null;
        length = v.getUint32(at + 12);
        header = 16;
      } else if (length === 0) {
        length = end - at;
      }
      if (length < header || at + length > end) return null;
      out.push({ type: fourcc(v, at + 4), start: at + header, end: at + length });
      at += length;
    }
    return out;
  }

  function child(list, type) {
    for (var i = 0; list && i < list.length; i++) if (list[i].type === type) return list[i];
    return null;
  }

  // Property indices (1-based, into ipco) associated with each item id, from the ipma box.
  function associations(v, box) {
    var version = v.getUint8(box.start);
    var wide = (v.getUint8(box.start + 3) & 1) === 1;
    var at = box.start + 4;
    var count = v.getUint32(at);
    at += 4;
    var map = {};
    for (var i = 0; i < count && i < MAX_STEPS; i++) {
      var item = version < 1 ? v.getUint16(at) : v.getUint32(at);
      at += version < 1 ? 2 : 4;
      var n = v.getUint8(at);
      at += 1;
      var indices = [];
      for (var j = 0; j < n; j++) {
        indices.push(wide ? v.getUint16(at) & 0x7fff : v.getUint8(at) & 0x7f);
        at += wide ? 2 : 1;
      }
      map[item] = indices;
    }
    return map;
  }

  function heifMeta(v) {
    // meta is a full box: version and flags, then its children.
    var parts = boxes(v, 4, v.byteLength);
    var iprp = child(parts, "iprp");
    var iprpParts = iprp && boxes(v, iprp.start, iprp.end);
    var ipco = child(iprpParts, "ipco");
    var properties = ipco && boxes(v, ipco.start, ipco.end);
    if (!properties) return null;
    var pitm = child(parts, "pitm");
    var ipma = child(iprpParts, "ipma");
    var ispe = [];
    if (pitm && ipma) {
      var primary = v.getUint8(pitm.start) === 0 ? v.getUint16(pitm.start + 4) : v.getUint32(pitm.start + 4);
      (associations(v, ipma)[primary] || []).forEach(function (index) {
        var property = properties[index - 1];
        if (property && property.type === "ispe") ispe.push(property);
      });
    }
    // Without a readable association, the largest picture the file describes (it errs towards refusing).
    if (!ispe.length) ispe = properties.filter(function (p) { return p.type === "ispe"; });
    var best = null;
    ispe.forEach(function (p) {
      if (p.end - p.start < 12) return;
      var found = size("image/heic", v.getUint32(p.start + 4), v.getUint32(p.start + 8));
      if (found && (!best || found.width * found.height > best.width * best.height)) best = found;
    });
    return best;
  }

  async function heif(blob) {
    var at = 0;
    for (var step = 0; step < MAX_STEPS && at < blob.size; step++) {
      var v = await bytes(blob, at, 16);
      if (v.byteLength < 8) return null;
      var length = v.getUint32(0);
      var header = 8;
      if (length === 1) {
        if (v.byteLength < 16 || v.getUint32(8) !== 0) return null;
        length = v.getUint32(12);
        header = 16;
      } else if (length === 0) {
        length = blob.size - at;
      }
      if (length < header) return null;
      if (fourcc(v, 4) === "meta") {
        if (length - header > MAX_META) return null;
        return heifMeta(await bytes(blob, at + header, length - header));
      }
      at += length;
    }
    return null;
  }

  /* -- which format: the magic bytes decide, never the name or the declared type --------------------- */

  async function read(blob) {
    var v = await bytes(blob, 0, 32);
    if (v.byteLength < 12) return null;
    if (v.getUint32(0) === 0x89504e47 && v.getUint32(4) === 0x0d0a1a0a) return png(v);
    if (v.getUint16(0) === 0xffd8) return jpeg(blob);
    if (fourcc(v, 0) === "RIFF" && fourcc(v, 8) === "WEBP") return webp(v);
    if (fourcc(v, 4) === "ftyp" && HEIF_BRANDS.indexOf(fourcc(v, 8)) >= 0) return heif(blob);
    return null;
  }

  window.PortalImageHeader = {
    read: function (blob) {
      // A DataView read past a short or crafted header throws RangeError: that is "cannot tell", not a crash.
      return read(blob).catch(function () { return null; });
    },
  };
})();
