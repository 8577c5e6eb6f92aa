"""Hostile files the loader tests share: a pickle payload whose unpickling creates a marker file, standing in for a
command an attacker would run. A test reads the file and checks the marker never appears."""

from __future__ import annotations

import pickle
from pathlib import Path


class _Touches:
    """Unpickled, it calls ``Path.touch(marker)``: plain Python a pickle can name, as it can ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def live_payload(marker: Path) -> _Touches:
    """A payload that touches ``marker`` when unpickled, checked to do so once (then the marker is removed): a
    refusal is then the reader's doing, not a dud payload."""
    pickle.loads(pickle.dumps(_Touches(marker)))
    assert marker.exists(), "the payload does not run when unpickled"
    marker.unlink()
    return _Touches(marker)
