"""How well the Periodic Autoencoders reconstruct windows of clips they never trained on (the held-out share), by
feature group, against two baselines: each window's own per-channel mean (a flat line at the right level: the PAE
must model the motion within the window to beat it) and the partition mean (zero in normalised units). Errors are
MSE in the PAE's normalised units (1.0: the training data's per-channel variance). See docs/architecture.md
(stage 2)."""

from __future__ import annotations

import torch

from humanoid_gpt.hme.config import HMEConfig
from humanoid_gpt.hme.corpus import ClipCache, find_corpus, is_heldout
from humanoid_gpt.hme.features import FEATURE_DIM, gather_windows, window_starts

GROUPS = {
    "all (74)": slice(0, FEATURE_DIM),
    "pose (36)": slice(0, 36),
    "velocities (35)": slice(36, 71),
    "root velocity (3)": slice(71, 74),
}


@torch.inference_mode()
def heldout_reconstruction(cfg: HMEConfig, cache: ClipCache | None = None, batch: int = 2048) -> dict[str, dict]:
    """Partition -> ``{"clips", "windows", <group>: {"pae", "window_mean", "partition_mean"}}`` over the held-out
    clips of the partition's source (``partitions: source``) or of every source; a partition with no held-out window
    (``holdout: 0``, or only short clips) maps to ``{"clips": 0, "windows": 0}``."""
    from humanoid_gpt.hme.pipeline import load_paes

    models, metas = load_paes(cfg)
    cache = cache or ClipCache(cfg)
    held = [c for c in find_corpus(cfg) if is_heldout(c, cfg)]
    out = {}
    for model, meta in zip(models, metas, strict=True):
        mine = [c for c in held if cfg.partitions != "source" or c.source == meta["partition"]]
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
