"""What the public pages (no sign-in) read: a signed document's tenant, found from the document's id."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.selfcheck import Commitment, SelfCheck


async def tenant_of_document(
    db: Database, model: type[SelfCheck] | type[Commitment], doc_id: uuid.UUID
) -> uuid.UUID | None:
    """The tenant of a monthly report or a commitment (``None``: no such document). A visitor has no scope,
    so this one read opens the system scope; the page then reads the document in that tenant's scope."""
    async with db.session(Scope.system("public verification: the document's tenant")) as session:
        return (await session.execute(select(model.tenant_id).where(model.id == doc_id))).scalar_one_or_none()
