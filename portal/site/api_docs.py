"""The API's documentation page (``/api/docs``): Swagger UI from our own npm install, under the site's
Content-Security-Policy.

Litestar's Swagger page writes its start-up code and the whole schema into an inline ``<script>``, and a
``<style>`` block; the site's policy refuses both. This page loads the same Swagger UI with no inline code:
the start-up is ``/static/js/api-docs.js``, which fetches the schema from ``openapi.json`` beside it.
No OAuth2 redirect page: API keys are bearer tokens, there is no OAuth2 flow to return from.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from litestar.openapi.plugins import SwaggerRenderPlugin

if TYPE_CHECKING:
    from litestar.connection import Request
    from litestar.router import Router

VENDOR = "/vendor/swagger-ui-dist"  # served from our own npm install, not a CDN: works offline
INIT_JS = "/static/js/api-docs.js"


class SwaggerDocs(SwaggerRenderPlugin):
    def __init__(self, path: str = "/") -> None:
        super().__init__(
            js_url=f"{VENDOR}/swagger-ui-bundle.js",
            css_url=f"{VENDOR}/swagger-ui.css",
            standalone_preset_js_url=f"{VENDOR}/swagger-ui-standalone-preset.js",
            path=path,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        spec_url = escape(self.get_openapi_json_route(request))
        csrf = request.app.csrf_config
        csrf_attrs = (
            f' data-csrf-cookie="{escape(csrf.cookie_name)}" data-csrf-header="{escape(csrf.header_name)}"'
            if csrf is not None and not csrf.cookie_httponly
            else ""
        )
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="stylesheet" href="{self.css_url}">
  <link rel="stylesheet" href="/static/css/api-docs.css">
  <script src="{self.js_url}" defer></script>
  <script src="{self.standalone_preset_js_url}" defer></script>
  <script src="{INIT_JS}" defer></script>
</head>
<body>
  <div id="swagger-container" data-spec-url="{spec_url}"{csrf_attrs}></div>
</body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        """No ``oauth2-redirect.html`` (Litestar's has an inline script, and no OAuth2 flow uses it)."""
