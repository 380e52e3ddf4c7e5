"""What the `madoguchi` command's groups share: how a command is added, its database sessions,
a URL fit to print."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]


class AddCommand(Protocol):
    """Adds a command to `madoguchi` (config.cli.build_parser): its name, what runs it, its
    help (also its description), its examples."""

    def __call__(
        self, name: str, func: Command, help_: str, epilog: str | None = None
    ) -> argparse.ArgumentParser: ...


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    from config.app import session_factory

    return session_factory(settings)


def safe_url(url: str) -> str:
    """The URL without a password, fit for a terminal or a log."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
