"""How well the Periodic Autoencoders reconstruct windows of clips they never trained on (the held-out share), by
feature group, against two baselines: each window's own per-channel mean (a flat line at the right level: the PAE
must model the motion within the window to beat it) and the partition mean (zero in normalised units). Errors are
MSE in the PAE's normalised units (1.0: the training data's per-channel variance). See docs/architecture.md
(stage 2)."""

from __future__ import annotations

import torch

from humanoid_gpt.hme.clip_files import ClipCache, CorpusClip, find_corpus, is_heldout
from humanoid_gpt.hme.config import HMEConfig
from humanoid_gpt.hme.features import FEATURE_DIM, gather_windows, window_starts
from humanoid_gpt.hme.pae import PeriodicAutoencoder, load_paes

GROUPS = {
    "all (74)": slice(0, FEATURE_DIM),
    "pose (36)": slice(0, 36),
    "velocities (35)": slice(36, 71),
    "root velocity (3)": slice(71, 74),
}


def measured_clips(corpus: list[CorpusClip], cfg: HMEConfig, partition: str) -> list[CorpusClip]:
    """The clips a partition's PAE is measured on: those of its source (``partitions: source``), else all of them;
    of these, the held-out ones (:func:`~humanoid_gpt.hme.clip_files.is_heldout`) are the ones it never trained on."""
    return [c for c in corpus if cfg.partitions != "source" or c.source == partition]


@torch.inference_mode()
def heldout_reconstruction(
    cfg: HMEConfig,
    paes: tuple[list[PeriodicAutoencoder], list[dict]] | None = None,
    cache: ClipCache | None = None,
    corpus: list[CorpusClip] | None = None,
    batch: int = 2048,
) -> dict[str, dict]:
    """Partition -> ``{"clips", "windows", <group>: {"pae", "window_mean", "partition_mean"}}`` over the held-out
    share of :func:`measured_clips`; a partition with no held-out window (``holdout: 0``, or only short clips) maps to
    ``{"clips": 0, "windows": 0}``. ``paes`` (models, metadata) default to the ones ``fit`` wrote for ``cfg``,
    ``corpus`` to :func:`~humanoid_gpt.hme.clip_files.find_corpus` (which hashes every file: pass it when you have
    it)."""
    models, metas = paes or load_paes(cfg)
    cache = cache or ClipCache(cfg)
    corpus = find_corpus(cfg) if corpus is None else corpus
    out = {}
    for model, meta in zip(models, metas, strict=True):
        mine = [c for c in measured_clips(corpus, cfg, meta["partition"]) if is_heldout(c, cfg)]
        windows = []
        for c in mine:
            f = torch.from_numpy(cache.features(c))
            starts = window_starts(len(f), cfg.pae)
            if len(starts):
                windows.append(gather_windows(f, torch.from_numpy(starts), cfg.pae))
        if not windows:
            out[meta["partition"]] = {"clips": 0, "windows": 0}
            continue
        x = torch.cat(windows)
        target = model.normalize(x)
        recon = torch.cat([model(x[i : i + batch])[0] for i in range(0, len(x), batch)])
        window_mean = target.mean(-1, keepdim=True).expand_as(target)
        row: dict = {"clips": len(mine), "windows": len(x)}
        for name, sl in GROUPS.items():
            row[name] = {
                "pae": float((recon[:, sl] - target[:, sl]).square().mean()),
                "window_mean": float((window_mean[:, sl] - target[:, sl]).square().mean()),
                "partition_mean": float(target[:, sl].square().mean()),
            }
        out[meta["partition"]] = row
    return out
