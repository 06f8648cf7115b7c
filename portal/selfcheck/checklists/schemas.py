"""Shapes of the checklist catalogue files (``data/*.yaml`` beside this module), validated on load."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from portal.models.selfcheck import Severity


class Bilingual(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Selector(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["unit", "community"]
    category: Literal["key", "general", "small_place"] | None = None


class ItemFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[A-Z]+(-[A-Z])?-\d{2}$")
    section: Bilingual
    text: Bilingual
    basis: str = Field(min_length=1)
    severity_if_failed: Severity
    why: Bilingual
    how_to_fix: Bilingual
    photo_required: bool
    immediate_fix_possible: bool


class ChecklistFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[A-Z]+(-[A-Z])?$")
    version: int = Field(ge=1)
    title: Bilingual
    applies_to: list[Selector] = Field(min_length=1)
    performed_by: Literal["tenant", "warden"]
    frequency: Literal["monthly", "daily", "per_visit"]
    items: list[ItemFile] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _unique_codes(cls, items: list[ItemFile]) -> list[ItemFile]:
        codes = [i.code for i in items]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"item codes used twice: {', '.join(duplicates)}")
        return items

    @model_validator(mode="after")
    def _items_belong(self) -> ChecklistFile:
        stray = [i.code for i in self.items if not i.code.startswith(self.code + "-")]
        if stray:
            raise ValueError(f"items not of checklist {self.code}: {', '.join(stray)}")
        return self
