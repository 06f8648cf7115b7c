"""An audit entry's detail in the reader's language: each known key becomes a short phrase ("as manager",
"2 hazards opened") instead of ``key: value``; enum values use the words the rest of the portal uses for
them, ids are shortened and long hashes are shortened with the whole value kept to copy and for screen
readers. The stored detail stays as recorded (it is part of the hash chain); only its reading changes.

The audit page sits above the domains (README, "Layers": pages that combine domains), so it reads the
domains' label tables (the ledger's kinds and steps) and the tables' enums directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.lists import format_list
from markupsafe import Markup, escape

from portal.core import clock, i18n
from portal.core.i18n import N_, _
from portal.identity.principal import ContextKind
from portal.models.evidence import OwnerType
from portal.models.selfcheck import HazardSource, HazardStatus, PatrolRound, Severity
from portal.models.tenants import InvitationKind, MemberRole, TenantKind
from portal.selfcheck.ladder import KIND_LABELS, STEP_LABELS

Value = str | Markup
Render = Callable[[Any], Value | None]  # None: nothing worth saying (an empty list, a False that is the norm)

TEXT_LIMIT = 60  # a free-text value (a name) is cut here; the page is one line per entry
HASH_HEAD, HASH_TAIL = 12, 4  # enough to tell two hashes apart by eye; the whole one is there to copy
ID_HEAD = 8


def say(phrase: str, **values: Value) -> Markup:
    """``phrase`` translated, with ``values`` put in: the translation is text (escaped), the values are
    escaped unless they are already markup (a shortened hash)."""
    return escape(_(phrase)) % values


# -- how values are written ------------------------------------------------------------------------------


def text(value: Any) -> Value | None:
    words = str(value).strip() if value is not None else ""
    if not words:
        return None
    return words if len(words) <= TEXT_LIMIT else words[: TEXT_LIMIT - 1] + "…"


def short_id(value: Any) -> Value | None:
    """A uuid's first characters: enough to match it against another page; the whole id in the tooltip."""
    whole = str(value or "")
    if whole in ("", "None"):
        return None
    if len(whole) <= ID_HEAD + 1:
        return Markup('<span class="mono">{}</span>').format(whole)
    return Markup('<span class="mono" title="{}">{}…</span>').format(whole, whole[:ID_HEAD])


def long_value(value: Any) -> Value | None:
    """A hash (or another long token) shortened to its head and tail, so that a phone's line can hold it.
    The whole value is in the tooltip, read to screen readers, and copied by the button that
    ``static/js/copy.js`` reveals where the browser can copy."""
    whole = str(value or "")
    if not whole:
        return None
    if len(whole) <= HASH_HEAD + HASH_TAIL + 1:
        return Markup('<span class="mono">{}</span>').format(whole)
    return Markup(
        '<span class="long-value"><span class="mono" title="{whole}" aria-hidden="true">{head}…{tail}</span>'
        '<span class="visually-hidden">{whole}</span>'
        ' <button type="button" class="copy" data-copy="{whole}" data-copied="{copied}" hidden>{copy}'
        '<span class="visually-hidden"> {what}</span></button></span>'
    ).format(
        whole=whole,
        head=whole[:HASH_HEAD],
        tail=whole[-HASH_TAIL:],
        copy=_("Copy"),
        copied=_("Copied"),
        what=_("the whole value"),
    )


