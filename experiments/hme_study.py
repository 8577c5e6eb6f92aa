"""What the Harmonic Motion Embedding measures on the shared LAFAN1 + G1 Moves clips (issue 10, section 4).

For each seed the whole stage runs (PAEs per source partition, embedding of 10-s segments, K-Means, report); then:

- PAE reconstruction on held-out windows (clips no PAE trained on), normalised MSE per channel group, against a
  baseline predicting each window's own per-channel mean;
- cluster quality against the labels in the file names (walk, run, dance, karate, ...): purity and normalised
  mutual information of the pipeline's clusters and of K-Means (same K and seed) in three spaces: the paper's HME
  alone, a baseline embedding (per joint mean and std of angles and velocities) alone, and both (the default
  ``cluster_features``);
- stability: adjusted Rand index between the clusterings of different seeds (PAEs retrained), and between K-Means
  seeds on one embedding;
- embedding throughput on one core (frames/s at 50 Hz, loaded clips);
- the diversity table (gstd, log-volume per corpus, source and split).

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie \\
        .venv/bin/python experiments/hme_study.py --out outputs/evidence/hme

Prints the figures and writes ``hme_study.json`` (and each seed's HME outputs and report) under ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from humanoid_gpt import configure_process
from humanoid_gpt.catalog.manifests import load_manifest
from humanoid_gpt.hme.clip_files import ClipCache, find_corpus
from humanoid_gpt.hme.config import DIVERSITY, MANIFEST, STORE, HMEConfig, PAEConfig
from humanoid_gpt.hme.embed import embed_corpus, read_embeddings
from humanoid_gpt.hme.evaluate import heldout_reconstruction
from humanoid_gpt.hme.kmeans import kmeans
from humanoid_gpt.hme.pae import load_paes
from humanoid_gpt.hme.pipeline import build, cluster_count
from humanoid_gpt.hme.scores import adjusted_rand_index, nmi, purity
from humanoid_gpt.hme.space import cluster_space
from humanoid_gpt.io_utils import write_text_atomic


def reconstruction(cfg: HMEConfig, cache: ClipCache) -> dict:
    """Normalised MSE of every PAE on held-out windows by feature group (against the window-mean and partition-mean
    baselines), with its training loss by epoch."""
    paes = load_paes(cfg)
    rows = heldout_reconstruction(cfg, paes, cache)
    for meta in paes[1]:
        rows[meta["partition"]] |= {"epochs": meta["epoch"], "training_loss": meta["losses"]}
    return rows


def quality(labels: np.ndarray, clusters: np.ndarray, sources: np.ndarray) -> dict:
    return {
        "purity": purity(clusters, labels),
        "nmi_labels": nmi(clusters, labels),
        "nmi_source": nmi(clusters, sources),
        "clusters": int(len(np.unique(clusters))),
    }


def manifest_labels(out: Path, refs: list[str]) -> np.ndarray:
    manifest = load_manifest(out / MANIFEST)
    of = {r: c for c, rs in manifest.clusters.items() for r in rs}
    return np.asarray([of[r] for r in refs])


def throughput(cfg: HMEConfig) -> dict:
    """Embed every clip again into a scratch store on one thread (clips already loaded and validated)."""
    models, metas = load_paes(cfg)
    corpus = find_corpus(cfg)
    cache = ClipCache(cfg)
    for c in corpus:
        cache.clip(c)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    scratch = cfg.output_dir() / "throughput.parquet"
    scratch.unlink(missing_ok=True)
    start = time.perf_counter()
    table, _, _ = embed_corpus(corpus, models, metas, cfg, scratch, cache, progress=False)
    seconds = time.perf_counter() - start
    torch.set_num_threads(before)
    scratch.unlink(missing_ok=True)
    frames_50 = sum(len(cache.features(c)) for c in corpus)
    frames_file = sum(cache.clip(c).num_frames for c in corpus)
    return {
        "seconds": seconds,
        "segments": len(table),
        "frames_50hz_per_s": frames_50 / seconds,
        "file_frames_per_s": frames_file / seconds,
        "paes": len(models),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("outputs/evidence/hme"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--channels", type=int, default=PAEConfig.channels, help="PAE latent channels")
    p.add_argument("--epochs", type=int, default=PAEConfig.epochs)
    p.add_argument("--min-steps", type=int, default=PAEConfig.min_steps)
    p.add_argument("--batch-size", type=int, default=PAEConfig.batch_size)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--k", type=int, default=None, help="clusters (default: segments / target size 30)")
    args = p.parse_args()
    configure_process()
    torch.set_num_threads(args.threads)
    out = args.out.resolve()
    pae = dict(channels=args.channels, epochs=args.epochs, min_steps=args.min_steps, batch_size=args.batch_size)
    pae["threads"] = args.threads
    configs = {s: HMEConfig(output=str(out / f"seed{s}"), seed=s, k=args.k, pae=PAEConfig(**pae)) for s in args.seeds}

    timings = {}
    for seed, cfg in configs.items():
        start = time.perf_counter()
        build(cfg, progress=False)
        timings[seed] = time.perf_counter() - start
        print(f"seed {seed}: build {timings[seed]:.0f} s -> {cfg.output_dir()}", flush=True)

    first = configs[args.seeds[0]]
    emb = read_embeddings(first.output_dir() / STORE)
    refs = emb.refs()
    labels, sources = emb.label, emb.source
    k = cluster_count(len(emb), first)
    hme_clusters = {s: manifest_labels(cfg.output_dir(), refs) for s, cfg in configs.items()}
    for cfg in configs.values():  # every seed embedded the same segments in the same order
        assert read_embeddings(cfg.output_dir() / STORE).refs() == refs

    def clusters_of(features: str) -> dict:
        """Each seed's own embedding (its PAEs) clustered in ``features`` with that seed's K-Means."""
        out = {}
        for s, cfg in configs.items():
            z, _ = cluster_space(read_embeddings(cfg.output_dir() / STORE), features)
            out[s] = kmeans(z, k, s, first.kmeans_iterations, first.kmeans_restarts).labels
        return out

    by_features = {f: clusters_of(f) for f in ("hme", "joint_stats", "hme+joint_stats")}
    zh, _ = cluster_space(emb, "hme")
    kmeans_only = {s: kmeans(zh, k, s, first.kmeans_iterations, first.kmeans_restarts).labels for s in args.seeds}

    def mean_std(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}

    def pair_ari(assign: dict) -> dict:
        return mean_std([adjusted_rand_index(assign[a], assign[b]) for a, b in itertools.combinations(assign, 2)])

    rows = {f"pipeline ({first.cluster_features})": hme_clusters, **by_features}
    qualities = {key: [quality(labels, c, sources) for c in assign.values()] for key, assign in rows.items()}
    majority = max(np.unique(labels, return_counts=True)[1]) / len(labels)
    result = {
        "corpus": {
            "clips": len(set(emb.clip_hash.tolist())),
            "segments": len(emb),
            "minutes": float(emb.seconds.sum() / 60),
            "labels": sorted(set(labels.tolist())),
            "k": k,
            "hme_dims": int(emb.hme.shape[1]),
            "baseline_dims": int(emb.baseline.shape[1]),
        },
        "settings": {"seeds": args.seeds, **pae, "build_seconds": timings},
        "reconstruction": reconstruction(first, ClipCache(first)),
        "cluster_quality": {
            key: {m: mean_std([q[m] for q in qs]) for m in ("purity", "nmi_labels", "nmi_source")}
            for key, qs in qualities.items()
        },
        "purity_of_a_single_cluster": float(majority),  # the share of the commonest label: purity's floor
        "stability_ari": {
            "hme_pipeline_across_seeds": pair_ari(hme_clusters),
            "hme_kmeans_seeds_fixed_embedding": pair_ari(kmeans_only),
            "joint_stats_kmeans_seeds": pair_ari(by_features["joint_stats"]),
        },
        "throughput_one_core": throughput(first),
        "diversity": json.loads((first.output_dir() / DIVERSITY).read_text())["rows"],
    }
    write_text_atomic(out / "hme_study.json", json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
