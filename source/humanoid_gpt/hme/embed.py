"""HME vectors of clip segments and their Parquet store (docs/architecture.md, stage 2).

Per window, every PAE gives each latent channel's amplitude and frequency; per segment, their mean and standard
deviation over the segment's windows; the HME vector concatenates, for each PAE in partition order,
``[amp_mean (C), freq_mean (C), amp_std (C), freq_std (C)]``.

The store (``embeddings.parquet``, beside the manifest) has one row per segment, keyed by the clip's content hash and
the segment's frames, with the clip's path, source, label, held-out flag, complexity and a baseline embedding (per
joint mean and standard deviation of angles and velocities, 116 values) for comparisons. Its metadata holds a
fingerprint of the PAEs and segmenting settings: rows of unchanged clips are reused while it matches, so re-embedding
is incremental.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt.hme.clip_files import ClipCache, CorpusClip, is_heldout
from humanoid_gpt.hme.config import HMEConfig, HMEError
from humanoid_gpt.hme.diversity import complexity
from humanoid_gpt.hme.features import (
    FEATURE_SPEC,
    JOINT_POS,
    JOINT_VEL,
    gather_windows,
    segment_clip,
    too_short_error,
    window_starts,
)
from humanoid_gpt.hme.pae import PeriodicAutoencoder, window_params
from humanoid_gpt.io_utils import atomic_write
from humanoid_gpt.runs import config_hash

FORMAT = "hgpt.hme.embeddings"
SCHEMA_VERSION = 1
STATS = ("amp_mean", "freq_mean", "amp_std", "freq_std")
log = logging.getLogger(__name__)


def hme_names(partitions: list[str], channels: int) -> list[str]:
    return [f"{p}.{s}.{c}" for p in partitions for s in STATS for c in range(channels)]


def baseline_names() -> list[str]:
    return [f"{part}_{stat}.{j}" for part in ("q", "qd") for stat in ("mean", "std") for j in range(29)]


def segment_vectors(
    models: list[PeriodicAutoencoder], feats: np.ndarray, bounds: list[tuple[int, int]], cfg: HMEConfig
) -> tuple[np.ndarray, np.ndarray]:
    """HME vectors (S, 4 C P) and window counts (S,) of segments given as frame ranges [lo, hi) at the PAE rate."""
    starts = [window_starts(len(feats), cfg.pae, lo, hi) for lo, hi in bounds]
    counts = np.array([len(s) for s in starts])
    if (counts == 0).any():
        raise HMEError(f"a segment has no full window: frames {bounds[int(np.argmin(counts))]} at {cfg.pae.rate} Hz")
    windows = gather_windows(torch.from_numpy(feats), torch.from_numpy(np.concatenate(starts)), cfg.pae)
    cuts = np.cumsum(counts)[:-1]
    parts = []
    for model in models:
        per_window = window_params(model, windows)  # (W, 2C): amplitudes, frequencies
        groups = np.split(per_window, cuts)
        parts.append(np.stack([np.concatenate([g.mean(0), g.std(0)]) for g in groups]))
    return np.concatenate(parts, axis=1).astype(np.float32), counts


def baseline_vectors(feats: np.ndarray, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Per segment: mean and std of each joint's angle, then of each joint's velocity (116 values)."""
    out = []
    for lo, hi in bounds:
        q, qd = feats[lo:hi, JOINT_POS], feats[lo:hi, JOINT_VEL]
        out.append(np.concatenate([q.mean(0), q.std(0), qd.mean(0), qd.std(0)]))
    return np.asarray(out, dtype=np.float32)


@dataclass
class Embeddings:
    """The store in memory: per-segment columns (numpy) and the vectors ``hme`` (S, H) and ``baseline`` (S, 116)."""

    key: np.ndarray
    clip_hash: np.ndarray
    path: np.ndarray
    source: np.ndarray
    label: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    fps: np.ndarray
    seconds: np.ndarray
    heldout: np.ndarray
    windows: np.ndarray
    complexity: np.ndarray
    hme: np.ndarray
    baseline: np.ndarray
    meta: dict = field(default_factory=dict)

    COLUMNS = ("key", "clip_hash", "path", "source", "label", "start", "stop", "fps", "seconds", "heldout")
    COLUMNS += ("windows", "complexity")

    def __len__(self) -> int:
        return len(self.key)

    def refs(self) -> list[str]:
        """Manifest entries of the segments: ``<path>@<start>:<stop>``."""
        return [f"{p}@{a}:{b}" for p, a, b in zip(self.path, self.start, self.stop, strict=True)]

    def select(self, mask: np.ndarray) -> Embeddings:
        cols = {k: getattr(self, k)[mask] for k in (*self.COLUMNS, "hme", "baseline")}
        return Embeddings(**cols, meta=self.meta)

    @classmethod
    def from_rows(cls, rows: list[dict], hme_dim: int, meta: dict) -> Embeddings:
        cols = {k: np.asarray([r[k] for r in rows]) for k in cls.COLUMNS}
        hme = np.asarray([r["hme"] for r in rows], np.float32).reshape(len(rows), hme_dim)
        base = np.asarray([r["baseline"] for r in rows], np.float32).reshape(len(rows), len(baseline_names()))
        return cls(**cols, hme=hme, baseline=base, meta=meta)

    def rows(self) -> list[dict]:
        out = []
        for i in range(len(self)):
            row = {k: _scalar(getattr(self, k)[i]) for k in self.COLUMNS}
            out.append({**row, "hme": self.hme[i], "baseline": self.baseline[i]})
        return out

    def save(self, path: Path) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = {k: pa.array(getattr(self, k).tolist()) for k in self.COLUMNS}
        for k in ("hme", "baseline"):
            v = getattr(self, k)
            arrays[k] = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), v.shape[1])
        table = pa.table(arrays).replace_schema_metadata({"hgpt": json.dumps(self.meta)})
        with atomic_write(path) as f:
            pq.write_table(table, f)
        return path


