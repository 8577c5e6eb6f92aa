"""Evidence that distillation works: parallel DAgger from two cluster experts into one student on the native MuJoCo
backend, then sim2sim metrics of the students against their teachers, on the clusters' clips and on clips of
performers held out from training (issue 5, section 4).

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python experiments/distill_learning.py \\
        --expert walk=outputs/evidence/walk/run/model_1000.pt \\
        --expert dance=outputs/evidence/dance45/run/model_1000.pt \\
        --students gpt-s mlp tcn --iterations 100 --out outputs/evidence/distill

Every student gets the same data (iterations x envs x steps) from the same teachers. Writes ``report.json``,
``report.md`` (a table laid out like the paper's) and ``curves.png`` under ``--out``, beside the runs.

The banded key/value-cache GPTs (``gpt-s-kv``, ...) take ``--kv-window`` W (each layer's attention band) and
``--kv-context`` (supervised tokens per training window; each window also carries its R - 1 = L (W - 1) tokens of
burn-in). The window-vs-KV comparison at equal data (issue 11):

    ... experiments/distill_learning.py --expert walk=... --expert dance=... --students gpt-s gpt-s-kv \
        --iterations 300 --out outputs/evidence/distill_kv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evidence_common import (
    CLUSTERS,
    add_dagger_args,
    dagger_config,
    distill_student,
    eval_policy,
    plot_curves,
    window_set,
)

from humanoid_gpt import settings
from humanoid_gpt.catalog.manifests import ClusterManifest
from humanoid_gpt.deploy.policies import TorchStudentPolicy
from humanoid_gpt.experts.checkpoint import load_checkpoint
from humanoid_gpt.experts.evaluation import expert_tracking_config, load_expert_policy
from humanoid_gpt.experts.registry import ExpertRegistry, RetentionRule
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.metrics import metrics_table
from humanoid_gpt.motion import load_clip
from humanoid_gpt.robot import load_g1
from humanoid_gpt.students import context_overrides
from humanoid_gpt.students.distill import DistillRun


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expert", action="append", required=True, help="CLUSTER=CHECKPOINT (a cluster of CLUSTERS)")
    p.add_argument("--students", nargs="+", default=["gpt-s", "mlp", "tcn"])
    p.add_argument("--context", type=int, default=16)
    p.add_argument("--kv-window", type=int, default=16, help="gpt-*-kv: tokens each layer attends over (W)")
    p.add_argument("--kv-context", type=int, default=32, help="gpt-*-kv: supervised tokens per training window")
    add_dagger_args(p)
    p.add_argument("--eval-windows", type=int, default=4, help="10-s windows per clip")
    p.add_argument("--min-sr", type=float, default=10.0, help="retention threshold for the CPU-budget experts")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    g1 = load_g1()
    lafan = settings.g1_motions_dir("lafan1")
    experts = dict(e.split("=", 1) for e in args.expert)
    manifest = ClusterManifest(
        {c: [f"g1_motions/lafan1/{n}.csv" for n in CLUSTERS[c][0]] for c in experts}, "evidence manifest"
    )
    manifest.save(args.out / "manifest.json")
    sets = {}
    for cluster in experts:
        train, held = CLUSTERS[cluster]
        clips = lambda names: [load_clip(lafan / f"{n}.csv", g1=g1) for n in names]  # noqa: E731
        sets[cluster] = {
            "train": window_set(clips(train), args.eval_windows),
            "held_out": window_set(clips(held), args.eval_windows),
        }

    # Teachers: evaluated on their clusters, recorded in a registry (CPU-budget experts need a lenient rule).
    rule = RetentionRule(min_sr_percent=args.min_sr, max_mpkpe_mm=100.0, max_mpjpe=0.3, min_mean_episode_s=2.0)
    registry, results = ExpertRegistry(rule=rule), {"teacher": {}}
    for cluster, ckpt in experts.items():
        tracking = expert_tracking_config(ckpt)
        scores = {
            k: eval_policy(g1, w, lambda env, ckpt=ckpt: load_expert_policy(ckpt, env, g1), tracking)
            for k, w in sets[cluster].items()
        }
        results["teacher"][cluster] = scores
        meta = load_checkpoint(ckpt)["infos"]["hgpt"]
        record = registry.add(cluster, meta["task"], Path(ckpt).resolve(), meta["config_hash"], scores["train"])
        print(f"teacher {cluster}: {json.dumps(scores)} retained={record.retained} {record.reasons}", flush=True)
    registry.save(args.out / "experts.json")

    curves = {}
    for name in args.students:
        kv = name.endswith("-kv")
        overrides = {"attn_window": args.kv_window} if kv else context_overrides(name, args.context)
        run = DistillRun(
            args.out / "experts.json",
            student=name,
            context=args.kv_context if kv else args.context,
            log_root=args.out / "runs",
            run_name=name,
            overrides=overrides,
            dagger=dagger_config(args, args.iterations),
        )
        ckpt, curves[name], _ = distill_student(run, g1, manifest)
        tracking = expert_tracking_config(next(iter(experts.values())))
        results[name] = {
            c: {
                k: eval_policy(g1, w, lambda env, ckpt=ckpt: TorchStudentPolicy(ckpt, env), tracking)
                for k, w in s.items()
            }
            for c, s in sets.items()
        }
        print(f"{name}: {json.dumps(results[name])}", flush=True)
        write_report(args, results, curves)
    plot_curves(curves, args.out / "curves.png")


def write_report(args, results: dict, curves: dict) -> None:
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "curves": curves}
    write_text_atomic(args.out / "report.json", json.dumps(report, indent=1))
    lines = []
    for split in ("train", "held_out"):
        rows = [
            ([policy, cluster], scores[split])
            for policy, per_cluster in results.items()
            for cluster, scores in per_cluster.items()
        ]
        lines += [f"\n### {split.replace('_', '-')} clips\n", *metrics_table(("policy", "cluster"), rows)]
    write_text_atomic(args.out / "report.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
