"""The console fixture (defined with the console's tests) for every test in this folder."""

from tests.agent_console.test_console import console

__all__ = ["console"]