def _scalar(v):
    return v.item() if isinstance(v, np.generic) else v


def read_embeddings(path: str | Path) -> Embeddings:
    """The store at ``path``; raises naming the file when it is missing or not an HME store."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise HMEError(f"no HME embeddings at {path}: run the embed step first (hme embed CONFIG)")
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"hgpt", b"{}"))
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise HMEError(f"{path}: not a readable Parquet file ({e}); delete it and re-embed") from e
    if meta.get("format") != FORMAT or meta.get("schema_version", 0) > SCHEMA_VERSION:
        raise HMEError(f"{path}: not an HME embedding store of schema {SCHEMA_VERSION}; delete it and re-embed")
    cols = {k: table.column(k).to_numpy(zero_copy_only=False) for k in Embeddings.COLUMNS}
    vec = {}
    for k in ("hme", "baseline"):
        col = table.column(k).combine_chunks()
        vec[k] = col.flatten().to_numpy().reshape(len(table), col.type.list_size).astype(np.float32)
    return Embeddings(**cols, **vec, meta=meta)


def embedder_fingerprint(pae_metas: list[dict], cfg: HMEConfig) -> str:
    """What makes two embeddings of the same clip equal: the PAEs (by their config hash and epoch), the feature
    layout, windows and segmenting."""
    paes = [(m["partition"], m["config_hash"], m["epoch"]) for m in pae_metas]
    return config_hash({"paes": paes, "features": FEATURE_SPEC, "hop": cfg.pae.hop, "segment": cfg.segment_seconds})


def embed_corpus(
    corpus: list[CorpusClip],
    models: list[PeriodicAutoencoder],
    pae_metas: list[dict],
    cfg: HMEConfig,
    store: Path,
    cache: ClipCache | None = None,
    progress: bool = True,
) -> tuple[Embeddings, list[str], int]:
    """Embed every segment of ``corpus`` into ``store``, reusing rows of clips whose content and embedder are
    unchanged. Returns (the embeddings, names of the clips embedded now, number of clips reused)."""
    cache = cache or ClipCache(cfg)
    fingerprint = embedder_fingerprint(pae_metas, cfg)
    partitions = [m["partition"] for m in pae_metas]
    names = hme_names(partitions, int(pae_metas[0]["arch"]["channels"]))
    old_rows: dict[str, list[dict]] = {}
    if store.is_file():
        old = read_embeddings(store)
        if old.meta.get("fingerprint") == fingerprint:
            for row in old.rows():
                old_rows.setdefault(row["clip_hash"], []).append(row)
        else:
            log.info("%s was made by other PAEs or settings: embedding every clip again", store)
    rows, embedded, reused = [], [], 0
    todo = []
    for c in corpus:
        if c.digest in old_rows:
            update = {"path": c.rel, "source": c.source, "label": c.label, "heldout": bool(is_heldout(c, cfg))}
            rows += [{**r, **update} for r in old_rows[c.digest]]
            reused += 1
        else:
            todo.append(c)
    iterator = todo
    if progress and todo:
        from tqdm.auto import tqdm

        iterator = tqdm(todo, desc="embedding clips", unit="clip")
    skipped = []
    for c in iterator:
        clip = cache.clip(c)
        feats = cache.features(c)
        try:
            segments = segment_clip(clip.num_frames, clip.fps, cfg.segment_seconds, cfg.pae, f"{c.rel}")
        except HMEError:
            if cfg.skip_short:
                skipped.append(c.rel)
                continue
            raise
        if len(feats) < cfg.pae.span:  # resampling can shorten a clip by a frame
            raise too_short_error(c.rel, len(feats), cfg.pae)
        bounds = [(s.lo, min(s.hi, len(feats))) for s in segments]
        hme, counts = segment_vectors(models, feats, bounds, cfg)
        base = baseline_vectors(feats, bounds)
        for i, s in enumerate(segments):
            qd = feats[s.lo : s.hi, JOINT_VEL].astype(np.float64)
            qdd = np.gradient(qd, 1.0 / cfg.pae.rate, axis=0)
            rows.append(
                {
                    "key": f"{c.digest}@{s.start}:{s.stop}",
                    "clip_hash": c.digest,
                    "path": c.rel,
                    "source": c.source,
                    "label": c.label,
                    "start": s.start,
                    "stop": s.stop,
                    "fps": float(clip.fps),
                    "seconds": (s.stop - s.start) / clip.fps,
                    "heldout": bool(is_heldout(c, cfg)),
                    "windows": int(counts[i]),
                    "complexity": complexity(qd, qdd),
                    "hme": hme[i],
                    "baseline": base[i],
                }
            )
        embedded.append(c.rel)
    if skipped:
        shown = ", ".join(skipped[:5]) + (f", ... ({len(skipped) - 5} more)" if len(skipped) > 5 else "")
        log.warning("left out %d clips shorter than a PAE window (skip_short): %s", len(skipped), shown)
    if not rows:
        raise HMEError(f"no segment to embed in {len(corpus)} clips (all shorter than a PAE window?)")
    rows.sort(key=lambda r: (r["path"], r["start"]))
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "fingerprint": fingerprint,
        "hme_names": names,
        "partitions": partitions,
        "channels": int(pae_metas[0]["arch"]["channels"]),
        "segment_seconds": cfg.segment_seconds,
        "skipped": skipped,
    }
    table = Embeddings.from_rows(rows, len(names), meta)
    table.save(store)
    return table, embedded, reused
