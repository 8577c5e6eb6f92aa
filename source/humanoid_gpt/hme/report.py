"""The HME report (docs/architecture.md, stage 2): Markdown with figures drawn headless (matplotlib, Agg): a 2-D PCA
of the HME coloured by cluster and by source, the cluster-size histogram, diversity per source, and PAE
reconstructions of a few held-out windows against the input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt.catalog.manifests import load_manifest
from humanoid_gpt.hme.clip_files import ClipCache, CorpusClip, find_corpus, is_heldout
from humanoid_gpt.hme.config import DIVERSITY, MANIFEST, STORE, HMEConfig
from humanoid_gpt.hme.embed import read_embeddings
from humanoid_gpt.hme.evaluate import GROUPS, heldout_reconstruction, measured_clips
from humanoid_gpt.hme.features import FEATURE_NAMES, gather_windows, window_starts
from humanoid_gpt.hme.pae import PeriodicAutoencoder, load_paes
from humanoid_gpt.hme.space import cluster_space
from humanoid_gpt.io_utils import write_text_atomic

RECON_CHANNELS = ("q_left_hip_pitch_joint", "q_left_knee_joint", "qd_right_shoulder_pitch_joint", "root_height")


def pca_2d(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection of the (standardised) rows of ``z`` on their first two principal axes, and the variance share."""
    centred = z - z.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max((s**2).sum(), 1e-12)
    return centred @ vt[:2].T, var[:2]


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scatter(plt, xy: np.ndarray, groups: np.ndarray, title: str, path: Path, legend: bool) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5))
    names = sorted(set(groups.tolist()))
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    for i, name in enumerate(names):
        m = groups == name
        ax.scatter(xy[m, 0], xy[m, 1], s=8, color=cmap(i % cmap.N), label=str(name), alpha=0.8)
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    if legend:
        ax.legend(fontsize=7, markerscale=2, ncol=2 if len(names) > 8 else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reconstructions(
    cfg: HMEConfig,
    model: PeriodicAutoencoder,
    meta: dict,
    corpus: list[CorpusClip],
    cache: ClipCache,
    plt,
    path: Path,
    count: int = 3,
) -> str:
    """Plot ``count`` held-out windows (input vs PAE reconstruction, normalised units); returns a caption."""
    own = measured_clips(corpus, cfg, meta["partition"])
    held = [c for c in own if is_heldout(c, cfg)] or own
    rng = np.random.default_rng(cfg.seed)
    picks = []
    for c in rng.permutation(len(held))[:count]:
        feats = cache.features(held[c])
        starts = window_starts(len(feats), cfg.pae)
        if len(starts):
            picks.append((held[c].rel, feats, int(starts[len(starts) // 2])))
    if not picks:
        return "no window to reconstruct"
    channels = [FEATURE_NAMES.index(n) for n in RECON_CHANNELS]
    fig, axes = plt.subplots(len(picks), len(channels), figsize=(3.2 * len(channels), 2.3 * len(picks)), squeeze=False)
    t = np.arange(cfg.pae.window_frames) * cfg.pae.sample_dt
    errors = []
    for row, (name, feats, start) in enumerate(picks):
        x = gather_windows(torch.from_numpy(feats), torch.tensor([start]), cfg.pae)
        with torch.inference_mode():
            recon = model(x)[0][0].numpy()
            target = model.normalize(x)[0].numpy()
        errors.append((float(((recon - target) ** 2).mean()), float(target.var(-1).mean())))
        for col, ch in enumerate(channels):
            ax = axes[row, col]
            ax.plot(t, target[ch], label="input", color="k", lw=1.2)
            ax.plot(t, recon[ch], label="PAE", color="tab:red", lw=1.0, ls="--")
            ax.axhline(target[ch].mean(), label="window mean (baseline)", color="0.6", lw=0.8, ls=":")
            ax.set_title(f"{Path(name).stem} {FEATURE_NAMES[ch]}", fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    said = ", ".join(f"{pae:.3f} / {flat:.3f}" for pae, flat in errors)
    where = f"PAE `{meta['partition']}` on {len(picks)} held-out windows (normalised units)"
    return f"{where}; MSE, PAE / window mean: {said}"


def _losses(losses: list[float]) -> str:
    return f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "-"


def _heldout_table(rows: dict[str, dict]) -> str:
    body = []
    for partition, row in rows.items():
        if not row["windows"]:
            body.append([partition, 0, 0, "-", "-", "-", "-", "-"])
            continue
        for group in GROUPS:
            e = row[group]
            change = e["pae"] / max(e["window_mean"], 1e-12) - 1
            errors = [f"{e[k]:.3f}" for k in ("pae", "window_mean", "partition_mean")]
            body.append([partition, row["clips"], row["windows"], group, *errors, f"{100 * change:+.0f} %"])
    header = ["partition", "held-out clips", "windows", "features", "PAE", "window mean", "partition mean"]
    return _table([*header, "PAE error vs window mean"], body) if body else "No held-out clips (holdout: 0)."


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(cfg: HMEConfig) -> Path:
    plt = _figure()
    out = cfg.output_dir()
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    emb = read_embeddings(out / STORE)
    manifest = load_manifest(out / MANIFEST)
    diversity = json.loads((out / DIVERSITY).read_text())["rows"]
    cluster_of = {ref: cid for cid, refs in manifest.clusters.items() for ref in refs}
    assigned = np.asarray([cluster_of.get(r, "none") for r in emb.refs()])
    z, _ = cluster_space(emb, cfg.cluster_features)  # the space K-Means clustered
    xy, var = pca_2d(z)
    space = cfg.cluster_features.replace("+", " + ")
    _scatter(plt, xy, assigned, f"{space} PCA by cluster (K={len(manifest.clusters)})", figs / "pca_cluster.png", False)
    _scatter(plt, xy, emb.source, f"{space} PCA by source", figs / "pca_source.png", True)
    _scatter(plt, xy, emb.label, f"{space} PCA by file-name label", figs / "pca_label.png", True)

    sizes = [len(v) for v in manifest.clusters.values()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(sizes, bins=min(30, max(5, len(sizes) // 2)), color="tab:blue")
    ax.set(title="cluster sizes", xlabel="segments per cluster", ylabel="clusters")
    fig.tight_layout()
    fig.savefig(figs / "cluster_sizes.png", dpi=110)
    plt.close(fig)

    per_source = [r for r in diversity if r["group"] in ("corpus", "source")]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    names = [r["name"] for r in per_source]
    axes[0].bar(names, [r["gstd"] for r in per_source], color="tab:green")
    axes[0].set_title("gstd")
    axes[1].bar(names, [r["log_volume"] for r in per_source], color="tab:purple")
    axes[1].set_title("log-volume")
    for ax in axes:
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(figs / "diversity.png", dpi=110)
    plt.close(fig)

    models, metas = load_paes(cfg)
    corpus, cache = find_corpus(cfg), ClipCache(cfg)  # hashed and loaded once for the figure and the table
    caption = _reconstructions(cfg, models[0], metas[0], corpus, cache, plt, figs / "reconstruction.png")

    meta = manifest.meta
    lines = [
        "# Harmonic Motion Embedding report",
        "",
        f"Corpus: {len(set(emb.clip_hash.tolist()))} clips, {len(emb)} segments of about {cfg.segment_seconds:g} s, "
        f"{emb.seconds.sum() / 60:.1f} min; sources {', '.join(cfg.sources)}. HME: {emb.hme.shape[1]} values per "
        f"segment from {len(metas)} PAEs ({', '.join(m['partition'] for m in metas)}), {cfg.pae.channels} channels, "
        f"{cfg.pae.window_frames}-sample windows ({cfg.pae.window_seconds:g} s at {cfg.pae.rate:g} Hz).",
        "",
        "## PAEs",
        "",
        _table(
            ["partition", "clips", "epochs", "steps", "training loss (first epoch -> last)"],
            [[m["partition"], len(m["clips"]), m["epoch"], m["steps"] or "-", _losses(m["losses"])] for m in metas],
        ),
        "",
        "Held-out reconstruction (MSE in normalised units, 1 = the training data's variance), against predicting "
        "each window's own mean (a PAE must beat it to have learned the motion within windows) and the partition "
        "mean:",
        "",
        _heldout_table(heldout_reconstruction(cfg, (models, metas), cache, corpus)),
        "",
        f"![reconstructions](figures/reconstruction.png)\n\n{caption}.",
        "",
        "## Diversity",
        "",
        "gstd = exp(mean_j log sigma_j), log-volume = 0.5 log det(Sigma + 1e-6 I) of the HME covariance.",
        "",
        _table(
            ["group", "name", "segments", "gstd", "log-volume"],
            [[r["group"], r["name"], r["n"], f"{r['gstd']:.4f}", f"{r['log_volume']:.2f}"] for r in diversity],
        ),
        "",
        "![diversity](figures/diversity.png)",
        "",
        f"## Clusters (K = {len(manifest.clusters)}, seed {meta.get('seed')})",
        "",
        f"Manifest: `{MANIFEST}` (tasks `HGPT-Cluster-000` ... with `HGPT_CLUSTER_MANIFEST` pointing at it).",
        "",
        "![sizes](figures/cluster_sizes.png)",
        "",
        "![by cluster](figures/pca_cluster.png) ![by source](figures/pca_source.png)",
        "![by label](figures/pca_label.png)",
        "",
        f"PCA: the first two axes hold {100 * var[0]:.1f} % and {100 * var[1]:.1f} % of the standardised variance.",
        "",
    ]
    rows = []
    for cid, info in meta.get("clusters", {}).items():
        labels = ", ".join(f"{k} {v}" for k, v in list(info["labels"].items())[:3])
        sources = ", ".join(f"{k} {v}" for k, v in info["sources"].items())
        rows.append([cid, info["size"], f"{info['seconds']:.0f}", labels, sources, f"`{info['medoid']}`"])
    lines += [_table(["cluster", "segments", "seconds", "top labels", "sources", "medoid"], rows), ""]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
