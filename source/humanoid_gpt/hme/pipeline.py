"""The HME stage as library calls (docs/architecture.md, stage 2): ``fit`` the Periodic Autoencoders, ``embed`` clip
segments, ``cluster`` them into the versioned cluster manifest the tasks read, ``report``; ``build`` runs all four.

Each takes an :class:`~humanoid_gpt.hme.config.HMEConfig`, a dict of its fields or the path of a YAML file, and
writes into the config's output folder::

    pae/<partition>/pae_<epoch>.pt   PAE checkpoints (atomic, resumable), pae/index.json names the final ones
    embeddings.parquet               one HME vector per segment, keyed by clip content hash (incremental)
    clusters.json                    the cluster manifest (schema 2: "<path>@<start>:<stop>" segments)
    diversity.json                   gstd and log-volume of the HME per corpus, source and split
    report.md, figures/              the report

Point ``HGPT_CLUSTER_MANIFEST`` at ``clusters.json`` to train ``HGPT-Cluster-<id>`` experts on the HME clusters.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt.catalog.manifests import ClusterManifest
from humanoid_gpt.hme.clip_files import ClipCache, CorpusClip, find_corpus, partitions
from humanoid_gpt.hme.config import DIVERSITY, INDEX, MANIFEST, STORE, HMEConfig, HMEError, load_config
from humanoid_gpt.hme.diversity import diversity_table
from humanoid_gpt.hme.embed import Embeddings, embed_corpus, read_embeddings
from humanoid_gpt.hme.features import too_short_error, window_starts
from humanoid_gpt.hme.kmeans import kmeans
from humanoid_gpt.hme.pae import finished_checkpoint, load_paes, pae_meta, train_pae
from humanoid_gpt.hme.report import write_report
from humanoid_gpt.hme.space import cluster_space
from humanoid_gpt.io_utils import write_text_atomic

log = logging.getLogger(__name__)


def as_config(config: HMEConfig | dict | str | Path | None) -> HMEConfig:
    """An :class:`HMEConfig` from itself, a dict of fields, a YAML path, or None (the defaults)."""
    if isinstance(config, HMEConfig):
        config.validate()
        return config
    if isinstance(config, dict):
        return HMEConfig.from_dict(config)
    return load_config(config)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# fit --------------------------------------------------------------------------------------------------------------


def training_windows(clips: list[CorpusClip], cache: ClipCache, cfg: HMEConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of ``clips`` stacked (T, 74) and the start frame of every training window in that stack."""
    feats, starts, offset = [], [], 0
    for c in clips:
        f = cache.features(c)
        s = window_starts(len(f), cfg.pae)
        if not len(s):
            if cfg.skip_short:
                continue
            raise too_short_error(c.rel, len(f), cfg.pae)
        feats.append(f)
        starts.append(s + offset)
        offset += len(f)
    if not feats:
        raise HMEError(f"no clip of {[c.rel for c in clips][:3]}... is as long as a PAE window")
    return torch.from_numpy(np.concatenate(feats)), torch.from_numpy(np.concatenate(starts))


def fit(config: HMEConfig | dict | str | Path | None = None, progress: bool = True) -> dict[str, Path]:
    """Train (or resume, or reuse when complete) one PAE per partition; returns partition -> final checkpoint."""
    cfg = as_config(config)
    out = cfg.output_dir()
    corpus = find_corpus(cfg)
    cache = ClipCache(cfg)
    index: dict[str, Path] = {}
    with torch_threads(cfg.pae.threads):
        for name, clips in partitions(corpus, cfg).items():
            meta = pae_meta(cfg.pae, name, [c.digest for c in clips], cfg.seed)
            done = finished_checkpoint(out / "pae" / name, meta, cfg.pae)
            if done is not None:  # finished before: no need to load the clips
                index[name] = done
                continue
            feats, starts = training_windows(clips, cache, cfg)
            log.info("PAE %s: %d clips, %d windows", name, len(clips), len(starts))
            index[name] = train_pae(feats, starts, cfg.pae, out / "pae" / name, meta, cfg.seed, progress)
    payload = {"format": "hgpt.hme.pae_index", "schema_version": 1}
    payload["partitions"] = {k: p.relative_to(out).as_posix() for k, p in index.items()}
    write_text_atomic(out / INDEX, json.dumps(payload, indent=1))
    return index


# embed ------------------------------------------------------------------------------------------------------------


