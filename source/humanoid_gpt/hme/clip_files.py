"""The clip files the HME stage works on: found from the config's sources, identified by content hash, split into the
partitions the Periodic Autoencoders train on and a held-out share. See docs/architecture.md (stage 2).

Held-out clips and folds are decided by a hash of (split seed, content hash), not by list position, so adding clips
to the corpus never moves an existing clip to another fold."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import ConfigError
from humanoid_gpt.hme.config import HMEConfig, partition_kind
from humanoid_gpt.hme.features import clip_label, frame_features
from humanoid_gpt.io_utils import glob_files, sha256_file
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.io import MOTION_SUFFIXES

HASH_CHARS = 32


@dataclass(frozen=True)
class CorpusClip:
    """One motion file: ``rel`` is its path as manifests write it (relative to the data root when under it),
    ``digest`` the sha256 of its bytes (first 32 hex digits), ``source`` its folder, ``label`` from its name."""

    rel: str
    path: Path
    digest: str
    source: str
    label: str


def file_digest(path: Path) -> str:
    return sha256_file(path)[:HASH_CHARS]


def _expand(source: str, root: Path) -> list[Path]:
    found = glob_files(source, root, MOTION_SUFFIXES)
    if found is None:
        raise ConfigError(
            f"HME source {source!r} does not exist ({root / source}); name folders, files or globs under the data "
            f"root ({root}, HGPT_DATA_ROOT)"
        )
    return found[1]


def find_corpus(cfg: HMEConfig) -> list[CorpusClip]:
    """Every motion file the sources name, once, sorted by path."""
    root = cfg.root()
    files = sorted({f.resolve() for s in cfg.sources for f in _expand(s, root)})
    if not files:
        raise ConfigError(f"HME sources {cfg.sources} name no motion files ({', '.join(MOTION_SUFFIXES)}) under {root}")
    out = []
    resolved_root = root.resolve()
    for f in files:
        rel = f.relative_to(resolved_root).as_posix() if f.is_relative_to(resolved_root) else str(f)
        out.append(CorpusClip(rel, f, file_digest(f), f.parent.name, clip_label(f.stem)))
    return out


def _bucket(digest: str, seed: int, salt: str, buckets: int) -> int:
    return int(hashlib.sha256(f"{seed}:{salt}:{digest}".encode()).hexdigest()[:12], 16) % buckets


def is_heldout(clip: CorpusClip, cfg: HMEConfig) -> bool:
    return _bucket(clip.digest, cfg.split_seed, "holdout", 10_000) < round(cfg.holdout * 10_000)


def partitions(corpus: list[CorpusClip], cfg: HMEConfig) -> dict[str, list[CorpusClip]]:
    """Partition name -> the clips its PAE trains on (held-out clips excluded), in corpus order."""
    kind, n = partition_kind(cfg.partitions)
    train = [c for c in corpus if not is_heldout(c, cfg)]
    if kind == "all":
        parts = {"all": train}
    elif kind == "source":
        parts = {s: [c for c in train if c.source == s] for s in sorted({c.source for c in corpus})}
    else:
        parts = {f"fold{i}": [c for c in train if _bucket(c.digest, cfg.split_seed, "fold", n) == i] for i in range(n)}
    empty = [name for name, clips in parts.items() if not clips]
    if empty:
        raise ConfigError(
            f"HME partitions {empty} have no training clips (holdout={cfg.holdout}, partitions={cfg.partitions!r}); "
            "use fewer folds, a smaller holdout or more clips"
        )
    return parts


class ClipCache:
    """Loads each clip once (validated) and its features at the PAE rate once."""

    def __init__(self, cfg: HMEConfig, g1=None) -> None:
        self.cfg, self._g1 = cfg, g1
        self._clips: dict[str, MotionClip] = {}
        self._feats: dict[str, np.ndarray] = {}

    @property
    def g1(self):
        if self._g1 is None:
            from humanoid_gpt.robot.g1 import load_g1

            self._g1 = load_g1()
        return self._g1

    def clip(self, c: CorpusClip) -> MotionClip:
        if c.digest not in self._clips:
            from humanoid_gpt.motion.io import load_clip

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # curation warnings are `hgpt motions check`'s business, not ours
                self._clips[c.digest] = load_clip(c.path, g1=self.g1)
        return self._clips[c.digest]

    def features(self, c: CorpusClip) -> np.ndarray:
        if c.digest not in self._feats:
            self._feats[c.digest] = frame_features(self.clip(c), self.cfg.pae.rate)
        return self._feats[c.digest]
