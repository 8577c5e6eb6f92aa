"""The main job's report: one Markdown page and the same page as HTML (with the video playing), from the stage
summaries: corpus card, clusters, expert and student learning curves, the metrics table in the paper's layout, the
export check, stage timings and where every artefact is."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.jobs.config import MainConfig
from humanoid_gpt.jobs.stages import Stage, StageResult, read_marker
from humanoid_gpt.metrics import metrics_table

SET_TITLES = {"held_out": "performers held out from every stage", "unseen": "sources no stage trained on"}


def read_scalars(run_dir: Path, tags: tuple[str, ...]) -> dict[str, tuple[list[int], list[float]]]:
    """TensorBoard scalars of a run folder (rsl_rl writes them), by tag; tags absent from the events are left out."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    have = set(acc.Tags().get("scalars", []))
    return {t: ([e.step for e in acc.Scalars(t)], [e.value for e in acc.Scalars(t)]) for t in tags if t in have}


def plot_curves(experts: dict[str, Path], students: dict[str, Path], path: Path) -> Path:
    """Expert PPO and student DAgger curves from the runs' TensorBoard events, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(16, 3.4))
    for task, run_dir in experts.items():
        s = read_scalars(run_dir, ("Train/mean_reward", "Train/mean_episode_length"))
        for i, tag in enumerate(("Train/mean_reward", "Train/mean_episode_length")):
            if tag in s:
                ax[i].plot(*s[tag], label=task)
    for name, run_dir in students.items():
        s = read_scalars(run_dir, ("distill/loss", "distill/episode_length_s"))
        for i, tag in ((2, "distill/loss"), (3, "distill/episode_length_s")):
            if tag in s:
                ax[i].plot(*s[tag], label=name)
    titles = (
        "expert PPO: mean episode reward",
        "expert PPO: episode length (steps)",
        "DAgger loss (to the teacher)",
        "episode length under the student (s)",
    )
    for a, title in zip(ax, titles, strict=True):
        a.set_title(title, fontsize=10)
        a.set_xlabel("iteration")
        a.grid(alpha=0.3)
        if a.lines:
            a.legend(fontsize=7)
    if ax[2].lines:
        ax[2].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _seconds(result: StageResult) -> float:
    marker = read_marker(result.folder) or {}
    return float(marker.get("seconds", result.seconds))


def _tensorrt_line(export: dict) -> str:
    """The TensorRT engine the config asked for: its file, or why this machine skipped it and how to build it."""
    if "tensorrt" in export:
        return f" TensorRT engine: `{export['tensorrt']}`."
    if "tensorrt_skipped" in export:
        return (
            f" TensorRT engine: skipped ({export['tensorrt_skipped']}); build it on the machine that runs it with "
            f"`hgpt export tensorrt export/{export['streaming']}`."
        )
    return ""


def _rel(path: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(path, start)).as_posix()


def markdown(cfg: MainConfig, done: dict[str, StageResult], out: Path) -> str:
    corpus, hme, experts, distill, export, sim = (
        done[k] for k in ("corpus", "hme", "experts", "distill", "export", "sim2sim")
    )
    e, d = cfg.experts, cfg.distill
    deployed = sim.summary["deployed"]
    student_tokens = distill.summary["students"][distill.summary["deployed"]]["tokens"]
    samples = [x["samples"] for x in experts.summary["experts"].values()]
    teacher = experts.summary.get("teacher")
    taught = (
        f"no experts: the teacher `{Path(teacher).name}` (another lab's tracker) labelled the states"
        if teacher
        else f"{len(experts.summary['clusters'])} cluster expert(s) of {e.max_iterations} PPO iterations x "
        f"{e.num_envs} envs ({max(samples):,} samples each)"
    )
    lines = [
        f"# Humanoid-GPT main job: `{cfg.name}`",
        "",
        cfg.description.strip(),
        "",
        f"Budgets: {taught}; the student `{d.student}` distilled on "
        f"{student_tokens:,} env steps by parallel DAgger. Written {time.strftime('%Y-%m-%d %H:%M')} in "
        f"{sum(_seconds(r) for r in done.values() if r.name != 'report') / 60:.1f} min of stage time.",
        "",
    ]
    video = sim.summary.get("video")
    if video:
        rel = _rel(sim.folder / video["video"], out)
        lines += [
            f"## The student on an unseen clip ({video['set'].replace('_', ' ')}: `{video['clip']}`)",
            "",
            f"[![{deployed} tracking {video['clip']}]({_rel(sim.folder / video['image'], out)})]({rel})",
            "",
            f"Video: [{rel}]({rel}): the simulated G1 driven by the exported student, its reference in translucent "
            f"blue (SR {video['metrics']['sr_percent']:.0f}%, MPKPE {video['metrics']['mpkpe_mm']:.0f} mm).",
            "",
        ]
    lines += ["## Sim2sim metrics (MuJoCo, no randomization)", ""]
    for set_name, rows in sim.summary["results"].items():
        n = sim.summary["windows"][set_name]
        lines += [
            f"### {set_name.replace('_', ' ')}: {SET_TITLES.get(set_name, '')} ({n} windows of up to "
            f"{cfg.evaluate.window_seconds:g} s; one window is {100 / n:.1f} points of SR)",
            "",
            *metrics_table(("policy",), [((policy,), m) for policy, m in rows.items()]),
            "",
        ]
        lines += [_verdict(rows, deployed, distill.summary["deployed"]), ""]
    lines += _corpus_section(corpus, out) + _hme_section(hme, out) + _experts_section(experts, cfg)
    lines += [
        "## Learning curves",
        "",
        "![learning curves](curves.png)",
        "",
        "## Export",
        "",
        f"`{export.summary['streaming']}` (streaming, one step per control tick) and `{export.summary['windowed']}`; "
        f"max |ONNX - PyTorch| over {cfg.export.parity_steps} streamed steps: {export.summary['parity_max_abs']:.1e} "
        f"(tolerance {cfg.export.parity_tolerance:g}).{_tensorrt_line(export.summary)}",
        "",
        "## Stages",
        "",
        "| stage | minutes | folder |",
        "|---|---|---|",
    ]
    for name, r in done.items():
        if name != "report":
            lines.append(f"| {name} | {_seconds(r) / 60:.1f} | `{_rel(r.folder, out)}` |")
    lines += [
        "",
        f"Config: `{_rel(cfg.output_dir() / 'config.json', out)}` (from `{cfg.source}`); log: "
        f"`{_rel(cfg.output_dir() / 'main.log', out)}`. Rerunning the same command skips finished stages; a stage "
        "whose config or inputs changed is rebuilt, with the reason in the log.",
        "",
    ]
    return "\n".join(lines)


def _verdict(rows: dict[str, dict], deployed: str, name: str) -> str:
    """One honest sentence: does the student beat the untrained student and the open-loop reference?"""
    ours = rows.get(deployed)
    base = {k: rows[k] for k in (f"{name} untrained", "open-loop reference") if k in rows}
    if ours is None or not base:
        return ""
    parts = []
    for k, m in base.items():
        better = [
            label
            for key, label, lower in (
                ("mean_episode_s", "tracks longer", False),
                ("mpkpe_mm", "lower MPKPE", True),
                ("sr_percent", "higher SR", False),
            )
            if (ours[key] < m[key] if lower else ours[key] > m[key])
        ]
        parts.append(f"against the {k}: " + (", ".join(better) if better else "**not better**"))
    return f"The student ({deployed}), " + "; ".join(parts) + "."


def _corpus_section(corpus: StageResult, out: Path) -> list[str]:
    s = corpus.summary
    card = corpus.folder / "corpus" / "DATASET_CARD.md"
    lines = [
        "## Corpus",
        "",
        f"{s['clips']} clips, {s['hours']:.2f} h at the policy rate after filtering and time-warping "
        f"({', '.join(f'{k} {v:.2f} h' for k, v in s['hours_by_source'].items())}); decisions: "
        f"{', '.join(f'{k} {v}' for k, v in s['status_counts'].items())}. Dataset card: [{_rel(card, out)}]"
        f"({_rel(card, out)}).",
        "",
        "| split | " + " | ".join(sorted({x for v in s["files_by_split"].values() for x in v})) + " |",
    ]
    sources = sorted({x for v in s["files_by_split"].values() for x in v})
    lines.append("|---" * (len(sources) + 1) + "|")
    for split, counts in sorted(s["files_by_split"].items()):
        lines.append(f"| {split} | " + " | ".join(str(counts.get(x, 0)) for x in sources) + " |")
    if s.get("skipped_sources"):
        lines += ["", f"Sources not present on this machine (optional, left out): {', '.join(s['skipped_sources'])}."]
    png = corpus.folder / "corpus" / "card.png"
    return [*lines, "", f"![corpus]({_rel(png, out)})", ""] if png.is_file() else [*lines, ""]


def _hme_section(hme: StageResult, out: Path) -> list[str]:
    s = hme.summary
    sizes = sorted(s["sizes"].values(), reverse=True)
    lines = [
        "## Clusters (HME)",
        "",
        f"{s['clusters']} clusters over {s['segments']} segments of the training clips (largest {sizes[:5]}, "
        f"smallest {sizes[-1]}). HME report: [{_rel(hme.folder / 'report.md', out)}]"
        f"({_rel(hme.folder / 'report.md', out)}).",
        "",
    ]
    fig = hme.folder / "figures" / "pca_cluster.png"
    return [*lines, f"![clusters]({_rel(fig, out)})", ""] if fig.is_file() else lines


def _experts_section(experts: StageResult, cfg: MainConfig) -> list[str]:
    if experts.summary.get("teacher"):
        return []  # the teacher's row in the sim2sim tables says how well it tracks
    rule = cfg.experts.retention
    lines = [
        "## Experts",
        "",
        f"Retention rule: SR >= {rule.min_sr_percent:g}%, MPKPE <= {rule.max_mpkpe_mm:g} mm, MPJPE <= "
        f"{rule.max_mpjpe:g} rad, stable >= {rule.min_mean_episode_s:g} s, on up to {cfg.experts.eval_windows} windows "
        "of the cluster's own clips.",
        "",
        "| expert | windows | SR (%) | MPKPE (mm) | stable (s) | kept |",
        "|---|---|---|---|---|---|",
    ]
    for x in experts.summary["experts"].values():
        m = x["metrics"]
        kept = "yes" if x["retained"] else "no: " + "; ".join(x["reasons"])
        lines.append(
            f"| {x['task']} | {x['windows']} | {m['sr_percent']:.1f} | {m['mpkpe_mm']:.1f} | "
            f"{m['mean_episode_s']:.1f} | {kept} |"
        )
    return [*lines, ""]


HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }} th, td {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; }} code {{ background: #f5f5f5; }}
</style></head><body>
{video}
{body}
</body></html>
"""


