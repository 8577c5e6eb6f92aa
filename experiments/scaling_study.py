"""The paper's central table at CPU scale: students of several architectures (MLP, TCN, GPT-S; GPT-B with
``--students``) distilled by parallel DAgger from the SAME teachers at several data sizes, each scored in sim2sim on
10-s windows of clips whose performers the teachers never trained on.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python experiments/scaling_study.py \\
        --registry docs/evidence/distill_300/experts.json --manifest docs/evidence/distill_300/manifest.json \\
        --heldout g1_motions/lafan1/walk1_subject5.csv g1_motions/lafan1/dance1_subject2.csv \\
        --iterations 300 --fractions 0.25 0.5 1.0 --students mlp tcn gpt-s --out outputs/evidence/scaling

The registry's retained experts are the teachers; the manifest gives their clusters' training clips. The full budget
is ``--iterations`` x ``--num-envs`` x ``--steps-per-iteration`` tokens (env steps the student acts in and the
teacher labels); each fraction f is a complete DAgger run of round(f x iterations) iterations, everything else
(teachers, envs, steps, schedule shape, seed) equal. The teachers are scored on the same windows as reference rows.

Resumable: a (student, fraction) row already in ``<out>/report.json`` is skipped (the report is rewritten after
every row); a run interrupted mid-distillation resumes from its last checkpoint. Writes ``report.json``,
``report.md`` (the table, rows architecture x tokens, and what CPU scale cannot show), ``scaling.png`` (each metric
against tokens) and ``curves.png`` (DAgger curves) under ``--out``, beside the runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from evidence_common import (
    add_dagger_args,
    dagger_config,
    distill_student,
    eval_policy,
    plot_curves,
    save_figure,
    window_set,
)
from matplotlib import pyplot as plt
from matplotlib.ticker import NullFormatter

from humanoid_gpt.catalog.manifests import load_manifest
from humanoid_gpt.catalog.refs import load_clip_refs
from humanoid_gpt.deploy.policies import TorchStudentPolicy
from humanoid_gpt.experts.evaluation import expert_tracking_config, load_expert_policy
from humanoid_gpt.experts.registry import ExpertRegistry
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.metrics import TABLE_COLUMNS as COLUMNS
from humanoid_gpt.metrics import metrics_table
from humanoid_gpt.robot import load_g1
from humanoid_gpt.runs import latest_checkpoint
from humanoid_gpt.students import context_overrides
from humanoid_gpt.students.checkpoint import load_student
from humanoid_gpt.students.distill import DistillRun, teacher_task

MINUTES = ("minutes", "wall-clock (min)", 1)
PAPER_TOKENS = (2e6, 2e9)  # the paper's smallest (MLP) and largest (GPT-L) distillation budgets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--registry", type=Path, required=True, help="expert registry JSON: its retained experts teach")
    p.add_argument("--manifest", type=Path, required=True, help="cluster manifest JSON: the teachers' training clips")
    p.add_argument("--heldout", nargs="+", required=True, help="held-out clip files, folders or manifest entries")
    p.add_argument("--window-seconds", type=float, default=10.0)
    p.add_argument("--windows-per-clip", type=int, default=4)
    p.add_argument("--max-windows", type=int, default=None, help="evaluate at most this many, spread over the set")
    p.add_argument("--students", nargs="+", default=["mlp", "tcn", "gpt-s"])
    p.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0], help="of the full budget")
    p.add_argument("--context", type=int, default=16, help="H, tokens every student sees")
    add_dagger_args(p)
    p.add_argument("--threads", type=int, default=1, help="torch and MuJoCo threads (training and evaluation)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    if min(args.fractions) <= 0:
        p.error("--fractions must be positive")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    g1 = load_g1()
    registry = ExpertRegistry.load(args.registry)
    manifest = load_manifest(args.manifest)
    clusters, tracking = teacher_task(registry)
    windows = heldout_windows(args, g1)
    names = [w.name for w in windows]
    overlap = sorted({n.split("@")[0] for n in names} & training_stems(manifest, clusters))
    if overlap:
        print(f"WARNING: held-out clips {overlap} are also teacher training clips: not a held-out evaluation")
    print(f"held-out set: {len(windows)} windows: one window is {100 / len(windows):.1f} points of SR", flush=True)

    setup = {
        "registry": str(args.registry.resolve()),
        "teachers": {c: registry.experts[c].checkpoint for c in clusters},
        "manifest": {c: manifest.clusters[c] for c in clusters},
        "heldout_windows": names,
        "window_seconds": args.window_seconds,
        "context": args.context,
        **{k: getattr(args, k) for k in ("iterations", "num_envs", "steps_per_iteration", "beta_iterations")},
        **{k: getattr(args, k) for k in ("batch_windows", "updates_per_iteration", "seed")},
    }
    path = args.out / "report.json"
    report = load_report(path, setup)
    report.update(setup=setup, windows=len(windows), overlap=overlap, full_tokens=tokens_of(args, args.iterations))

    for cluster in clusters:
        if cluster in report["teachers"]:
            continue
        ckpt, start = registry.experts[cluster].checkpoint, time.time()
        metrics = eval_policy(
            g1,
            windows,
            lambda env, ckpt=ckpt: load_expert_policy(ckpt, env, g1),
            expert_tracking_config(ckpt),
            args.threads,
        )
        report["teachers"][cluster] = {"checkpoint": ckpt, "metrics": metrics, "eval_seconds": time.time() - start}
        print(f"teacher {cluster}: {json.dumps(metrics)}", flush=True)
        write_outputs(args.out, report)

    for name in args.students:
        for fraction in args.fractions:
            key = f"{fraction:g}"
            if key in report["students"].get(name, {}):
                print(f"{name} at {key} of the budget: in {path}, skipped", flush=True)
                continue
            row = distill_row(args, g1, manifest, name, fraction)
            start = time.time()
            ckpt = row["checkpoint"]
            row["metrics"] = eval_policy(
                g1, windows, lambda env, ckpt=ckpt: TorchStudentPolicy(ckpt, env), tracking, args.threads
            )
            row["eval_seconds"] = time.time() - start
            report["students"].setdefault(name, {})[key] = row
            print(f"{name} at {row['tokens']:,} tokens: {json.dumps(row['metrics'])}", flush=True)
            write_outputs(args.out, report)
    write_outputs(args.out, report)
    print(f"report: {args.out / 'report.md'}")


def heldout_windows(args: argparse.Namespace, g1) -> list:
    """The held-out clips cut into windows; past ``--max-windows``, that many spread evenly over the set."""
    windows = window_set(load_clip_refs(args.heldout, g1), args.windows_per_clip, args.window_seconds)
    if args.max_windows and len(windows) > args.max_windows:
        keep = np.linspace(0, len(windows) - 1, args.max_windows).round().astype(int)
        windows = [windows[i] for i in keep]
    if not windows:
        raise SystemExit("--heldout names no clips")
    return windows


def training_stems(manifest, clusters) -> set[str]:
    return {r.path.stem for c in clusters for r in manifest.clip_refs(c)}


def tokens_of(args: argparse.Namespace, iterations: int) -> int:
    return iterations * args.num_envs * args.steps_per_iteration


def load_report(path: Path, setup: dict) -> dict:
    """The report of an earlier run of this study (refused if its setup differs), or an empty one."""
    if not path.is_file():
        return {"teachers": {}, "students": {}}
    report = json.loads(path.read_text())
    changed = sorted(k for k in setup if report.get("setup", {}).get(k) != setup[k])
    if changed:
        raise SystemExit(
            f"{path} holds a study with other {', '.join(changed)}: its rows are not comparable; use another --out"
        )
    return report


def distill_row(args: argparse.Namespace, g1, manifest, name: str, fraction: float) -> dict:
    """Distil student ``name`` on ``fraction`` of the budget (resuming an interrupted run of it); its row."""
    iterations = max(1, round(fraction * args.iterations))
    log_root, run_name = args.out / "runs", f"f{fraction:g}"
    folder = log_root / name / run_name
    previous = latest_checkpoint(folder, "student") if folder.is_dir() else None
    run = DistillRun(
        args.registry,
        student=name,
        context=args.context,
        log_root=log_root,
        run_name=run_name,
        threads=args.threads,
        resume=folder if previous is not None else None,
        overrides=context_overrides(name, args.context),
        dagger=dagger_config(args, iterations),
    )
    print(f"{name}: {iterations} iterations ({fraction:g} of the budget, {tokens_of(args, iterations):,} tokens)")
    ckpt, curve, seconds = distill_student(run, g1, manifest)
    row = {
        "student": name,
        "fraction": fraction,
        "iterations": iterations,
        "tokens": tokens_of(args, iterations),
        "parameters": sum(p.numel() for p in load_student(ckpt)[0].parameters()),
        "seconds": seconds,
        "minutes": seconds / 60,
        "checkpoint": str(ckpt),
        "curve": curve,
    }
    if previous is not None:  # the wall-clock and the curve cover only this process's part
        row["resumed_from_iteration"] = int(previous.stem.removeprefix("student_"))
    return row


def write_outputs(out: Path, report: dict) -> None:
    write_text_atomic(out / "report.json", json.dumps(report, indent=1))
    write_text_atomic(out / "report.md", markdown(report))
    if any(report["students"].values()):
        plot_scaling(report, out / "scaling.png")
        curves = {f"{n} x{k}": r["curve"] for n, rows in report["students"].items() for k, r in rows.items()}
        plot_curves(curves, out / "curves.png")


def student_rows(report: dict) -> list[tuple[str, dict]]:
    """(student, row) in student order, then by tokens."""
    return [(n, r) for n, rows in report["students"].items() for r in sorted(rows.values(), key=lambda r: r["tokens"])]


def markdown(report: dict) -> str:
    s, n = report["setup"], len(report["setup"]["heldout_windows"])
    teachers = ", ".join(sorted(s["teachers"]))
    lines = [
        "# Scaling study: students distilled from the same teachers at several data sizes\n",
        f"Teachers: the retained experts of `{s['registry']}` (clusters {teachers}). Held-out set: {n} windows of "
        f"{s['window_seconds']:g} s, so one window is {100 / n:.1f} points of SR. Full budget: {s['iterations']} "
        f"DAgger iterations x {s['num_envs']} envs x {s['steps_per_iteration']} steps = {report['full_tokens']:,} "
        f"tokens; context H = {s['context']}, seed {s['seed']}.\n",
    ]
    if report.get("overlap"):
        lines.append(f"**Not held out**: {', '.join(report['overlap'])} are also teacher training clips.\n")
    rows = [([f"teacher {c}", "—"], t["metrics"]) for c, t in sorted(report["teachers"].items())]
    resumed = False
    for name, r in student_rows(report):
        resumed |= "resumed_from_iteration" in r
        mark = "*" if "resumed_from_iteration" in r else ""
        label = f"{name} ({r['parameters'] / 1e6:.2f}M)"
        rows.append(([label, f"{r['tokens']:,}{mark}"], {**r["metrics"], "minutes": r["minutes"]}))
    lines += metrics_table(("policy", "tokens"), rows, (*COLUMNS, MINUTES))
    if resumed:
        lines.append("\n\\* resumed from a checkpoint: its wall-clock and DAgger curve cover only the resumed part.")
    lines += ["\n## What CPU scale cannot show\n", cpu_scale_paragraph(report)]
    return "\n".join(lines) + "\n"


def cpu_scale_paragraph(report: dict) -> str:
    """What these figures cannot say, worded with the figures."""
    n = len(report["setup"]["heldout_windows"])
    step = 100 / n
    rows = student_rows(report)
    if not rows:
        return "No student has been distilled yet."
    top = max(r["tokens"] for _, r in rows)
    low, high = PAPER_TOKENS
    text = [
        f"The largest budget here is {top:,} tokens per student, "
        + (f"{low / top:,.0f}x below the paper's smallest run (MLP, 2M tokens) and " if top < low else "")
        + f"{high / top:,.0f}x below its largest (GPT-L, 2B): the regime where the paper's architectures separate "
        "(SR 76.9 -> 92.6 %, MPKPE 100 -> 41 mm) is not reached."
    ]
    full = [(name, r) for name, r in rows if r["tokens"] == top]
    srs = [r["metrics"].get("sr_percent", 0.0) for _, r in full]
    spread = max(srs) - min(srs)
    text.append(
        f"SR moves in steps of {step:.1f} points ({n} windows): at the largest budget the students' SR spans "
        f"{min(srs):.1f}-{max(srs):.1f} %, {spread / step:.0f} window(s) apart"
        + (", no more than one window: no SR ranking of the architectures follows." if spread <= step else ".")
    )
    teacher_sr = [t["metrics"].get("sr_percent", 0.0) for t in report["teachers"].values()]
    if teacher_sr:
        text.append(
            f"The teachers reach SR {min(teacher_sr):.1f}-{max(teacher_sr):.1f} % on the same windows: a student "
            "copies its teachers, so this measures how well each architecture imitates CPU-budget experts, not how "
            "it scales toward well-trained ones."
        )
    trends = []
    for name in report["students"]:
        mine = [r for n_, r in rows if n_ == name]
        if len(mine) > 1:
            mpkpe = [r["metrics"].get("mpkpe_mm", float("nan")) for r in mine]
            down = all(b < a for a, b in zip(mpkpe, mpkpe[1:], strict=False))
            trends.append(
                f"{name} {' -> '.join(f'{v:.1f}' for v in mpkpe)} mm ({'decreasing' if down else 'not monotone'})"
            )
    if trends:
        text.append("MPKPE with tokens: " + "; ".join(trends) + ".")
    text.append(
        f"One seed ({report['setup']['seed']}): no error bars; the seed-to-seed spread is not measured (rerun with "
        "another --seed into another --out). Wall-clock is CPU time on a shared 2-core machine: it ranks the "
        "architectures by their CPU cost per token, not by what the paper's GPU runs cost."
    )
    if not any(n.startswith("gpt-b") or n.startswith("gpt-l") for n in report["students"]):
        text.append("GPT-B and GPT-L were not run (add `--students gpt-b`).")
    return " ".join(text)


def plot_scaling(report: dict, path: Path) -> None:
    """Each metric against tokens (log x), one line per architecture, the teachers as dashed horizontal lines."""
    panels = (*COLUMNS, MINUTES)
    fig, axes = plt.subplots(3, 3, figsize=(14, 10))  # 8 panels and the legend
    axes = axes.ravel()
    greys = plt.cm.Greys(np.linspace(0.45, 0.85, max(len(report["teachers"]), 1)))
    for ax, (key, label, _) in zip(axes, panels, strict=False):
        for name, rows in report["students"].items():
            rows = sorted(rows.values(), key=lambda r: r["tokens"])
            values = [r["minutes"] if key == "minutes" else r["metrics"].get(key, np.nan) for r in rows]
            ax.plot([r["tokens"] for r in rows], values, marker="o", label=name)
        if key != "minutes":
            for color, (cluster, t) in zip(greys, sorted(report["teachers"].items()), strict=False):
                ax.axhline(t["metrics"].get(key, np.nan), ls="--", color=color, label=f"teacher {cluster}")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("tokens (env steps labelled by the teachers)")
        ax.set_title(label)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    axes[-1].legend(handles, labels, loc="center")
    n = len(report["setup"]["heldout_windows"])
    fig.suptitle(f"Students distilled from the same teachers, {n} held-out windows (one = {100 / n:.1f} SR points)")
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
