"""Migrate every history to head: `python -m scripts.migrate` (uses DATABASE_URL)."""

from __future__ import annotations

from shared.migrations import upgrade_all
from shared.settings import get_settings


def main() -> None:
    upgrade_all(get_settings().database_url)


if __name__ == "__main__":
    main()
