"""Every action the portal records has a label on the audit page, and every detail key it records has
words there: the code is read (not a list kept by hand), so a new ``audit.record(...)`` without a label or
without words for its detail fails here, before anybody reads a raw id.

The action of a call is followed to where it is written: a string, a module constant (``ADDED``,
``reads.AUDIT_READ``), a parameter (then every call of the enclosing function), a local variable (then
what it is assigned), the ``reads`` action a route names in its ``opt``, and the one f-string.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from portal.audit.pages import describe
from portal.audit.pages.actions import ACTION_LABELS, action_label
from portal.core import i18n
from portal.selfcheck.hazards.services import Action as HazardAction

PORTAL = Path(__file__).resolve().parents[2] / "portal"
ACTION = re.compile(r"^[a-z_]+\.[a-z_]+$")
# Where the action is in each recording function's arguments (counting the session).
RECORDERS = {"record": 1, "record_reads": 2, "record_cross_tenant_read": 3}
# The one action written as an f-string: every value it can take.
EXPANSIONS = {"f'hazard.{action.value}'": {f"hazard.{a.value}" for a in HazardAction}}


@dataclass
class Code:
    functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = field(default_factory=dict)
    constants: dict[str, set[str]] = field(default_factory=dict)
    calls: list[tuple[ast.Call, ast.FunctionDef | ast.AsyncFunctionDef | None]] = field(default_factory=list)
    opts: list[ast.expr] = field(default_factory=list)  # the values of ``opt={READS_OPT: ...}``


def _name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _walk(tree: ast.AST, code: Code, enclosing: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            code.functions.setdefault(node.name, []).append(node)
            _walk(node, code, node)
            continue
        if isinstance(node, ast.Call):
            code.calls.append((node, enclosing))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None and _name(key) == "READS_OPT":
                    code.opts.append(value)
        _walk(node, code, enclosing)


def _read_code() -> Code:
    code = Code()
    for path in sorted(PORTAL.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        code.constants.setdefault(target.id, set()).add(node.value.value)
        _walk(tree, code, None)
    return code


def _argument(call: ast.Call, position: int, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _resolve(code: Code, expr: ast.expr, where: ast.FunctionDef | ast.AsyncFunctionDef | None) -> set[str]:
    if isinstance(expr, ast.Constant):
        return {expr.value} if isinstance(expr.value, str) else set()
    if isinstance(expr, ast.JoinedStr):
        written = ast.unparse(expr)
        assert written in EXPANSIONS, f"an action written as {written}: list what it can be in EXPANSIONS"
        return EXPANSIONS[written]
    if isinstance(expr, ast.Call):  # e.g. opt.get(READS_OPT, TENANT_READ)
        return set().union(*(_resolve(code, a, where) for a in expr.args)) if expr.args else set()
    name = _name(expr)
    if where is not None and isinstance(expr, ast.Name):
        positional = [a.arg for a in where.args.args]
        if name in positional or name in [a.arg for a in where.args.kwonlyargs]:
            position = positional.index(name) if name in positional else len(positional)
            found: set[str] = set()
            for call, caller in code.calls:
                arg = _argument(call, position, name) if _name(call.func) == where.name else None
                if arg is not None:
                    found |= _resolve(code, arg, caller)
            return found
        assigned = [
            n.value
            for n in ast.walk(where)
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
        ]
        if assigned:
            return set().union(*(_resolve(code, value, where) for value in assigned))
    if name in code.constants:
        return set(code.constants[name])
    if name == "READS_OPT":
        return set()
    raise AssertionError(f"cannot tell which action {ast.unparse(expr)} is")


def recorded_actions() -> set[str]:
    code = _read_code()
    actions: set[str] = set()
    for call, where in code.calls:
        position = RECORDERS.get(_name(call.func))
        if position is None:
            continue
        arg = _argument(call, position, "action")
        if arg is not None:
            actions |= _resolve(code, arg, where)
    for value in code.opts:
        actions |= _resolve(code, value, None)
    return {a for a in actions if ACTION.match(a)}


def recorded_details() -> Iterator[tuple[set[str], str]]:
    """(the actions a call can record, a detail key it records), for every literal detail key."""
    code = _read_code()
    for call, where in code.calls:
        name = _name(call.func)
        if name in RECORDERS:
            arg = _argument(call, RECORDERS[name], "action")
            actions = _resolve(code, arg, where) if arg is not None else set()
            detail = _argument(call, 10**6, "detail")
            if isinstance(detail, ast.Name) and where is not None:
                detail = next(
                    (
                        n.value
                        for n in ast.walk(where)
                        if isinstance(n, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == detail.id for t in n.targets)
                    ),
                    detail,
                )
            if isinstance(detail, ast.Dict):
                for key in detail.keys:
                    if isinstance(key, ast.Constant):
                        yield {a for a in actions if ACTION.match(a)}, key.value
        elif name == "note":  # reads.note(request, page=...): said about the page's read
            for kw in call.keywords:
                if kw.arg:
                    yield {"tenant.read", "audit.read"}, kw.arg


def test_the_reader_finds_the_actions_it_should() -> None:
    actions = recorded_actions()
    # One of each way an action is written: a string, a constant, a parameter, an opt, the f-string.
    assert {
        "selfcheck.signed",
        "auth.passkey_added",
        "invitation.recovery_created",
        "tenant.list_read",
        "tenant.read",
        "audit.read",
        "evidence.original_read",
        "hazard.fix_on_the_spot",
    } <= actions


def test_every_recorded_action_has_a_label() -> None:
    missing = sorted(recorded_actions() - set(ACTION_LABELS))
    assert not missing, f"actions recorded without a label in portal/audit/pages/actions.py: {missing}"


def test_every_recorded_detail_key_has_words() -> None:
    details = list(recorded_details())
    assert len(details) > 40 and any(key == "deduplicated" for _a, key in details)
    missing = sorted(
        {
            (action, key)
            for actions, key in details
            for action in actions
            if describe._field(action.partition(".")[0], key) is None
            and not (key in ("from", "to") and action.partition(".")[0] in describe.CHANGES)
        }
    )
    assert not missing, f"detail keys without words in portal/audit/pages/describe.py: {missing}"


def test_an_action_without_a_label_says_so_in_the_readers_language() -> None:
    with i18n.using_locale("zh_CN"):
        assert (
            action_label("selfcheck.signed")
            == i18n.gettext(ACTION_LABELS["selfcheck.signed"])
            != (ACTION_LABELS["selfcheck.signed"])
        )
        unknown = action_label("future.action")
        assert "future.action" in unknown and unknown != "future.action"
