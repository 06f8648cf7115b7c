"""The app factory: plugins, routers, middleware. Nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig

from portal.config import Settings, get_settings
from portal.core import web
from portal.core.auth.routes import AuthController
from portal.core.db import Database
from portal.core.health import health
from portal.core.home import home
from portal.core.logging import configure as configure_logging
from portal.core.storage import open_storage
from portal.core.storage.routes import StorageController
from portal.frontend import jinja_environment
from portal.insurer.routes import InsurerKeyPages
from portal.tenants.routes import TenantApi, TenantPages

FRONTEND = Path(__file__).resolve().parent / "frontend"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    db = Database(settings)
    storage = open_storage(
        settings.storage_url,
        secret=settings.signing_key().decode(),
        public_base_url=settings.base_url,
        s3_endpoint=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
    )
    from worker.setup import setup as setup_worker

    broker = setup_worker(settings)

    async def on_startup(app: Litestar) -> None:
        await storage.ensure_ready()
        if settings.broker_url.startswith("inprocess"):
            from worker.embedded import start_embedded_worker

            app.state.embedded_worker = start_embedded_worker(broker, settings)
            # Rows committed while nothing consumed them (seeding, a stop) go out now, not after the delay.
            from portal.core import outbox
            from worker.actors import send_outbox

            await outbox.sweep(db, stale_after=timedelta(0), send=send_outbox)

    async def on_shutdown(app: Litestar) -> None:
        embedded = getattr(app.state, "embedded_worker", None)
        if embedded is not None:
            embedded.stop()
        await db.dispose()

    alchemy = SQLAlchemyAsyncConfig(
        engine_instance=db.engine,
        session_maker=db.sessionmaker,
        before_send_handler="autocommit_include_redirects",
        create_all=False,
    )
    session_store = _session_store(settings)
    secure = settings.env == "production"
    return Litestar(
        route_handlers=[
            home,
            health,
            AuthController,
            TenantPages,
            TenantApi,
            InsurerKeyPages,
            StorageController,
            create_static_files_router(
                path="/static", directories=[FRONTEND / "static"], include_in_schema=False
            ),
            create_static_files_router(
                path="/vendor",
                directories=[FRONTEND / "node_modules"],
                include_in_schema=False,
                name="vendor",
            ),
        ],
        plugins=[SQLAlchemyPlugin(config=alchemy), HTMXPlugin()],
        dependencies={"principal": Provide(web.provide_principal), "db": Provide(web.provide_db)},
        middleware=[
            ServerSideSessionConfig(
                key="portal_session", httponly=True, samesite="lax", secure=secure, max_age=12 * 3600
            ).middleware,
            web.RequestContextMiddleware(),
        ],
        stores={"sessions": session_store},
        csrf_config=CSRFConfig(
            secret=settings.signing_key().decode(),
            cookie_name="portal_csrf",
            header_name="x-csrftoken",
            cookie_secure=secure,
            cookie_httponly=False,
            exclude=["/storage/upload", "/api/"],
        ),
        template_config=TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(jinja_environment(settings))
        ),
        openapi_config=OpenAPIConfig(
            title="Fire-safety self-compliance portal API",
            version="1",
            path="/api/docs",
            render_plugins=[_swagger()],
        ),
        exception_handlers=web.EXCEPTION_HANDLERS,
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        state=State({"settings": settings, "db": db, "storage": storage, "broker": broker}),
        debug=False,
    )


def _swagger() -> SwaggerRenderPlugin:
    # Served from our own npm install, not a CDN: the docs work on an offline or filtered network.
    base = "/vendor/swagger-ui-dist"
    return SwaggerRenderPlugin(
        js_url=f"{base}/swagger-ui-bundle.js",
        css_url=f"{base}/swagger-ui.css",
        standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
        path="/",
    )


def _session_store(settings: Settings) -> Store:
    """Redis when configured (several web processes share it); else a file store that survives restarts."""
    if settings.redis_url:
        return RedisStore.with_client(url=settings.redis_url, namespace="portal_sessions")
    if settings.env == "test":
        return MemoryStore()
    return FileStore(path=Path("var/sessions"))
