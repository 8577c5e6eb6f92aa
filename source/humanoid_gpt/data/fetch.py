"""Download the default motions: Unitree's LAFAN1 retargeting to the G1 (Hugging Face, files ``g1/*.csv``).

Each file is checked against the sha256 list shipped with the package, written atomically, and skipped when a
verified copy is already there. The base URL can be overridden with ``HGPT_LAFAN1_URL`` (for mirrors).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from humanoid_gpt import settings
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write, sha256_file

LAFAN1_URL = "https://huggingface.co/datasets/unitreerobotics/LAFAN1_Retargeting_Dataset/resolve/main/g1"


class DownloadError(HGPTError):
    """A download failed or did not match its checksum."""


def lafan1_checksums() -> dict[str, str]:
    """File name -> sha256 of the 40 LAFAN1 G1 clips."""
    text = resources.files("humanoid_gpt.data").joinpath("lafan1_g1.sha256").read_text()
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line.strip())}


def fetch_lafan1(dest: Path | None = None, base_url: str | None = None, timeout: float = 60.0) -> list[Path]:
    """Download every LAFAN1 G1 clip not already present (and verified) into ``dest``.

    ``dest`` defaults to ``$HGPT_DATA_ROOT/g1_motions/lafan1``. Raises :class:`DownloadError` naming the file on a
    network failure or a checksum mismatch; files already verified stay in place.
    """
    dest = dest or settings.g1_motions_dir("lafan1")
    base_url = (base_url or os.environ.get("HGPT_LAFAN1_URL") or LAFAN1_URL).rstrip("/")
    sums = lafan1_checksums()
    todo = [n for n in sorted(sums) if not ((dest / n).is_file() and sha256_file(dest / n) == sums[n])]
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=False) as progress:
        overall = progress.add_task(f"LAFAN1-G1 -> {dest}", total=len(sums), completed=len(sums) - len(todo))
        for name in todo:
            _download(f"{base_url}/{name}", dest / name, sums[name], progress, timeout)
            progress.advance(overall)
    return [dest / n for n in sorted(sums)]


def _download(url: str, path: Path, sha256: str, progress: Progress, timeout: float) -> None:
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_write(path) as out:
            task = progress.add_task(path.name, total=int(resp.headers.get("Content-Length") or 0) or None)
            for block in iter(lambda: resp.read(1 << 16), b""):
                h.update(block)
                out.write(block)
                progress.advance(task, len(block))
            progress.remove_task(task)
            if h.hexdigest() != sha256:
                # Raising inside atomic_write discards the temporary file: nothing unverified is left behind.
                raise DownloadError(f"{url}: sha256 {h.hexdigest()} does not match the expected {sha256}")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        raise DownloadError(
            f"could not download {url} into {path}: {e}. Fix: check the network, set HGPT_LAFAN1_URL to a mirror, "
            "or point HGPT_DATA_ROOT at a folder that already holds g1_motions/lafan1"
        ) from e