def moment(value: Any) -> Value | None:
    """An ISO moment as the page shows times (the display time zone, to the minute)."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return text(value)
    return clock.local(at).strftime("%Y-%m-%d %H:%M") if at.tzinfo else at.strftime("%Y-%m-%d %H:%M")


def labelled(labels: Mapping[Any, str]) -> Render:
    """An enum value by the words the portal uses for it (an unknown value, e.g. of a retired enum member,
    as recorded)."""

    def render(value: Any) -> Value | None:
        label = labels.get(str(value))
        return _(label) if label else text(value)

    return render


def counted(how_many: Callable[[int], str]) -> Render:
    """A list of ids (or a number) as how many there are (``how_many`` calls ngettext, where the message
    extractor sees both forms); none says nothing."""

    def render(value: Any) -> Value | None:
        n = len(value) if isinstance(value, list | tuple) else int(value or 0)
        return how_many(n) if n else None

    return render


def flag(when_true: str | None, when_false: str | None = None) -> Render:
    """A yes/no as what it means; the side that is the norm (``None``) says nothing."""

    def render(value: Any) -> Value | None:
        said = when_true if value else when_false
        return _(said) if said else None

    return render


def byte_size(value: Any) -> Value | None:
    n = int(value or 0)
    for unit, factor in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def media_type(value: Any) -> Value | None:
    # "image/jpeg" → "JPEG": the file format a person knows by name.
    subtype = str(value or "").rpartition("/")[2]
    return subtype.upper() if subtype else None


ROLES = {
    MemberRole.RESPONSIBLE: N_("responsible person"),
    MemberRole.MANAGER: N_("manager"),
    MemberRole.STAFF: N_("staff"),
}
role = labelled(ROLES)


def roles(value: Any) -> Value | None:
    names = [str(role(r)) for r in value or []]
    return format_list(names, locale=i18n.current_locale()) if names else None


def page_read(value: Any) -> Value | None:
    # A page of a list is its number; a named page is the page's title.
    if isinstance(value, int):
        return _("page %(num)d", num=value)
    return labelled(PAGES)(value)


def jurisdiction(value: Any) -> Value | None:
    # The materialised path "990100/990102/990102001/": its last code is the node itself.
    codes = [c for c in str(value or "").split("/") if c]
    return codes[-1] if codes else None


def signature(value: Any) -> Value | None:
    """Who signed and with which registered key (the rest of the signature's record is for the checks)."""
    if not isinstance(value, Mapping):
        return None
    said = [say(N_("signed by %(value)s"), value=part) for part in [text(value.get("signer_name"))] if part]
    key = long_value(value.get("key_sha256"))
    if key:
        said.append(say(N_("key fingerprint %(value)s"), value=key))
    return Markup(" · ").join(said) if said else None


# -- the words for each domain's values ------------------------------------------------------------------

READERS = {
    ContextKind.MEMBER: N_("unit member"),
    ContextKind.WARDEN: N_("grid warden"),
    ContextKind.COMMITTEE: N_("residents' committee"),
    ContextKind.REGULATOR: N_("regulator"),
    ContextKind.INSURER: N_("insurer"),
    ContextKind.ADMIN: N_("platform admin"),
}
CHANNELS = {"web": N_("on the web pages"), "api": N_("through the API")}
PAGES = {
    "ledger": N_("the accountability ledger"),
    "patrols": N_("the patrol log"),
    "selfcheck_report": N_("the self-check report"),
}
TENANT_KINDS = {TenantKind.UNIT: N_("a unit"), TenantKind.COMMUNITY: N_("a residential community")}
INVITATION_KINDS = {
    InvitationKind.MEMBER: N_("unit member"),
    InvitationKind.WARDEN: N_("grid warden"),
    InvitationKind.COMMITTEE: N_("residents' committee"),
    InvitationKind.REGULATOR: N_("regulator"),
    InvitationKind.INSURER: N_("insurer"),
    InvitationKind.ADMIN: N_("platform admin"),
}
HAZARD_STATUSES = {
    HazardStatus.OPEN: N_("open"),
    HazardStatus.IN_RECTIFICATION: N_("being rectified"),
    HazardStatus.AWAITING_VERIFICATION: N_("awaiting verification"),
    HazardStatus.CLOSED: N_("closed"),
}
SEVERITIES = {Severity.GENERAL: N_("general hazard"), Severity.MAJOR: N_("suspected major hazard")}
SOURCES = {
    HazardSource.SELFCHECK: N_("found in the monthly self-check"),
    HazardSource.PATROL: N_("found on a patrol"),
    HazardSource.WARDEN: N_("reported by the grid warden"),
    HazardSource.REGULATOR: N_("reported by the regulator"),
    HazardSource.TIP: N_("reported by a member of the public"),
}
ROUNDS = {
    PatrolRound.DAILY: N_("Daily round"),
    PatrolRound.OPENING: N_("Opening-hours round"),
    PatrolRound.CLOSING: N_("Closing check"),
    PatrolRound.NIGHT: N_("Night round"),
}
OWNERS = {
    OwnerType.SELFCHECK_ITEM: N_("a self-check item"),
    OwnerType.HAZARD: N_("a hazard"),
    OwnerType.RECTIFICATION: N_("a rectification"),
    OwnerType.VISIT: N_("a warden's visit"),
    OwnerType.TIP: N_("a public tip"),
    OwnerType.TENANT: N_("the unit"),
}
HOW_ACCEPTED = {"passkey": N_("with a new passkey"), "signed_in": N_("while signed in")}
SIGN_IN_METHODS = {"passkey": N_("with a passkey")}
REVOKE_REASONS = {"recovery": N_("account recovery")}
LANGUAGES = {code: name for code, name in i18n.LANGUAGE_NAMES.items()}


def language(value: Any) -> Value | None:
    return LANGUAGES.get(str(value)) if value else _("no language chosen")


# -- the keys --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    value: Render
    phrase: str | None = None  # a message id around %(value)s; None: the value says it alone
    unless: str = ""  # a key whose presence says the same (a person's id next to their name)


# In reading order; a key whose meaning depends on the action's family ("kind", "from"/"to") is listed
# under (family, key) and found before the plain key.
FIELDS: dict[str | tuple[str, str], Field] = {
    "display_name": Field(text),
    "invitee_name": Field(text, N_("for %(value)s")),
    "name_zh": Field(text, N_("named %(value)s")),
    "name": Field(text, N_("named %(value)s")),
    "responsible": Field(text, N_("responsible person %(value)s")),
    "user_id": Field(short_id, N_("person %(value)s"), unless="display_name"),
    "as": Field(labelled(READERS), N_("read as %(value)s")),
    "page": Field(page_read, N_("viewed %(value)s")),
    "via": Field(labelled(CHANNELS)),
    "period": Field(text, N_("month %(value)s")),
    "year": Field(text, N_("year %(value)s")),
    ("tenant", "kind"): Field(labelled(TENANT_KINDS)),
    ("invitation", "kind"): Field(labelled(INVITATION_KINDS), N_("invites a %(value)s")),
    ("accountability", "kind"): Field(labelled(KIND_LABELS)),
    "role": Field(role, N_("as %(value)s")),
    "member_role": Field(role, N_("as %(value)s")),
    "remaining_roles": Field(roles, N_("still %(value)s")),
    "severity": Field(labelled(SEVERITIES)),
    "source": Field(labelled(SOURCES)),
    "item": Field(text, N_("checklist item %(value)s")),
    "round": Field(labelled(ROUNDS)),
    "day": Field(text, N_("patrol day %(value)s")),
    "findings": Field(
        counted(lambda n: i18n.ngettext("%(num)d thing found wrong", "%(num)d things found wrong", n))
    ),
    "hazards": Field(counted(lambda n: i18n.ngettext("%(num)d hazard opened", "%(num)d hazards opened", n))),
    "code": Field(text, N_("code %(value)s")),
    "checklist": Field(text, N_("checklist %(value)s")),
    "version": Field(text, N_("version %(value)s")),
    "items": Field(counted(lambda n: i18n.ngettext("%(num)d item", "%(num)d items", n))),
    "jurisdiction": Field(jurisdiction, N_("jurisdiction %(value)s")),
    "step": Field(labelled(STEP_LABELS), N_("with the %(value)s")),
    "subject": Field(short_id, N_("concerning %(value)s")),
    "attributed": Field(short_id, N_("attributed to person %(value)s")),
    "owner_type": Field(labelled(OWNERS), N_("attached to %(value)s")),
    "owner_id": Field(short_id, N_("no. %(value)s")),
    "media_type": Field(media_type, N_("type %(value)s")),
    "size": Field(byte_size, N_("size %(value)s")),
    "deduplicated": Field(flag(N_("the same file was already stored, and is kept once"))),
    "published": Field(
        flag(
            N_("the phone number is shown on the public board"),
            N_("the phone number was taken off the public board"),
        )
    ),
    "recovery": Field(flag(N_("account recovery"))),
    "how": Field(labelled(HOW_ACCEPTED)),
    "method": Field(labelled(SIGN_IN_METHODS)),
    "for_user_id": Field(short_id, N_("recovers the account of person %(value)s")),
    "grid_id": Field(short_id, N_("grid %(value)s")),
    "committee_id": Field(short_id, N_("committee %(value)s")),
    "jurisdiction_id": Field(short_id, N_("jurisdiction %(value)s")),
    "insurer_id": Field(short_id, N_("insurer %(value)s")),
    "expires_at": Field(moment, N_("valid until %(value)s")),
    "sessions_valid_after": Field(moment, N_("sessions started before %(value)s ended")),
    "count": Field(counted(lambda n: i18n.ngettext("%(num)d passkey", "%(num)d passkeys", n))),
    "reason": Field(labelled(REVOKE_REASONS), N_("because of %(value)s")),
    "prefix": Field(text, N_("key starting %(value)s")),
    "scopes": Field(counted(lambda n: i18n.ngettext("%(num)d permission", "%(num)d permissions", n))),
    "aaguid": Field(short_id, N_("authenticator model %(value)s")),
    "credential_id": Field(long_value, N_("credential %(value)s")),
    "key": Field(long_value, N_("stored as %(value)s")),
    "signature": Field(signature),
    "sha256": Field(long_value, N_("SHA-256 fingerprint %(value)s")),
    "key_sha256": Field(long_value, N_("key fingerprint %(value)s")),
}

# "from" and "to" read as one change; what they are changes with the action's family.
CHANGES: dict[str, Render] = {
    "member": role,
    "hazard": labelled(HAZARD_STATUSES),
    "accountability": labelled(STEP_LABELS),
    "user": language,
    "auth": text,
}


def _field(family: str, key: str) -> Field | None:
    return FIELDS.get((family, key)) or FIELDS.get(key)


def _phrase(field: Field, value: Any) -> Markup | None:
    said = field.value(value)
    if said is None or said == "":
        return None
    return say(field.phrase, value=said) if field.phrase else escape(said)


def _change(family: str, before: Any, after: Any) -> Markup:
    render = CHANGES.get(family, text)
    was, now = render(before) or _("nothing"), render(after) or _("nothing")
    return say(N_("from %(before)s to %(after)s"), before=was, after=now)


def describe(action: str, detail: Mapping[str, Any] | None) -> list[Markup]:
    """The phrases that say what ``detail`` adds to the action's label, in reading order."""
    detail = detail or {}
    family = action.partition(".")[0]
    said: list[Markup] = []
    if "from" in detail and "to" in detail:
        said.append(_change(family, detail["from"], detail["to"]))
    known = [k for k in detail if _field(family, k) is not None]
    order = {k: i for i, k in enumerate(FIELDS)}
    for key in sorted(known, key=lambda k: order.get((family, k), order.get(k, 0))):
        field = _field(family, key)
        if field is None or (field.unless and detail.get(field.unless)):
            continue
        phrase = _phrase(field, detail[key])
        if phrase is not None:
            said.append(phrase)
    # A key nobody gave words to yet (a test's, or one newer than this table) still shows, as recorded.
    for key in sorted(k for k in detail if k not in ("from", "to") and _field(family, k) is None):
        value = text(detail[key])
        if value is not None and detail[key] not in ([], {}):
            said.append(Markup("{}: {}").format(key, value))
    return said
