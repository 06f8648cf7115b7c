/* Starts Swagger UI on /api/docs (portal/site/api_docs.py): the schema comes from the URL in
 * data-spec-url; requests made with "Try it out" carry the CSRF token like the portal's own pages. */
(function () {
  "use strict";

  function cookie(name) {
    var row = document.cookie.split("; ").find(function (r) { return r.indexOf(name + "=") === 0; });
    return row ? decodeURIComponent(row.slice(name.length + 1)) : undefined;
  }

  function start() {
    var root = document.getElementById("swagger-container");
    var csrfCookie = root.dataset.csrfCookie;
    var csrfHeader = root.dataset.csrfHeader;
    SwaggerUIBundle({
      url: root.dataset.specUrl,
      dom_id: "#swagger-container",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      validatorUrl: null, // no badge from the online validator: it would send it the schema's address
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      requestInterceptor: function (request) {
        var token = csrfCookie ? cookie(csrfCookie) : undefined;
        if (token !== undefined) request.headers[csrfHeader] = token;
        return request;
      },
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
