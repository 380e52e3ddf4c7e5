"""The `madoguchi` command's groups of commands (config.cli puts them together)."""
