"""The engine's house rules, read from the source: a slot's seats (``booked``, ``held``) change
only in booking/seats.py and in the one booking statement of booking/making.py (``_BOOK_PG``);
a booking's status changes only inside booking/. Every module of the packages is walked (its
AST, and its SQL strings); the scanner itself is tried against deliberate violations first, so
a scanner that finds nothing cannot pass for a clean house.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("booking", "ivr", "reminders", "agent_console", "calendar_sync", "config")
SEATS = {"booked", "held"}
SEAT_WRITERS = {"booking/seats.py"}
# The one statement that books on PostgreSQL (seat claim, booking row, members, event, key).
ONE_STATEMENT = ("booking/making.py", "_BOOK_PG")
# Attribute writes named like a seat column that are no slot's: path -> the targets, and why.
NOT_A_SLOT = {
    "booking/figures.py": {"found.booked"},  # Today.booked: the day's bookings made, per channel
}

_SEAT_SQL = re.compile(r"\bupdate\s+slot\b[^;]*?\bset\b[^;]*?\b(booked|held)\s*=", re.I | re.S)
_STATUS_SQL = re.compile(r"\bupdate\s+booking\b[^;]*?\bset\b[^;]*?\bstatus\s*=", re.I | re.S)


def _names(node: ast.AST) -> str:
    return ast.unparse(node)


def _is_table(node: ast.AST, table: str) -> bool:
    """``Slot``, ``models.Slot`` or ``Slot.__table__``."""
    if isinstance(node, ast.Attribute) and node.attr == "__table__":
        node = node.value
    return (isinstance(node, ast.Name) and node.id == table) or (
        isinstance(node, ast.Attribute) and node.attr == table
    )


def _is_update_of(node: ast.AST, table: str) -> bool:
    """``update(Slot)``, ``sa.update(Slot)`` or ``Slot.__table__.update()``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name | ast.Attribute) and _names(func).split(".")[-1] == "update":
        if node.args and _is_table(node.args[0], table):
            return True
        return isinstance(func, ast.Attribute) and _is_table(func.value, table)
    return False


def _keys(call: ast.Call) -> set[str | None]:
    """The columns a ``.values(...)`` (or ``set_=``) call names; None for ``**unknown``."""
    keys: set[str | None] = {kw.arg for kw in call.keywords if kw.arg != "set_"}
    dicts = [a for a in call.args if isinstance(a, ast.Dict)]
    dicts += [
        kw.value for kw in call.keywords if kw.arg == "set_" and isinstance(kw.value, ast.Dict)
    ]
    for found in dicts:
        for key in found.keys:
            if key is None:
                keys.add(None)
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.add(key.value)
            elif isinstance(key, ast.Attribute):
                keys.add(key.attr)
    return keys


def _chain_calls(top: ast.AST) -> list[ast.Call]:
    """The method calls of a chain like ``update(Slot).where(...).values(...)``, outermost first."""
    calls = []
    node = top
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        calls.append(node)
        node = node.func.value
    return calls


def _chains_from(tree: ast.AST, table: str) -> list[tuple[ast.Call, list[ast.Call]]]:
    """Each ``update(<table>)`` with the calls chained on it."""
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    out = []
    for node in ast.walk(tree):
        if not _is_update_of(node, table):
            continue
        top: ast.AST = node
        while (
            isinstance(parents.get(top), ast.Attribute)
            and isinstance(parents.get(parents[top]), ast.Call)
            and parents[parents[top]].func is parents[top]  # type: ignore[attr-defined]
        ):
            top = parents[parents[top]]
        assert isinstance(node, ast.Call)
        out.append((node, _chain_calls(top)))
    return out


