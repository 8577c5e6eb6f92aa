"""Atomic file writes: write beside the target, fsync, then rename, so a crash never leaves a half file."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp creates 0600 files; published files get the usual permissions


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file's bytes, read in blocks (motion files and models of any size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file in ``path``'s folder; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def read_versioned_json(
    path: str | Path, schema_version: int | tuple[int, ...], error: type[Exception], what: str
) -> dict:
    """A JSON object whose ``schema_version`` is ``schema_version`` (or one of them); anything else raises ``error``
    naming the file (``what`` says what the file should be, e.g. "cluster manifest")."""
    path = Path(path)
    readable = schema_version if isinstance(schema_version, tuple) else (schema_version,)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"cannot read {what} {path}: {e}") from e
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} is a JSON object with 'schema_version', not a list or value")
    if data.get("schema_version") not in readable:
        raise error(
            f"{path}: schema_version {data.get('schema_version')!r}, this code reads {' or '.join(map(str, readable))}"
        )
    return data


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Build a folder's new content in a fresh folder beside it, then swap it in with renames: readers see the old
    folder or the whole new one, never a mix; a crash leaves the old one as it was. Leftovers of crashed builds
    (``.<name>.*.partial`` / ``.old``) are removed first, so one writer at a time per folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for orphan in [*path.parent.glob(f".{path.name}.*.partial"), *path.parent.glob(f".{path.name}.*.old")]:
        shutil.rmtree(orphan, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    publish_folder(stage, path)


def publish_folder(built: Path, path: Path) -> None:
    """Swap the finished folder ``built`` in as ``path`` with renames (the old one moved aside, then removed):
    readers see the old folder or the whole new one."""
    old = path.parent / f".{path.name}.{os.getpid()}.old"
    if path.exists():
        os.replace(path, old)
    os.replace(built, path)
    shutil.rmtree(old, ignore_errors=True)


def contained_path(
    entry: str | Path,
    folder: Path,
    folder_name: str,
    where: str,
    error: type[Exception],
    absolute: bool = True,
) -> Path:
    """``folder / entry``, the path a file's relative entry names, refused unless it stays inside ``folder`` once its
    ``..`` are resolved: a file from elsewhere must not point its reader outside the folder it was put in. Lexical:
    symlinks inside the folder are its owner's and are followed. An absolute entry is returned as is when the
    format keeps absolute paths (``absolute``; the project writes some), else refused too. ``error`` names ``where``
    (the file and the entry), ``folder_name`` ("the data root") and the fix."""
    entry = Path(entry)
    if entry.is_absolute():
        if absolute:
            return entry
        raise error(
            f"{where}: {entry.as_posix()!r} is absolute, and this format names paths relative to {folder_name} "
            f"({folder}). Fix: write the path relative to {folder}"
        )
    base = os.path.abspath(folder)
    target = os.path.abspath(os.path.join(base, entry))
    if os.path.commonpath([base, target]) != base:
        raise error(
            f"{where}: {entry.as_posix()!r} leads out of {folder_name} ({folder}) to {target}; a relative path here "
            f"must stay inside {folder_name}. Fix: move the file under {folder}"
            + (", or name it by its absolute path if you trust it" if absolute else "")
        )
    return folder / entry


def glob_files(spec: str, root: Path, suffixes: tuple[str, ...]) -> tuple[Path, list[Path]] | None:
    """Files named by ``spec`` (a file, folder or glob; relative to ``root`` unless absolute) whose suffix, in any
    case, is one of ``suffixes``; folders are searched recursively. Returns the resolved pattern and the files, sorted
    per hit, or None when ``spec`` names nothing: callers word that error for their own setting."""
    pattern = Path(spec).expanduser()
    pattern = pattern if pattern.is_absolute() else root / pattern
    if any(ch in spec for ch in "*?["):
        hits = [Path(p) for p in sorted(glob.glob(str(pattern), recursive=True))]
    elif pattern.exists():
        hits = [pattern]
    else:
        return None
    files: list[Path] = []
    for hit in hits:
        if hit.is_dir():
            files += sorted(f for f in hit.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        elif hit.is_file() and hit.suffix.lower() in suffixes:
            files.append(hit)
    return pattern, files


def read_yaml(path: Path, what: str):
    """The content of the YAML file ``path`` (a config: ``what`` names it); a missing or malformed file is a
    :class:`~humanoid_gpt.errors.ConfigError` naming the file."""
    import yaml

    from humanoid_gpt.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e


def check_destination(path: str | Path, folder: bool = False) -> Path:
    """``path`` when a command can write there (a file, or a ``folder``), checked before the command does any work:
    an hour of evaluation must not end in an error about where to write it. Refused (a
    :class:`~humanoid_gpt.errors.ConfigError` saying the fix): an existing folder given as a file or a file given as
    a folder, a path under a file, a place where no file can be created (read-only, ``/proc``, no permission)."""
    from humanoid_gpt.errors import ConfigError

    path = Path(path)
    want = "folder" if folder else "file"
    if path.exists() and path.is_dir() != folder:
        fix = "name a file inside it" if path.is_dir() else "name a new folder, or remove the file"
        raise ConfigError(
            f"{path} is an existing {'folder' if path.is_dir() else 'file'}, and this names a {want}. Fix: {fix}"
        )
    place = path if folder and path.is_dir() else path.parent
    while not place.exists():
        place = place.parent
    if not place.is_dir():
        raise ConfigError(f"{path}: {place} is a file, so no {want} can be created under it. Fix: choose another path")
    try:  # permissions, read-only mounts and pseudo file systems all show in a real attempt, for any user
        fd, probe = tempfile.mkstemp(prefix=".hgpt-probe.", dir=place)
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot write in {place} ({e.strerror}). Fix: choose a place you can write to"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path
