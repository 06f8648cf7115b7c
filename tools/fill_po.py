"""Merge a {msgid: translation} JSON/YAML file into a .po catalogue (used when adding translations).

    python tools/fill_po.py portal/frontend/translations/zh_CN/LC_MESSAGES/messages.po zh.yaml
Plural entries take a list of forms.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from babel.messages.pofile import read_po, write_po


def main(po_path: str, source: str) -> None:
    with open(po_path, "rb") as fh:
        catalog = read_po(fh)
    table = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        if key in table:
            value = table[key]
            message.string = tuple(value) if isinstance(message.id, tuple) else value
            message.flags.discard("fuzzy")
    with open(po_path, "wb") as fh:
        write_po(fh, catalog, width=110, omit_header=False)


if __name__ == "__main__":
    main(*sys.argv[1:3])