def seat_writes(source: str) -> list[tuple[int, str]]:
    """Where this source writes a slot's seats: (line, what)."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for update, chain in _chains_from(tree, "Slot"):
        values = [c for c in chain if c.func.attr in ("values", "ordered_values")]  # type: ignore[attr-defined]
        if not values:  # executed with rows of parameters: any column may be set
            found.append((update.lineno, "update(Slot) without values"))
        for call in values:
            keys = _keys(call)
            if None in keys or keys & SEATS:
                found.append((call.lineno, f"update(Slot).values({sorted(map(str, keys))})"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            # .values(...), an upsert's set_=, a legacy query(Slot).update({...})
            if (
                node.func.attr in ("values", "on_conflict_do_update", "update")
                and _keys(node) & SEATS
            ):
                found.append((node.lineno, f"{node.func.attr}(booked/held=...)"))
        if isinstance(node, ast.Call) and _names(node.func) == "setattr" and len(node.args) > 1:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in SEATS:
                found.append((node.lineno, f"setattr(..., {name.value!r})"))
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and sub.attr in SEATS:
                    found.append((sub.lineno, _names(sub)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _SEAT_SQL.search(node.value):
                found.append((node.lineno, "SQL writes seats"))
    return sorted(set(found))


def status_writes(source: str) -> list[tuple[int, str]]:
    """Where this source writes a booking's status: (line, what)."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for update, chain in _chains_from(tree, "Booking"):
        values = [c for c in chain if c.func.attr in ("values", "ordered_values")]  # type: ignore[attr-defined]
        if not values:
            found.append((update.lineno, "update(Booking) without values"))
        for call in values:
            keys = _keys(call)
            if None in keys or "status" in keys:
                found.append((call.lineno, f"update(Booking).values({sorted(map(str, keys))})"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _STATUS_SQL.search(node.value):
                found.append((node.lineno, "SQL writes a status"))
    return sorted(set(found))


def _modules() -> list[Path]:
    found = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(found) > 50  # the walk really found the packages
    return found


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- The scanner catches what it is for ------------------------------------------------------

VIOLATIONS = [
    "db.execute(update(Slot).where(Slot.id == 1).values(booked=Slot.booked + 1))",
    "db.execute(sa.update(models.Slot).values(held=0))",
    "stmt = update(Slot).values({Slot.held: Slot.held - 1})",
    'stmt = update(Slot).values({"booked": 3})',
    "stmt = update(Slot).where(Slot.id == 1).values(**changes)",
    "db.execute(update(Slot), [{'id': 1, 'booked': 2}])",
    "db.execute(Slot.__table__.update().values(booked=0))",
    "slot.booked = slot.booked + 1",
    "slot.held += 2",
    "setattr(slot, 'booked', 3)",
    'db.execute(text("UPDATE slot SET booked = booked + 1 WHERE id = :id"))',
    'db.execute(text("update slot\\n   set capacity = 2, held = held - 1"))',
    "stmt = insert(Slot).on_conflict_do_update(index_elements=['id'], set_={'booked': 0})",
    "db.query(Slot).filter(Slot.id == 1).update({Slot.booked: Slot.booked + 1})",
]
HARMLESS = [
    "db.execute(update(Slot).where(Slot.id == 1).values(is_open=False))",
    "db.execute(update(Slot).values(capacity=3, kept_over=case((x > 0, x), else_=0)))",
    "db.execute(select(Slot.booked, Slot.held).where(Slot.id == 1))",
    "free = slot.capacity - slot.booked - slot.held",
    'db.execute(text("SELECT booked, held FROM slot"))',
    'rows.append({"booked": 0, "held": 0})  # a new slot\'s row for insert(Slot)',
]


@pytest.mark.parametrize("source", VIOLATIONS)
def test_the_seat_scanner_catches_a_seat_write(source: str) -> None:
    assert seat_writes(source), source


@pytest.mark.parametrize("source", HARMLESS)
def test_the_seat_scanner_lets_reads_and_other_columns_be(source: str) -> None:
    assert seat_writes(source) == [], source


@pytest.mark.parametrize(
    "source",
    [
        "db.execute(update(Booking).where(Booking.id == 1).values(status='cancelled'))",
        "db.execute(update(Booking).values(**changes))",
        "db.execute(text(\"UPDATE booking SET status = 'no_show' WHERE id = 1\"))",
    ],
)
def test_the_status_scanner_catches_a_status_write(source: str) -> None:
    assert status_writes(source), source


def test_the_status_scanner_lets_other_columns_and_tables_be() -> None:
    assert status_writes("db.execute(update(Booking).values(phone_enc=None))") == []
    assert status_writes("db.execute(update(Call).values(status='done'))") == []


# --- The house ----------------------------------------------------------------------------------


def test_seats_change_only_in_the_seats_module_and_the_one_booking_statement() -> None:
    strays: list[str] = []
    for path in _modules():
        rel = _rel(path)
        if rel in SEAT_WRITERS:
            continue
        source = path.read_text(encoding="utf-8")
        allowed = NOT_A_SLOT.get(rel, set())
        for line, what in seat_writes(source):
            if what not in allowed:
                strays.append(f"{rel}:{line}: {what}")
    where, name = ONE_STATEMENT
    one = f"{where}:{_assignment_line(ROOT / where, name)}: SQL writes seats"
    assert one in strays, f"{name} no longer claims the seats itself: update ONE_STATEMENT"
    strays.remove(one)
    assert strays == [], "seats written outside booking/seats.py:\n" + "\n".join(strays)


def _assignment_line(path: Path, name: str) -> int:
    """The line of the string literal assigned (through ``text(...)``) to ``name``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    if _SEAT_SQL.search(sub.value):
                        return sub.lineno
    raise AssertionError(f"{name} not found in {path}")


def test_a_bookings_status_changes_only_inside_booking() -> None:
    strays = [
        f"{_rel(path)}:{line}: {what}"
        for path in _modules()
        if not _rel(path).startswith("booking/")
        for line, what in status_writes(path.read_text(encoding="utf-8"))
    ]
    assert strays == [], "a booking's status written outside booking/:\n" + "\n".join(strays)


def test_the_front_door_only_re_exports() -> None:
    """booking/service.py holds no rule of its own: imports, ``__all__`` and its docstring."""
    tree = ast.parse((ROOT / "booking/service.py").read_text(encoding="utf-8"))
    kinds = {type(node).__name__ for node in tree.body}
    assert kinds <= {"Expr", "ImportFrom", "Assign"}, kinds
    from booking import service

    exported = set(service.__all__)
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
    }
    assert exported == imported  # one complete __all__: every name it brings in, and no other
