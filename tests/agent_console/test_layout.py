"""The console's house, read from its imports (ast): the pages take what they share from
``agent_console.web``, never from ``agent_console.routes`` (which only gathers their routers for
the app), and the rules behind ``agent_console.service`` know no HTTP."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "agent_console"
# The rules (the service's front door and the modules it re-exports): no page, no FastAPI.
RULES = (
    "service",
    "staff_accounts",
    "staff_sessions",
    "credentials",
    "audit_log",
    "inquiries",
    "erasure_records",
)


def _imported(path: Path) -> Iterator[str]:
    """Every module a file imports, and every name it imports from one (as module.name)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_no_console_module_imports_the_routers_gatherer() -> None:
    importers = [
        p.name for p in sorted(PACKAGE.glob("*.py")) if "agent_console.routes" in _imported(p)
    ]
    assert importers == []


def test_the_rules_know_no_http_and_no_page() -> None:
    found = {
        name: sorted(
            m
            for m in _imported(PACKAGE / f"{name}.py")
            if m.split(".")[0] in ("fastapi", "starlette")
            or m.startswith(("agent_console.web", "agent_console.routes"))
        )
        for name in RULES
    }
    assert found == {name: [] for name in RULES}
