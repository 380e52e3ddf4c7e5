"""Dependencies point one way, as the README's "Layout" says: every import of every module of
ours (inside ``if TYPE_CHECKING:`` and functions too) is checked against the rule below, and
the packages' imports form no cycle.

The rule (mirrors the README):

    booking        imports no other package of ours (the core; others react to its outbox)
    calendar_sync  -> booking
    ivr            -> booking
    reminders      -> booking, ivr
    agent_console  -> booking, ivr, reminders, calendar_sync
    config         -> anything (it wires); no package imports config

and no module imports another package's ``routes.py`` (any module named ``routes``) or
``booking/pages/``: a package's routes and pages are its own (config, which mounts them,
excepted). The shared HTTP helpers live in ``booking/web.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("booking", "ivr", "reminders", "agent_console", "calendar_sync", "config")
WIRING = "config"
# Which other packages of ours each package may import.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "booking": frozenset(),
    "calendar_sync": frozenset({"booking"}),
    "ivr": frozenset({"booking"}),
    "reminders": frozenset({"booking", "ivr"}),
    "agent_console": frozenset({"booking", "ivr", "reminders", "calendar_sync"}),
    WIRING: frozenset(PACKAGES) - {WIRING},
}
# Modules that belong to their own package alone (config, which mounts them, excepted).
PAGES = "booking.pages"


@dataclass(frozen=True)
class Arrow:
    """One import of one of our packages by a module of another."""

    path: str  # the importing file, from the repository's root
    line: int
    source: str  # the importing package
    target: str  # the imported module, dotted

    @property
    def package(self) -> str:
        return self.target.split(".")[0]

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.package} ({self.target})"


def _module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str, root: Path) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imported(node: ast.AST, module: str, is_package: bool, root: Path) -> Iterator[str]:
    """The modules an import statement names (``from a import b`` is ``a.b`` when b is a
    module, else ``a``); relative imports resolved against ``module``."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            parts = module.split(".")
            keep = len(parts) - node.level + (1 if is_package else 0)
            base = ".".join([*parts[:keep], *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            yield candidate if _is_module(candidate, root) else base
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
        == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        yield node.args[0].value  # importlib.import_module("ivr.routes") counts too


def arrows(root: Path = ROOT) -> list[Arrow]:
    """Every import, anywhere in a module of ours, of another package of ours."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = _module_of(path, root)
            where = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            here = [
                Arrow(where, getattr(node, "lineno", 0), package, target)
                for node in ast.walk(tree)
                for target in _imported(node, module, path.name == "__init__.py", root)
                if target.split(".")[0] in PACKAGES and target.split(".")[0] != package
            ]
            found.extend(sorted(here, key=lambda arrow: arrow.line))
    return found


def against_the_rule(found: list[Arrow]) -> list[str]:
    """Each arrow the rule forbids, saying which rule it breaks."""
    broken = []
    for arrow in found:
        if arrow.package not in MAY_IMPORT[arrow.source]:
            allowed = ", ".join(sorted(MAY_IMPORT[arrow.source])) or "no other package"
            broken.append(f"{arrow}: {arrow.source} may import {allowed}")
        elif arrow.source != WIRING and (
            "routes" in arrow.target.split(".")
            or arrow.target == PAGES
            or arrow.target.startswith(PAGES + ".")
        ):
            broken.append(
                f"{arrow}: another package's routes and pages are its own "
                "(shared HTTP helpers go in booking/web.py)"
            )
    return broken


def package_graph(found: list[Arrow]) -> dict[str, set[str]]:
    """Which packages each package imports."""
    graph: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for arrow in found:
        graph[arrow.source].add(arrow.package)
    return graph


def module_graph(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Which modules of ``package`` each of its modules imports (a package's ``__init__``
    left out: importing ``a.b`` runs ``a`` first without ``a`` needing ``b``)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        module = _module_of(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = {
            target
            for node in ast.walk(tree)
            for target in _imported(node, module, path.name == "__init__.py", root)
            if target.startswith(package + ".") and target != module
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles in an import graph (each as the nodes around it, from its least)."""
    loops: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target == path[0]:
                loops.append([*path, target])
            elif target not in path and target > path[0]:  # each loop once, from its least
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    return loops


def test_every_import_follows_the_layout_rule() -> None:
    found = arrows()
    assert found, "the walk found no imports between packages: is ROOT right?"
    broken = against_the_rule(found)
    assert not broken, "imports against the README's dependency rule:\n" + "\n".join(broken)


def test_no_import_cycle_between_packages() -> None:
    loops = cycles(package_graph(arrows()))
    assert not loops, "import cycles between packages: " + "; ".join(
        " -> ".join(loop) for loop in loops
    )


def test_no_import_cycle_inside_the_wiring() -> None:
    """config's modules import one another one way too (the app once imported the worker's
    builders while the worker imported the app's housekeeping)."""
    loops = cycles(module_graph(WIRING))
    assert not loops, "import cycles in config: " + "; ".join(" -> ".join(loop) for loop in loops)


def test_the_walk_catches_an_arrow_against_the_rule(tmp_path: Path) -> None:
    """A test that can fail: arrows hidden in a function, under TYPE_CHECKING, relative or
    through importlib are found, and an allowed one is let through."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "reminders" / "service.py").write_text("")
    (tmp_path / "ivr" / "routes.py").write_text("")
    (tmp_path / "booking" / "pages").mkdir()
    (tmp_path / "booking" / "pages" / "__init__.py").write_text("")
    (tmp_path / "booking" / "pages" / "forms.py").write_text("")
    (tmp_path / "ivr" / "flow.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from booking import service\n"  # allowed
        "if TYPE_CHECKING:\n"
        "    from reminders.service import CallAbout\n"
        "def remind():\n"
        "    from reminders import service\n"
    )
    (tmp_path / "booking" / "engine.py").write_text(
        "import importlib\nfrom . import pages\nsettings = importlib.import_module('config')\n"
    )
    (tmp_path / "reminders" / "routes.py").write_text("from booking.pages.forms import csrf_ok\n")
    (tmp_path / "agent_console" / "phones.py").write_text("from ivr import routes\n")
    (tmp_path / "config" / "app.py").write_text("from ivr.routes import router\n")  # wiring

    broken = against_the_rule(arrows(tmp_path))

    assert [line.split(": ", 1)[0] for line in broken] == [
        "booking/engine.py:3",
        "ivr/flow.py:4",
        "ivr/flow.py:6",
        "reminders/routes.py:1",
        "agent_console/phones.py:1",
    ]
    assert "ivr -> reminders (reminders.service): ivr may import booking" in broken[1]
    assert "booking may import no other package" in broken[0]
    assert "routes and pages are its own" in broken[4]


def test_the_walk_catches_a_cycle() -> None:
    found = [
        Arrow("ivr/flow.py", 1, "ivr", "reminders.service"),
        Arrow("reminders/jobs.py", 1, "reminders", "ivr.telephony"),
        Arrow("reminders/jobs.py", 2, "reminders", "booking.service"),
    ]
    assert cycles(package_graph(found)) == [["ivr", "reminders", "ivr"]]
