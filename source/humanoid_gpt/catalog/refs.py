"""Clip references: one notation for a clip wherever it lives, and loading clips by it.

A reference names a whole motion file (``g1_motions/lafan1/walk1_subject1.csv``), frames of it
(``<path>@<start frame>:<stop frame>``, at the file's own rate, stop exclusive), or a clip of a built corpus
(``<corpus folder>::<clip id>``, ``<corpus folder>::<clip id>@<start>:<stop>``, at the clip's rate), read from the
corpus's memory-mapped shards with the kinematics it cached. Cluster manifests (:mod:`humanoid_gpt.catalog.manifests`)
hold these as entries; plans and env configs carry them as :class:`ClipRef`. A relative path is under the data root
and must stay inside it; an absolute one is read where it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from humanoid_gpt import settings
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import contained_path

if TYPE_CHECKING:
    from humanoid_gpt.motion.clip import MotionClip


class ManifestError(HGPTError, ValueError):
    """A clip reference or cluster manifest that cannot be used: malformed entries, unreadable files, empty clusters,
    clips that do not exist. One error for both: a reference's notation is a manifest entry's."""


# A segment suffix is strictly "@<int>:<int>": file names such as walk@60hz.csv stay plain paths.
_SEGMENT = re.compile(r"^(?P<path>.+)@(?P<start>\d+):(?P<stop>\d+)$")
CORPUS_SEPARATOR = "::"
"""Between a corpus folder and a clip id in a clip reference: ``<corpus folder>::<clip id>``."""


@dataclass(frozen=True)
class ClipRef:
    """A whole motion file (``start`` and ``stop`` None) or frames ``[start, stop)`` of it, at the file's own rate;
    with a ``clip_id``, the clip of that id in the built corpus at ``path`` (or frames of it, at the clip's rate).

    ``str(ref)`` is the manifest notation: the path (``<corpus folder>::<clip id>`` for a corpus clip), plus
    ``@<start>:<stop>`` for a segment. A trailing ``@<int>:<int>`` always reads as a segment, so a whole corpus clip
    whose id ends like one (a clip the corpus filters trimmed, ``lafan1/walk.csv@120:900``) is named as the segment
    of all its frames (:meth:`corpus_clip`)."""

    path: Path
    start: int | None = None
    stop: int | None = None
    clip_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if (self.start is None) != (self.stop is None):
            raise ManifestError(f"{self.path}: a clip segment needs both a start and a stop frame")
        if self.start is not None and not 0 <= self.start < self.stop:
            raise ManifestError(f"{self}: a segment needs 0 <= start < stop (frames at the clip's rate)")
        if CORPUS_SEPARATOR in self.path.as_posix():
            raise ManifestError(
                f"{self.path.as_posix()!r}: a path holding {CORPUS_SEPARATOR!r} reads as <corpus folder>::<clip id>; "
                "rename the file or folder"
            )
        if self.clip_id is not None:
            if not self.clip_id:
                raise ManifestError(f"{self}: a corpus clip needs a clip id after {CORPUS_SEPARATOR!r}")
            if not self.is_segment and _SEGMENT.match(self.clip_id):
                raise ManifestError(
                    f"{self}: the clip id ends like a segment (@<start>:<stop>), so this reference would read back "
                    f"as a segment; name the whole clip as the segment of all its frames, {self}@0:<frames>"
                )

    @property
    def is_segment(self) -> bool:
        return self.start is not None

    @property
    def is_corpus(self) -> bool:
        """Whether this names a clip of a built corpus (``path`` is then the corpus folder), not a file."""
        return self.clip_id is not None

    @property
    def source(self) -> tuple[Path, str | None]:
        """The whole file, or corpus clip, this ref names or is a segment of: (path, clip id or None)."""
        return self.path, self.clip_id

    @classmethod
    def corpus_clip(cls, corpus: str | Path, clip_id: str, frames: int) -> ClipRef:
        """The whole clip ``clip_id`` (``frames`` long) of the corpus at ``corpus``: ``<corpus>::<clip id>``, or
        ``<corpus>::<clip id>@0:<frames>`` when the id itself ends like a segment (see the class docstring)."""
        if _SEGMENT.match(clip_id):
            return cls(Path(corpus), 0, frames, clip_id)
        return cls(Path(corpus), clip_id=clip_id)

    @classmethod
    def parse(cls, text: str | Path | ClipRef) -> ClipRef:
        """A ref from the manifest notation (``path``, ``path@start:stop``, ``folder::clip id``,
        ``folder::clip id@start:stop``), a path, or a ref."""
        if isinstance(text, ClipRef):
            return text
        folder, corpus, rest = str(text).partition(CORPUS_SEPARATOR)
        match = _SEGMENT.match(rest if corpus else folder)
        segment = (int(match["start"]), int(match["stop"])) if match else (None, None)
        if not corpus:
            return cls(Path(match["path"] if match else folder), *segment)
        if not folder:
            raise ManifestError(f"{text!r}: a corpus clip needs a corpus folder before {CORPUS_SEPARATOR!r}")
        return cls(Path(folder), *segment, match["path"] if match else rest)

    def resolve(self, root: Path) -> ClipRef:
        """The same ref with its path (file or corpus folder) under ``root`` (absolute paths stay); a relative path
        that leads out of ``root`` (``../../etc/passwd``) is refused."""
        return replace(self, path=contained_path(self.path, root, "the data root", "clip path", ManifestError))

    def exists(self) -> bool:
        """Whether the file, or the corpus folder, is there."""
        return self.path.is_dir() if self.is_corpus else self.path.is_file()

    def __str__(self) -> str:
        text = self.path.as_posix()
        if self.is_corpus:
            text = f"{text}{CORPUS_SEPARATOR}{self.clip_id}"
        return f"{text}@{self.start}:{self.stop}" if self.is_segment else text

    def describe(self) -> str:
        """What the ref's frames come from, for messages: the file, or the clip and its corpus folder."""
        return f"clip {self.clip_id!r} of the corpus {self.path}" if self.is_corpus else str(self.path)

    @property
    def manifest_version(self) -> int:
        """The oldest manifest schema that holds this entry (1: whole files, 2: segments, 3: corpus clips)."""
        return 3 if self.is_corpus else 2 if self.is_segment else 1


def load_clip_refs(refs: Iterable[str | Path | ClipRef], g1=None, progress: bool = False) -> list:
    """Load clips named by paths, manifest entries (``path@start:stop``, ``folder::clip id[@start:stop]``) or
    :class:`ClipRef` (what plans and env configs carry), in order. Each file is read and validated once; a whole file
    loads as :func:`humanoid_gpt.motion.io.load_clip` does and a folder as every motion file in it (as
    ``load_clips`` does). Corpus clips load from the corpus's shards with their cached kinematics (each corpus's
    index and manifest read once; :func:`humanoid_gpt.catalog.store.corpus_clips`), so a motion library of them
    runs no forward kinematics. A segment is the slice ``[start, stop)`` named ``<name>@<start>``. A relative path
    or corpus folder that does not exist from the working directory is taken under the data root (where manifest
    entries are relative to)."""
    from humanoid_gpt.motion.io import find_motion_files, load_clip  # the reader stack: only when clips are loaded
    from humanoid_gpt.robot.g1 import load_g1

    root = settings.data_root()
    parsed: list[ClipRef] = []
    for item in refs:
        ref = ClipRef.parse(item)
        if not ref.path.is_absolute() and not ref.path.exists():
            ref = ref.resolve(root)
        if not ref.is_segment and not ref.is_corpus and ref.path.is_dir():
            parsed += [ClipRef(f) for f in find_motion_files([ref.path])]
        else:
            parsed.append(ref)
    missing = sorted({r.describe() for r in parsed if not r.exists()})
    if missing:
        raise ManifestError(
            f"{len(missing)} motion files or corpus folders named by the clip list do not exist (first: {missing[0]}); "
            "check HGPT_DATA_ROOT or regenerate the cluster manifest"
        )
    g1 = g1 or load_g1()
    files = list(dict.fromkeys(r.path for r in parsed if not r.is_corpus))
    if progress:
        from rich.progress import track

        files = track(files, description="loading motions")
    loaded = {(f, None): load_clip(f, g1=g1) for f in files}
    loaded |= _load_corpus_clips([r for r in parsed if r.is_corpus], g1)
    clips = []
    for ref in parsed:
        clip = loaded[ref.source]
        if not ref.is_segment:
            clips.append(clip)
            continue
        if ref.stop > clip.num_frames:
            raise ManifestError(
                f"segment {ref} ends at frame {ref.stop} but {ref.describe()} has {clip.num_frames} frames: it "
                "changed since the manifest was made; regenerate the manifest (hme cluster)"
            )
        segment = clip.slice(ref.start, ref.stop)
        provenance = {**clip.provenance, "segment": [ref.start, ref.stop]}
        clips.append(segment.replace(name=f"{clip.name}@{ref.start}", provenance=provenance))
    return clips


def _load_corpus_clips(refs: Sequence[ClipRef], g1) -> dict[tuple[Path, str], MotionClip]:
    """The whole clips ``refs`` name (or are segments of), by their :attr:`ClipRef.source`, one read per corpus."""
    if not refs:
        return {}
    from humanoid_gpt.catalog.store import corpus_clips  # the corpus reader (numpy, pyarrow): only when needed

    by_corpus: dict[Path, list[str]] = {}
    for ref in refs:
        by_corpus.setdefault(ref.path, []).append(ref.clip_id)
    return {
        (folder, clip_id): clip
        for folder, ids in by_corpus.items()
        for clip_id, clip in corpus_clips(folder, ids, g1).items()
    }
