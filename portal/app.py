"""The app factory: plugins, routers, middleware. Nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from portal import registry
from portal.audit.pages.routes import AuditPages
from portal.config import Settings, get_settings
from portal.core import rate_limits, security_headers, web
from portal.core.api_contract import DESCRIPTION as API_DESCRIPTION
from portal.core.api_contract import ApiContract
from portal.core.db import Database
from portal.core.logging import configure as configure_logging
from portal.core.storage import open_storage
from portal.core.storage.routes import StorageController
from portal.dashboard import charts
from portal.dashboard.routes import DashboardPages
from portal.evidence.routes import EvidenceController, EvidencePages, uploader_limits
from portal.evidence.store import use_storage as use_evidence_storage
from portal.frontend import jinja_environment
from portal.identity import access, dependencies, reads, sessions
from portal.identity.passkey_routes import PasskeyController
from portal.identity.routes import AuthController
from portal.identity.session_routes import SessionPages
from portal.insurer.routes import InsurerKeyPages
from portal.invitations.routes import InvitationPages, InviteLinkPages
from portal.notify.routes import InboxPages
from portal.selfcheck.board.routes import PublicPages
from portal.selfcheck.commitments.routes import CommitmentPages
from portal.selfcheck.hazards.routes import HazardPages
from portal.selfcheck.ledger.routes import AccountabilityPages
from portal.selfcheck.monthly.routes import SelfCheckPages
from portal.selfcheck.patrols.routes import PatrolPages
from portal.selfcheck.reports.routes import SelfCheckReportController
from portal.selfcheck.reports.signing_routes import ReportSigning
from portal.site.api_docs import SwaggerDocs
from portal.site.health import health
from portal.site.home import home
from portal.tenants.roster.routes import RosterPages
from portal.tenants.routes import TenantApi, TenantPages

FRONTEND = Path(__file__).resolve().parent / "frontend"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    registry.install()
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
    use_evidence_storage(storage)  # the embedded worker's evidence jobs use the app's storage
    from worker.setup import setup as setup_worker

    broker = setup_worker(settings)

    async def on_startup(app: Litestar) -> None:
        await storage.ensure_ready()
        if settings.broker_url.startswith("inprocess") and settings.embedded_worker:
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
    secure = sessions.secure_cookies(settings)
    return Litestar(
        route_handlers=[
            home,
            health,
            AuthController,
            SessionPages,
            PasskeyController,
            TenantPages,
            DashboardPages,
            TenantApi,
            RosterPages,
            AuditPages,
            InvitationPages,
            InviteLinkPages,
            InsurerKeyPages,
            SelfCheckPages,
            SelfCheckReportController,
            ReportSigning,
            CommitmentPages,
            PublicPages,
            HazardPages,
            PatrolPages,
            AccountabilityPages,
            InboxPages,
            StorageController,
            EvidenceController,
            EvidencePages,
            create_static_files_router(
                path="/static",
                directories=[FRONTEND / "static"],
                include_in_schema=False,
                opt=dict(access.public(throttle=False)),
            ),
            create_static_files_router(
                path="/vendor",
                directories=[FRONTEND / "node_modules"],
                include_in_schema=False,
                name="vendor",
                opt=dict(access.public(throttle=False)),
            ),
        ],
        # ApiContract: each documented operation's security and error answers, from its access declaration.
        plugins=[SQLAlchemyPlugin(config=alchemy), HTMXPlugin(), ApiContract(session_cookie=sessions.COOKIE)],
        dependencies={
            "principal": Provide(dependencies.provide_principal),
            "db": Provide(dependencies.provide_db),
        },
        middleware=[
            sessions.SessionMiddleware(sessions.SessionPolicy.from_settings(settings)),
            web.RequestContextMiddleware(),
            *rate_limits.middleware(settings),
        ],
        # Every route declares who may call it (portal/identity/access.py); a route without one answers 403.
        guards=[access.guard],
        stores={
            sessions.STORE_NAME: sessions.session_store(settings, db),
            rate_limits.STORE_NAME: rate_limits.store(settings),
        },
        csrf_config=CSRFConfig(
            secret=settings.signing_key().decode(),
            cookie_name="portal_csrf",
            header_name="x-csrftoken",
            cookie_secure=secure,
            cookie_httponly=False,
            exclude=["/storage/upload", "/api/"],
        ),
        template_config=TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(
                jinja_environment(settings, {"evidence_uploader_limits": uploader_limits})
            )
        ),
        openapi_config=OpenAPIConfig(
            title="Fire-safety self-compliance portal API",
            version="1",
            path="/api/docs",
            openapi_router=Router(
                "/api/docs", route_handlers=[], include_in_schema=False, opt=access.public()
            ),
            description=API_DESCRIPTION,
            render_plugins=[SwaggerDocs()],
        ),
        # Security headers on every answer, the 404 of an unknown path included (core/security_headers.py).
        before_send=[
            security_headers.SecurityHeaders.from_settings(
                settings, https=secure, signed_in=sessions.signed_in, style_hashes=[charts.style_hash()]
            )
        ],
        # Single-tenant reads from outside the tenant are recorded here, for every page (identity/reads.py).
        before_request=reads.remember_request,
        after_request=reads.record_page_read,
        exception_handlers={**web.EXCEPTION_HANDLERS, NotAuthorizedException: dependencies.sign_in_first},
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        state=State({"settings": settings, "db": db, "storage": storage, "broker": broker}),
        debug=False,
    )