def embed(config: HMEConfig | dict | str | Path | None = None, progress: bool = True) -> dict:
    """Embed every segment of the corpus into ``embeddings.parquet`` (only clips that are new or changed since the
    last run); returns ``{"store", "segments", "embedded" (clip paths), "reused" (clip count)}``."""
    cfg = as_config(config)
    models, metas = load_paes(cfg)
    store = cfg.output_dir() / STORE
    with torch_threads(cfg.pae.threads):
        table, embedded, reused = embed_corpus(find_corpus(cfg), models, metas, cfg, store, progress=progress)
    return {"store": store, "segments": len(table), "embedded": embedded, "reused": reused}


# cluster ----------------------------------------------------------------------------------------------------------


def cluster_count(n: int, cfg: HMEConfig) -> int:
    return cfg.k if cfg.k is not None else max(1, int(round(n / cfg.target_cluster_size)))


def manifest_from_labels(
    emb: Embeddings, labels: np.ndarray, z: np.ndarray, centers: np.ndarray, info: dict
) -> ClusterManifest:
    """The cluster manifest of a clustering: ids ``000``... by decreasing size; per cluster in ``meta``: size,
    seconds, medoid (the member nearest the centre), label histogram and source mix."""
    refs = np.asarray(emb.refs())
    found = np.unique(labels)
    order = sorted(found, key=lambda c: (-int((labels == c).sum()), int(np.flatnonzero(labels == c)[0])))
    clusters, per = {}, {}
    for i, c in enumerate(order):
        cid = f"{i:03d}"
        members = np.flatnonzero(labels == c)
        medoid = members[np.argmin(((z[members] - centers[c]) ** 2).sum(1))]
        clusters[cid] = [str(r) for r in refs[members]]
        per[cid] = {
            "size": len(members),
            "seconds": round(float(emb.seconds[members].sum()), 2),
            "medoid": str(refs[medoid]),
            "labels": dict(Counter(emb.label[members].tolist()).most_common()),
            "sources": dict(Counter(emb.source[members].tolist()).most_common()),
        }
    meta = {"made_by": "humanoid_gpt.hme", **info, "clusters": per}
    return ClusterManifest(clusters, "hme", meta)


def diversity_rows(emb: Embeddings) -> list[dict]:
    split = np.where(emb.heldout, "heldout", "train")
    return diversity_table(emb.hme, {"source": emb.source, "split": split})


def cluster(config: HMEConfig | dict | str | Path | None = None) -> Path:
    """K-Means on the standardised embedding (``cluster_features``) -> ``clusters.json`` (and ``diversity.json``);
    returns the manifest."""
    cfg = as_config(config)
    out = cfg.output_dir()
    emb = read_embeddings(out / STORE)
    k = cluster_count(len(emb), cfg)
    if len(emb) < k:
        raise HMEError(
            f"{len(emb)} segments in {out / STORE} for k={k} clusters: there must be at least as many segments as "
            "clusters. Fix: lower k (or raise target_cluster_size), shorten segment_seconds, or add clips"
        )
    z, scales = cluster_space(emb, cfg.cluster_features)
    result = kmeans(z, k, cfg.seed, cfg.kmeans_iterations, cfg.kmeans_restarts)
    info = {
        "embeddings": STORE,
        "fingerprint": emb.meta.get("fingerprint"),
        "k": k,
        "seed": cfg.seed,
        "inertia": result.inertia,
        "segment_seconds": cfg.segment_seconds,
        "balance_temperature": cfg.balance_temperature,
        "hme_names": emb.meta.get("hme_names"),
        "cluster_features": cfg.cluster_features,
        "standardization": scales,
    }
    manifest = manifest_from_labels(emb, result.labels, z, result.centers, info)
    path = manifest.save(out / MANIFEST)
    write_text_atomic(out / DIVERSITY, json.dumps({"rows": diversity_rows(emb)}, indent=1))
    return path


# report and build -------------------------------------------------------------------------------------------------


def report(config: HMEConfig | dict | str | Path | None = None) -> Path:
    """``report.md`` with figures (PCA of the HME by cluster and by source, cluster sizes, diversity per source, PAE
    reconstructions of held-out windows); returns its path."""
    cfg = as_config(config)
    return write_report(cfg)


def build(config: HMEConfig | dict | str | Path | None = None, progress: bool = True) -> dict:
    """fit, embed, cluster and report; returns the paths and what the embed step did."""
    cfg = as_config(config)
    paes = fit(cfg, progress)
    embedded = embed(cfg, progress)
    manifest = cluster(cfg)
    return {
        "paes": paes,
        "embeddings": embedded,
        "manifest": manifest,
        "diversity": cfg.output_dir() / DIVERSITY,
        "report": report(cfg),
    }
