"""The simulation's clock (events in time order), its units (a tenant and its people), the result it returns,
and the photos its people take."""

from __future__ import annotations

import heapq
import io
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from portal.core import clock
from portal.demo.history_habits import Habits
from portal.models.identity import User
from portal.models.tenants import Tenant
from portal.selfcheck.policies import ActorKind, HazardActor

# -- the result ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignDue:
    """A submitted self-check its responsible person signed at ``at``."""

    selfcheck_id: uuid.UUID
    tenant_id: uuid.UUID
    period: str
    user_id: uuid.UUID
    at: datetime


@dataclass
class History:
    start: datetime
    end: datetime
    tenants: list[str] = field(default_factory=list)  # codes of the tenants with history
    signed: list[SignDue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


# -- the timeline ----------------------------------------------------------------------------------

Event = Callable[[datetime], Awaitable[None]]


class Timeline:
    """Events in time order; what would happen after ``end`` (now) has not happened yet and is dropped."""

    def __init__(self, end: datetime) -> None:
        self.end = end
        self._heap: list[tuple[datetime, int, Event]] = []
        self._seq = itertools.count()  # same moment: in the order planned

    def at(self, when: datetime, event: Event) -> bool:
        if when >= self.end:
            return False
        heapq.heappush(self._heap, (when, next(self._seq), event))
        return True

    async def run(self, after: Event | None = None) -> None:
        """Each event in time order; ``after(when)`` once it has happened."""
        while self._heap:
            when, _seq, event = heapq.heappop(self._heap)
            await event(when)
            if after is not None:
                await after(when)


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), clock.zone()).astimezone(UTC)


def first_day(period: str) -> date:
    year, month = (int(p) for p in period.split("-"))
    return date(year, month, 1)


@dataclass
class Unit:
    tenant: Tenant
    code: str
    habits: Habits
    rng: random.Random
    responsible: User
    manager: User  # small places have none: the owner (responsible person) manages
    staff: list[User]
    wardens: list[User]

    def member(self, user: User) -> HazardActor:
        return HazardActor(
            ActorKind.MEMBER, user.id, can_verify=user.id in (self.manager.id, self.responsible.id)
        )

    def fixer(self) -> User:
        return self.rng.choice(self.staff) if self.staff and self.rng.random() < 0.7 else self.manager

    def verifier_for(self, fixer: User) -> User:
        """Someone other than the fixer where the unit has one (the manager, or the responsible person)."""
        return self.responsible if fixer.id == self.manager.id else self.manager


def photo_bytes(rng: random.Random, at: datetime) -> bytes:
    """A small JPEG standing for a phone photo of the fixed spot, with its capture time in EXIF (what the
    evidence processing reads), so the gallery shows when the picture was "taken" in the story."""
    from PIL import Image, ImageDraw

    wall = tuple(rng.randint(170, 225) for _ in range(3))
    img = Image.new("RGB", (320, 240), wall)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 180, 320, 240), fill=(rng.randint(90, 130),) * 3)  # floor
    left = rng.randint(30, 200)
    draw.rectangle((left, 60, left + 70, 180), fill=(rng.randint(60, 110), 70, 60))  # a door
    draw.rectangle((left + 10, 35, left + 60, 52), fill=(20, 150, 70))  # the green exit sign above it
    exif = Image.Exif()
    stamp = at.astimezone(clock.zone()).strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = stamp
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = stamp
    sub[0x9011] = "+08:00"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70, exif=exif)
    return buf.getvalue()
