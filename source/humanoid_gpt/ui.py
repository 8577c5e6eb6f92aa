"""Terminal output: rich consoles wide enough for the project's tables when output is piped or captured."""

from __future__ import annotations

import sys

from rich.console import Console


def console() -> Console:
    # rich falls back to 80 columns off a terminal, which cuts joint names in tables; logs and pipes get room.
    return Console(width=None if sys.stdout.isatty() else 160)
