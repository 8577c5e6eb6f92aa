"""The corpus on disk: sharded, memory-mapped arrays with forward kinematics cached, and how to read them back.

The catalog's clip store: governance builds it (:mod:`humanoid_gpt.governance.corpus`), every later stage reads it
through this module. A corpus folder holds:

- ``index.json``: the commit point, written last: schema version, robot hash, rate, dtype, cached bodies, the
  shards (name, split, frames, sha256 of every array file and of the shard), the sha256 of the manifest and card.
- ``manifest.parquet``: one row per clip (:data:`MANIFEST_COLUMNS`); rows with a ``shard`` are in the corpus, the
  others record what was dropped and why.
- ``shards/<split>-<n>-<id>/``: one folder per shard, many clips concatenated frame by frame, each array an
  ``.npy`` file read with ``np.load(mmap_mode="r")`` (:data:`ARRAYS`), with ``SHA256SUMS.json`` written last.
  A clip is rows ``[offset, offset + frames)`` of its shard.

Per frame the arrays hold exactly what :meth:`MotionLibrary.from_clips` computes (joint and root velocities by
central differences per clip, body states by MuJoCo forward kinematics). Clips read back carry them
(:class:`~humanoid_gpt.motion.clip.ClipKinematics`), so :func:`load_library`, and a cluster manifest's corpus clips
(``<corpus folder>::<clip id>``, :func:`corpus_clips`; :func:`humanoid_gpt.catalog.manifests.corpus_manifest` turns a
manifest of exported files into one), pack the library's tensors with no forward kinematics and give
the same library as ``from_clips`` on the same clips (on the exported files, to the corpus dtype's precision).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.io_utils import atomic_write, contained_path, publish_folder, sha256_file
from humanoid_gpt.motion.clip import ClipKinematics, MotionClip
from humanoid_gpt.robot.g1 import G1, G1_KEYPOINT_NAMES

SCHEMA = "humanoid_gpt.corpus"
SCHEMA_VERSION = 1
INDEX = "index.json"
MANIFEST = "manifest.parquet"
SHARDS = "shards"
SUMS = "SHA256SUMS.json"
HASH_CHARS = 32
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once (as io_utils does)

#: Per-frame arrays of a shard: name -> trailing shape (``B`` = number of cached bodies).
ARRAYS: dict[str, tuple] = {
    "qpos": (36,),  # root position, root quaternion (w, x, y, z), 29 joints in the G1 order
    "joint_vel": (29,),
    "root_lin_vel": (3,),  # world frame
    "root_ang_vel": (3,),  # world frame
    "body_pos": ("B", 3),
    "body_quat": ("B", 4),  # w, x, y, z
    "body_lin_vel": ("B", 3),
    "body_ang_vel": ("B", 3),
}

#: Manifest columns, in order (pyarrow types in :func:`manifest_schema`).
MANIFEST_COLUMNS: tuple[str, ...] = (
    "clip_id", "name", "source", "path", "source_sha256", "format", "performer", "labels", "licence", "status",
    "reasons", "reason_codes", "warp", "fps", "frames", "duration_s", "source_fps", "source_start", "source_stop",
    "content_hash", "duplicate_of", "split", "shard", "offset", "shard_sha256", "unit", "retarget_status",
)  # fmt: skip
"""``clip_id`` ``<source>/<name>``, unique; ``name`` the file's name in its source (+ ``@start:stop`` for a trimmed
segment, + ``~x<factor>`` for a warp); ``path`` relative to the data root when under it; ``source_sha256`` of the
file; ``status`` keep / trim (in the corpus) or drop / duplicate (not); ``reasons`` every filter reason with its frame
ranges (``reason_codes`` their codes); ``warp`` the speed factor; ``fps``, ``frames``, ``duration_s`` of the clip as
stored (the corpus rate; a dropped file's own rate); ``source_fps``, ``source_start``, ``source_stop`` the segment in
the source file's frames (``path@start:stop`` is its cluster-manifest reference); ``content_hash`` of the stored
qpos; ``duplicate_of`` the clip it repeats; ``split``; ``shard``, ``offset`` its rows in the shard; ``shard_sha256``;
``unit`` the work unit's key; ``retarget_status`` ok / flagged for retargeted human clips."""


class CorpusError(HGPTError, ValueError):
    """A corpus that cannot be read or used: missing, corrupt, or made for another robot or bodies."""


def manifest_schema():
    import pyarrow as pa

    s, f, i, ls = pa.string(), pa.float64(), pa.int64(), pa.list_(pa.string())
    types = {
        "labels": ls, "reasons": ls, "reason_codes": ls, "warp": f, "fps": f, "duration_s": f, "source_fps": f,
        "frames": i, "source_start": i, "source_stop": i, "offset": i,
    }  # fmt: skip
    return pa.schema([(c, types.get(c, s)) for c in MANIFEST_COLUMNS])


# Arrays of clips --------------------------------------------------------------------------------------------------


def clip_arrays(
    clip: MotionClip, g1: G1, bodies: Sequence[str] = G1_KEYPOINT_NAMES, dtype: str = "float32"
) -> dict[str, np.ndarray]:
    """The per-frame arrays (:data:`ARRAYS`) of ``clip``: what :meth:`MotionLibrary.from_clips` computes for it."""
    return clips_arrays([clip], g1, bodies, dtype)


def clips_arrays(
    clips: Sequence[MotionClip],
    g1: G1,
    bodies: Sequence[str] = G1_KEYPOINT_NAMES,
    dtype: str = "float32",
    joint_vels: Sequence[np.ndarray | None] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`clip_arrays` of several clips, concatenated frame by frame. Velocities are per clip (central
    differences within each); forward kinematics runs once over all frames (it is per frame, so this equals
    :func:`~humanoid_gpt.motion.kinematics.clip_body_states` clip by clip, without compiling the model per clip).
    ``joint_vels``: each clip's ``joint_vel()`` when already computed."""
    from humanoid_gpt.motion.kinematics import forward_kinematics

    joint_vels = list(joint_vels) if joint_vels is not None else [None] * len(clips)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("qpos", "joint_vel", "root_lin_vel", "root_ang_vel")}
    qvel = []
    for clip, jv in zip(clips, joint_vels, strict=True):
        jv = clip.joint_vel() if jv is None else jv
        lin = clip.root_lin_vel("world")
        parts["qpos"].append(clip.qpos())
        parts["joint_vel"].append(jv)
        parts["root_lin_vel"].append(lin)
        parts["root_ang_vel"].append(clip.root_ang_vel("world"))
        qvel.append(np.concatenate([lin, clip.root_ang_vel("body"), jv], axis=1))  # clip_qvel's layout
    out = {k: np.concatenate(v) for k, v in parts.items()}
    states = forward_kinematics(g1, out["qpos"], np.concatenate(qvel), tuple(bodies))
    out.update(body_pos=states.pos, body_quat=states.quat, body_lin_vel=states.lin_vel, body_ang_vel=states.ang_vel)
    return {k: np.ascontiguousarray(out[k], dtype=dtype) for k in ARRAYS}


def content_hash(qpos: np.ndarray, fps: float) -> str:
    """A clip's identity: sha256 of its rate and stored generalized positions (first :data:`HASH_CHARS` digits)."""
    h = hashlib.sha256(np.float64(fps).tobytes())
    h.update(str(qpos.dtype).encode())
    h.update(np.ascontiguousarray(qpos).tobytes())
    return h.hexdigest()[:HASH_CHARS]


# Clip names -------------------------------------------------------------------------------------------------------


def warp_name(name: str, factor: float) -> str:
    """``walk`` -> ``walk~x1.25`` (the original keeps its name): the corpus names time-warped copies so, and readers
    of exported files tell them apart by it (:func:`is_warped`)."""
    return name if factor == 1.0 else f"{name}~x{factor:g}"


def is_warped(name: str) -> bool:
    """Whether a clip (or file) name is a time-warped copy (:func:`warp_name`)."""
    return "~x" in name


# Shards -------------------------------------------------------------------------------------------------------------


def shard_digest(sums: dict[str, str]) -> str:
    """One sha256 for a shard: over its files' names and sha256s in name order."""
    return hashlib.sha256(json.dumps(sorted(sums.items())).encode()).hexdigest()


def write_shard(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Write a shard folder in one rename: the ``.npy`` files and their sha256s (``SHA256SUMS.json``, last) go into
    a fresh folder beside ``folder``, which then takes its place. Returns file name -> sha256."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        os.chmod(stage, 0o777 & ~_UMASK)  # mkdtemp makes 0700; a published shard is as readable as its files
        sums = {}
        for name in ARRAYS:
            path = stage / f"{name}.npy"
            with open(path, "wb") as f:
                np.save(f, arrays[name])
                f.flush()
                os.fsync(f.fileno())
            sums[path.name] = sha256_file(path)
        with atomic_write(stage / SUMS, "w") as f:
            json.dump(sums, f, indent=1, sort_keys=True)
        publish_folder(stage, folder)  # a corrupt shard being rebuilt is swapped out
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return sums


def check_shard(folder: Path, expected: dict[str, str] | None = None) -> list[str]:
    """Problems of a shard folder (empty when whole): missing files, or files whose sha256 differs from its own
    ``SHA256SUMS.json`` or from ``expected`` (the index's record)."""
    sums_path = folder / SUMS
    if not sums_path.is_file():
        return [f"{folder}: incomplete (no {SUMS})"]
    try:
        recorded = json.loads(sums_path.read_text())
    except (OSError, ValueError) as e:
        return [f"{sums_path}: unreadable ({e})"]
    problems = []
    if expected is not None and expected != recorded:
        problems.append(f"{folder}: its checksums differ from the index's")
    for name in ARRAYS:
        path = folder / f"{name}.npy"
        want = (expected or recorded).get(path.name)
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != want:
            problems.append(f"{path}: sha256 differs from the recorded one (corrupt)")
    return problems


# Reading a corpus -------------------------------------------------------------------------------------------------


@dataclass
class CorpusIndex:
    """``index.json`` of a corpus folder."""

    folder: Path
    data: dict

    @classmethod
    def read(cls, folder: str | Path) -> CorpusIndex:
        folder = Path(folder)
        path = folder / INDEX
        if not path.is_file():
            raise CorpusError(
                f"{folder}: not a corpus (no {INDEX}); build one with `hgpt corpus build CONFIG.yaml`, or finish an "
                "interrupted build by running the same command again"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CorpusError(f"{path}: unreadable ({e}); rebuild with `hgpt corpus build`") from e
        if data.get("schema") != SCHEMA or int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise CorpusError(f"{path}: not a corpus index this code reads (schema {data.get('schema_version')})")
        return cls(folder, data)

    @property
    def bodies(self) -> tuple[str, ...]:
        return tuple(self.data["bodies"])

    @property
    def shards(self) -> dict[str, dict]:
        return {s["name"]: s for s in self.data["shards"]}

    def shard_folder(self, name: str) -> Path:
        """The folder of shard ``name``, refused when the index's name leads out of the corpus's shard folder."""
        where = f"{self.folder / INDEX}: shard"
        return contained_path(name, self.folder / SHARDS, "the corpus's shard folder", where, CorpusError, False)

    def check_robot(self, g1: G1) -> None:
        """Refuse a corpus built for another robot model: its cached kinematics would be that robot's."""
        from humanoid_gpt.runs import robot_hash

        if self.data.get("robot_hash") != robot_hash(g1.xml_path):
            raise CorpusError(
                f"{self.folder}: built for another robot model (hash {self.data.get('robot_hash')}, this G1 is "
                f"{robot_hash(g1.xml_path)}); rebuild the corpus with this model"
            )

    def arrays(self, shard: str, mmap: bool = True) -> dict[str, np.ndarray]:
        """The arrays of a shard, memory-mapped (read-only) by default."""
        folder = self.shard_folder(shard)
        try:
            return {k: np.load(folder / f"{k}.npy", mmap_mode="r" if mmap else None) for k in ARRAYS}
        except (OSError, ValueError) as e:
            raise CorpusError(f"{folder}: unreadable shard ({e}); run the build again to rebuild it") from e

    def verify(self) -> list[str]:
        """Every problem of the corpus's shards (sha256 against the index), empty when whole."""
        out = []
        for name, shard in self.shards.items():
            out += check_shard(self.shard_folder(name), shard["files"])
        return out


def read_manifest(folder: str | Path) -> list[dict]:
    """The manifest's rows as dicts (pyarrow's Parquet reader)."""
    import pyarrow.parquet as pq

    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise CorpusError(f"{folder}: no {MANIFEST}; build the corpus (again) with `hgpt corpus build`")
    return pq.read_table(path).to_pylist()


def select_rows(
    rows: list[dict], split: str | Sequence[str] | None = None, clips: Sequence[str] | None = None
) -> list[dict]:
    """Rows in the corpus (with a shard), of ``split`` (a name or several) and, when given, whose ``clip_id`` or
    ``name`` is in ``clips``, in manifest order. An unknown clip or empty selection is an error naming it."""
    chosen = [r for r in rows if r["shard"] is not None]
    if split is not None:
        splits = {split} if isinstance(split, str) else set(split)
        known = {r["split"] for r in chosen}
        if not splits & known:
            raise CorpusError(f"no clips in split(s) {sorted(splits)}; the corpus has {sorted(known)}")
        chosen = [r for r in chosen if r["split"] in splits]
    if clips is not None:
        wanted = set(clips)
        found = {r["clip_id"] for r in chosen} | {r["name"] for r in chosen}
        missing = sorted(wanted - found)
        if missing:
            raise CorpusError(f"clip(s) not in the corpus{' split' if split else ''}: {', '.join(missing[:5])}")
        chosen = [r for r in chosen if r["clip_id"] in wanted or r["name"] in wanted]
    if not chosen:
        raise CorpusError("the selection holds no clips")
    return chosen


def clips_of_rows(index: CorpusIndex, rows: Sequence[dict]) -> list[MotionClip]:
    """The clips of manifest rows in the corpus, from the stored qpos (provenance from the manifest), each with its
    cached kinematics as memory-mapped views: nothing more is read until a library packs them."""
    shards: dict[str, dict[str, np.ndarray]] = {}
    out = []
    for row in rows:
        if row["shard"] not in shards:
            shards[row["shard"]] = index.arrays(row["shard"])
        arrays = shards[row["shard"]]
        s = slice(row["offset"], row["offset"] + row["frames"])
        qpos = np.asarray(arrays["qpos"][s])
        prov = {k: row[k] for k in ("source", "path", "performer", "licence", "split", "warp", "clip_id")}
        prov["tags"] = list(row["labels"])
        cached = ClipKinematics(index.bodies, **{k: arrays[k][s] for k in ARRAYS if k != "qpos"})
        out.append(MotionClip(row["name"], row["fps"], qpos[:, :3], qpos[:, 3:7], qpos[:, 7:], prov, kinematics=cached))
    return out


def load_clips_from_corpus(
    folder: str | Path, split: str | Sequence[str] | None = None, clips: Sequence[str] | None = None
) -> list[MotionClip]:
    """The corpus's clips as :class:`MotionClip` objects with their cached kinematics (:func:`clips_of_rows`)."""
    return clips_of_rows(CorpusIndex.read(folder), select_rows(read_manifest(folder), split, clips))


def corpus_clips(folder: str | Path, clip_ids: Sequence[str], g1: G1) -> dict[str, MotionClip]:
    """Clip id -> the whole clip of that id, with its cached kinematics, reading the corpus's index and manifest
    once: what a cluster manifest's corpus clips (``<folder>::<clip id>``) load. Root quaternions are renormalized
    as :func:`~humanoid_gpt.motion.io.load_clip` does, so a clip's frames are exactly those of its exported file
    loaded. Refuses a corpus built for another robot model, and names the corpus and the ids it does not hold."""
    index = CorpusIndex.read(folder)
    index.check_robot(g1)
    rows = {r["clip_id"]: r for r in read_manifest(folder)}
    wanted = list(dict.fromkeys(clip_ids))
    unknown = [c for c in wanted if c not in rows or rows[c]["shard"] is None]
    if unknown:
        first = unknown[0]
        why = f"its manifest has it as {rows[first]['status']}" if first in rows else "no such clip_id in its manifest"
        raise CorpusError(
            f"{folder}: clip {first!r} is not in this corpus ({why}; {len(unknown)} unknown clip id(s) in all). In a "
            "clip reference a trailing @start:stop is a segment, not part of the id. The corpus changed since the "
            "cluster manifest was made, or the manifest names another corpus: regenerate the manifest"
        )
    clips = clips_of_rows(index, [rows[c] for c in wanted])
    # The kinematics were computed from unit quaternions: renormalizing the stored ones leaves them valid.
    unit = [
        c.replace(root_quat=c.root_quat / np.linalg.norm(c.root_quat, axis=1, keepdims=True), kinematics=c.kinematics)
        for c in clips
    ]
    return dict(zip(wanted, unit, strict=True))


def export_paths(rows: Sequence[dict]) -> dict[str, Path]:
    """Clip id -> where :func:`export_clips` writes the clip, relative to its output folder
    (``<split>/<source>/<name>.npz``), for every clip in the corpus. A function of the corpus manifest alone (one
    folder holds one split and source, whatever the selection), so exported files map back to their clips."""
    out: dict[str, Path] = {}
    taken: set[Path] = set()
    for row in rows:
        if row["shard"] is None:
            continue
        path = Path(row["split"]) / row["source"] / f"{_file_stem(Path(row['name']).name)}.npz"
        if path in taken:  # two sub-folders with one file name: the clip id keeps them apart
            path = path.with_name(f"{path.stem}_{_file_stem(row['clip_id'])}.npz")
        taken.add(path)
        out[row["clip_id"]] = path
    return out


def _file_stem(name: str) -> str:
    """``name`` as a file name: a source's sub-folders flattened, and no trimmed segment's ``@start:stop``, which
    in a path would read as a cluster manifest's segment notation."""
    return name.replace("/", "_").replace("@", "_").replace(":", "-")


def export_clips(
    folder: str | Path,
    out: str | Path,
    split: str | Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> list[Path]:
    """Write the corpus's clips (of ``split`` and ``sources``, all by default) as our clip NPZ files,
    ``<out>/<split>/<source>/<name>.npz`` (:func:`export_paths`), with their provenance, their frames and rate as
    stored: for tools that read files (the HME stage, cluster manifests, ``hgpt sim2sim eval``, other projects).
    Returns the paths in manifest order."""
    from humanoid_gpt.motion.io import save_clip

    rows = read_manifest(folder)
    out, manifest = Path(out), Path(folder) / MANIFEST
    # The manifest's split and source names make the folders: none may lead the writes out of ``out``.
    where = {
        c: contained_path(rel, out, "the export folder", f"{manifest}: clip {c!r}", CorpusError, False)
        for c, rel in export_paths(rows).items()
    }
    chosen = [r for r in select_rows(rows, split) if sources is None or r["source"] in sources]
    clips = clips_of_rows(CorpusIndex.read(folder), chosen)
    return [save_clip(clip, where[clip.provenance["clip_id"]]) for clip in clips]


def exported_clips(
    out: Path, split: str, sources: Sequence[str] | None = None, exclude: Sequence[str] = (), originals: bool = False
) -> list[Path]:
    """The clip files :func:`export_clips` wrote into ``out`` for ``split`` (of ``sources`` only, or all but
    ``exclude``; without time-warped copies when ``originals``: motion as captured), sorted."""
    found = []
    for source in sorted(p for p in (out / split).glob("*") if p.is_dir()):
        if (sources is None or source.name in sources) and source.name not in exclude:
            found += sorted(f for f in source.glob("*.npz") if not (originals and is_warped(f.stem)))
    return found


def load_library(
    folder: str | Path,
    g1: G1,
    body_names: Sequence[str] = G1_KEYPOINT_NAMES,
    split: str | Sequence[str] | None = None,
    clips: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weights: Sequence[float] | None = None,
):
    """A :class:`~humanoid_gpt.motion.library.MotionLibrary` packed straight from a corpus's cached arrays (no
    forward kinematics): the clips of ``split`` / ``clips`` (all by default), bodies ``body_names`` (a subset of
    the cached ones, in any order). Refuses a corpus built for another robot model."""
    from humanoid_gpt.motion.library import MotionLibrary

    index = CorpusIndex.read(folder)
    index.check_robot(g1)
    missing = [b for b in body_names if b not in index.bodies]
    if missing:
        raise CorpusError(
            f"{folder}: bodies {missing} are not cached (the corpus has {list(index.bodies)}); rebuild it"
        )
    chosen = clips_of_rows(index, select_rows(read_manifest(folder), split, clips))
    return MotionLibrary.from_clips(chosen, g1, tuple(body_names), device, dtype, weights)