def write_report(cfg: MainConfig, done: dict[str, StageResult], out: Path) -> dict:
    import markdown as md_lib

    experts_runs = {
        x["task"]: (done["experts"].folder / x["checkpoint"]).parent
        for x in done["experts"].summary["experts"].values()
    }
    students = {n: done["distill"].folder / x["run"] for n, x in done["distill"].summary["students"].items()}
    plot_curves(experts_runs, students, out / "curves.png")
    text = markdown(cfg, done, out)
    write_text_atomic(out / "report.md", text)
    video = done["sim2sim"].summary.get("video")
    player = ""
    if video:
        src = _rel(done["sim2sim"].folder / video["video"], out)
        player = f'<video controls loop muted width="480" src="{src}"></video>'
    html = HTML.format(
        title=f"Humanoid-GPT: {cfg.name}", video=player, body=md_lib.markdown(text, extensions=["tables"])
    )
    write_text_atomic(out / "report.html", html)
    summary = {k: r.summary for k, r in done.items()}
    write_text_atomic(
        out / "report.json", json.dumps({"config": cfg.to_dict(), "stages": summary}, indent=1, default=str)
    )
    return {"markdown": "report.md", "html": "report.html"}


def report_stage(cfg: MainConfig, done: dict[str, StageResult], log: Callable[[str], None]) -> Stage:
    def build(work: Path) -> dict:
        # Links are relative, and the work folder is a sibling of the published one: they hold after the rename.
        result = write_report(cfg, done, work)
        log(f"[report] {work.parent / 'report' / 'report.md'} and report.html")
        return result

    key = {"stages": {k: r.key_hash for k, r in done.items()}, "config": cfg.to_dict()}
    return Stage("report", key, build)
