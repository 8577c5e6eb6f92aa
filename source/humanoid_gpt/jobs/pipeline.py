"""The main job: human mocap to a validated GPT tracker, as seven resumable stages (docs/architecture.md).

1. ``corpus``: read the sources present, retarget human mocap, filter, time-warp, split by performer
   (:mod:`humanoid_gpt.governance.corpus`), and write the clips as files for the stages that read files (HME,
   sim2sim);
2. ``hme``: periodic autoencoders, embeddings, K-Means clusters of the corpus's training clips (of their files);
3. ``experts``: one PPO expert per chosen cluster, evaluated and kept under the preset's retention rule, trained on
   the HME manifest rewritten into clips of the corpus (``clusters_corpus.json``): the motion libraries come from
   the corpus's cached kinematics, with no forward kinematics;
4. ``distill``: parallel DAgger from the retained experts into the student (and baselines at equal data), on the
   same manifest;
5. ``export``: the student's streaming ONNX, checked step by step against PyTorch;
6. ``sim2sim``: the exported student, its teachers, the open-loop reference and the untrained student on clips of
   held-out performers and of unseen sources, with the paper's metrics, and a video;
7. ``report``: one Markdown and HTML page (:mod:`humanoid_gpt.jobs.report`).

Each stage is a folder keyed by the hash of its config and of the stages it reads (:mod:`.stages`): a rerun skips
what is done, rebuilds (and says why) what changed, and an interrupted stage resumes inside its work folder: corpus
units, PAE epochs, PPO and DAgger checkpoints and per-policy evaluations all survive a ``kill -9``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from humanoid_gpt import __version__, settings
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.jobs.config import MainConfig
from humanoid_gpt.jobs.stages import Stage, StageResult, run_stage
from humanoid_gpt.robot.g1 import G1, load_g1
from humanoid_gpt.runs import latest_checkpoint, robot_hash

if TYPE_CHECKING:
    from humanoid_gpt.deploy.policies import PolicySetup

RUN_ONLY = ("threads", "executor", "ray_address", "slurm", "compile")
"""Settings that change where and how fast a stage runs, not what it makes: left out of the stage keys."""
STAGES = ("corpus", "hme", "experts", "distill", "export", "sim2sim", "report")


class Log:
    """Lines to the console and to ``<out>/main.log``, timestamped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def _key(section) -> dict:
    data = dataclasses.asdict(section) if dataclasses.is_dataclass(section) else dict(section)
    return {k: v for k, v in data.items() if k not in RUN_ONLY}


# 1. corpus --------------------------------------------------------------------------------------------------------


def corpus_sources(
    cfg: MainConfig, data_root: Path, log: Callable[[str], None]
) -> tuple[list[dict], list[str], list[Path]]:
    """The corpus sources to read, every source whose files exist, with those files; an ``optional: true`` source
    without files is left out (returned by name), a required one is an error naming the preset, the source and the
    fix."""
    from humanoid_gpt.governance.corpus_config import load_corpus_config
    from humanoid_gpt.governance.corpus_units import source_files

    kept, skipped, files = [], [], []
    for raw in cfg.corpus["sources"]:
        raw = dict(raw)
        optional = bool(raw.pop("optional", False))
        parsed = load_corpus_config({"sources": [raw], "output": "unused"}, data_root=data_root).sources[0]
        try:
            files += source_files(parsed, data_root)
        except ConfigError as e:
            if not optional:
                raise ConfigError(
                    f"{cfg.source or cfg.name}: corpus source {raw.get('name')!r} names data that is missing: {e}. "
                    "Fix: set HGPT_DATA_ROOT (or fetch the data with `hgpt data fetch`), or mark the source "
                    "`optional: true`"
                ) from None
            log(f"[corpus] source {raw.get('name')!r} is not present under {data_root}: left out (optional)")
            skipped.append(str(raw.get("name")))
            continue
        kept.append(raw)
    return kept, skipped, files


def files_fingerprint(files: list[Path]) -> str:
    """A digest of every source file's path, size and modification time: a changed file reruns the corpus stage
    (whose units then recompute only the files whose contents changed)."""
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def corpus_stage(cfg: MainConfig, g1: G1, log: Callable[[str], None]) -> Stage:
    from humanoid_gpt.governance.corpus import build_corpus
    from humanoid_gpt.governance.corpus_config import load_corpus_config
    from humanoid_gpt.governance.store import export_clips

    data_root = settings.data_root()
    sources, skipped, files = corpus_sources(cfg, data_root, log)
    raw = {**{k: v for k, v in cfg.corpus.items() if k != "output"}, "sources": sources}
    key = {
        "corpus": {k: v for k, v in raw.items() if k not in ("executor", "num_cpus", "ray_address")},
        "files": files_fingerprint(files),
        "data_root": str(data_root),
        "robot": robot_hash(g1.xml_path),
    }

    def build(work: Path) -> dict:
        corpus_cfg = load_corpus_config({**raw, "output": str(work / "corpus")}, data_root=data_root)
        summary = build_corpus(corpus_cfg)
        log(f"[corpus] {summary.describe()}")
        clips = export_clips(work / "corpus", work / "clips")
        splits: dict[str, dict] = {}
        for path in clips:
            split, source = path.parent.parent.name, path.parent.name
            splits.setdefault(split, {}).setdefault(source, 0)
            splits[split][source] += 1
        return {
            "clips": summary.clips,
            "hours": round(summary.hours, 3),
            "hours_by_source": summary.hours_by_source,
            "status_counts": summary.status_counts,
            "files_by_split": splits,
            "skipped_sources": skipped,
            "errors": summary.errors[:20],
        }

    return Stage("corpus", key, build)


def split_clips(
    corpus_dir: Path, split: str, sources: list[str] | None = None, exclude: list[str] = (), originals: bool = False
) -> list[Path]:
    """The exported clip files of ``split`` (of ``sources`` only, or all but ``exclude``; without time-warped copies
    when ``originals``), sorted."""
    from humanoid_gpt.governance.warp import is_warped

    folder = corpus_dir / "clips" / split
    out = []
    for source in sorted(p for p in folder.glob("*") if p.is_dir()):
        if (sources is None or source.name in sources) and source.name not in exclude:
            out += sorted(f for f in source.glob("*.npz") if not (originals and is_warped(f.stem)))
    return out


# 2. HME -----------------------------------------------------------------------------------------------------------


def hme_config(cfg: MainConfig, corpus_dir: Path, work: Path):
    from humanoid_gpt.hme.config import HMEConfig

    train = corpus_dir / "clips" / "train"
    sources = sorted(str(p) for p in train.glob("*") if p.is_dir() and p.name not in cfg.evaluate.unseen_sources)
    if not sources:
        raise ConfigError(
            f"the corpus has no training clips outside evaluate.unseen_sources {cfg.evaluate.unseen_sources} "
            f"({train}); add sources or move clips into the train split"
        )
    data = {**cfg.hme, "sources": sources, "output": str(work), "seed": cfg.hme.get("seed", cfg.seed)}
    return HMEConfig.from_dict(data)


def hme_stage(cfg: MainConfig, corpus: StageResult, log: Callable[[str], None]) -> Stage:
    from humanoid_gpt.hme import pipeline as hme

    def build(work: Path) -> dict:
        hcfg = hme_config(cfg, corpus.folder, work)
        paths = hme.build(hcfg)
        manifest = json.loads(Path(paths["manifest"]).read_text())
        sizes = {c: len(v) for c, v in manifest["clusters"].items()}
        log(f"[hme] {len(sizes)} clusters over {sum(sizes.values())} segments -> {paths['manifest']}")
        return {"clusters": len(sizes), "segments": sum(sizes.values()), "sizes": sizes}

    key = {
        "hme": {k: v for k, v in cfg.hme.items() if k != "pae"} | {"pae": _key(cfg.hme.get("pae", {}))},
        "unseen": cfg.evaluate.unseen_sources,
        "seed": cfg.seed,
        "corpus": corpus.key_hash,
    }
    return Stage("hme", key, build)


MANIFEST = "clusters.json"
CORPUS_MANIFEST = "clusters_corpus.json"
"""The HME manifest with its entries as clips of the corpus (the experts stage writes it): what experts and
distillation train on."""


# 3. experts -------------------------------------------------------------------------------------------------------


def chosen_clusters(cfg: MainConfig, manifest) -> list[str]:
    """The preset's clusters: named ones, or the ``n`` with the most segments (ties: lowest id)."""
    wanted = cfg.experts.clusters
    if wanted == "all":
        return sorted(manifest.clusters)
    if isinstance(wanted, list):
        unknown = sorted(set(wanted) - set(manifest.clusters))
        if unknown:
            raise ConfigError(f"experts.clusters {unknown} are not in the HME manifest ({sorted(manifest.clusters)})")
        return list(wanted)
    ranked = sorted(manifest.clusters, key=lambda c: (-len(manifest.clusters[c]), c))
    return sorted(ranked[:wanted])


def spread(items: list, count: int) -> list:
    """``count`` items spread evenly through ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def experts_stage(cfg: MainConfig, corpus: StageResult, hme: StageResult, g1: G1, log: Callable[[str], None]) -> Stage:
    def build(work: Path) -> dict:
        from humanoid_gpt.experts.checkpoint import load_checkpoint
        from humanoid_gpt.experts.evaluation import evaluate_expert
        from humanoid_gpt.experts.fanout import train_all
        from humanoid_gpt.experts.registry import ExpertRegistry
        from humanoid_gpt.experts.train import ExpertRun
        from humanoid_gpt.hme.clusters import corpus_manifest, load_clip_refs, load_manifest, task_id

        e = cfg.experts
        # The same path in every attempt: a resumed run's --manifest must not change.
        manifest_path = corpus_manifest(
            load_manifest(hme.folder / MANIFEST), corpus.folder / "corpus", corpus.folder / "clips"
        ).save(work / CORPUS_MANIFEST)
        manifest = load_manifest(manifest_path)
        teacher = cfg.distill.teacher_path()
        if teacher is not None:
            log(f"[experts] none trained: distill.teacher {teacher} labels the states of every cluster")
            return {"clusters": [], "experts": {}, "teacher": str(teacher)}
        log(f"[experts] training on clips of the corpus: {manifest_path}")
        clusters = chosen_clusters(cfg, manifest)
        runs = []
        for c in clusters:
            folder = work / "runs" / task_id(c) / c
            done = latest_checkpoint(folder, "model")
            runs.append(
                ExpertRun(
                    task=task_id(c),
                    manifest=manifest_path,
                    backend=cfg.backend,
                    num_envs=e.num_envs,
                    max_iterations=e.max_iterations,
                    save_interval=e.save_interval,
                    seed=cfg.seed,
                    log_root=work / "runs",
                    run_name=c,
                    resume=folder if done is not None else None,
                    relative_actions=e.relative_actions,
                    randomization=e.randomization,
                    adaptive_sampling=e.adaptive_sampling,
                    threads=e.threads,
                    compile=e.compile,
                    device=cfg.device,
                )
            )
            log(
                f"[experts] {task_id(c)}: {len(manifest.clusters[c])} segments, {e.max_iterations} PPO iterations x "
                f"{e.num_envs} envs" + (f" (resuming from {done.name})" if done else "")
            )
        train_all(runs, e.executor, work / "slurm", e.slurm or None, e.ray_address)

        registry = ExpertRegistry(rule=e.retention)
        summary = {}
        for c, run in zip(clusters, runs, strict=True):
            ckpt = latest_checkpoint(run.run_dir(), "model")
            refs = spread(manifest.clip_refs(c), e.eval_windows)
            clips = [w for clip in load_clip_refs(refs, g1) for w in _windows(clip, e.eval_window_seconds, 1)]
            cached = work / "eval" / f"{c}.json"
            evaluate = lambda ckpt=ckpt, clips=clips: evaluate_expert(g1, ckpt, clips, 16)  # noqa: E731
            result = _cached_eval(cached, ckpt, evaluate)
            payload = load_checkpoint(ckpt)
            meta, ppo = payload["infos"]["hgpt"], payload["infos"]["hgpt"]["train_cfg"]
            record = registry.add(c, meta["task"], ckpt.relative_to(work), meta["config_hash"], result["aggregate"])
            agg = result["aggregate"]
            verdict = "retained" if record.retained else "dropped: " + "; ".join(record.reasons)
            log(
                f"[experts] {meta['task']}: SR {agg['sr_percent']:.1f}% over {len(clips)} windows, MPKPE "
                f"{agg['mpkpe_mm']:.0f} mm, stable {agg['mean_episode_s']:.1f} s -> {verdict}"
            )
            summary[c] = {
                "task": meta["task"],
                "checkpoint": str(ckpt.relative_to(work)),
                "windows": len(clips),
                "samples": e.max_iterations * e.num_envs * ppo["num_steps_per_env"],
                "retained": record.retained,
                "reasons": record.reasons,
                "metrics": agg,
            }
        registry.save(work / "registry.json")
        if not registry.retained():
            raise ConfigError(
                f"no expert meets the retention rule {dataclasses.asdict(e.retention)} ({work / 'registry.json'}): "
                "nothing to distill. Fix: train longer (experts.max_iterations) or relax experts.retention"
            )
        return {"clusters": clusters, "experts": summary}

    key = {
        # bumped when the stage makes another artefact from the same inputs (2: trained on corpus clips; 3: retention
        # judged on falls as the metrics define them, sim2sim.evaluate's schema 2)
        "version": 3,
        "experts": _key(cfg.experts),
        "backend": cfg.backend,
        "seed": cfg.seed,
        "hme": hme.key_hash,
        "teacher": cfg.distill.teacher,
    }
    return Stage("experts", key, build)


def _windows(clip, seconds: float, count: int) -> list:
    from humanoid_gpt.motion.clip import clip_windows

    return [w for w in clip_windows(clip, seconds, count) if w.duration >= 1.0]


def _cached_eval(path: Path, checkpoint: Path | None, run: Callable[[], dict]) -> dict:
    """An evaluation's result, computed once per work folder (and per checkpoint): a resumed stage skips it."""
    tag = str(checkpoint) if checkpoint is not None else ""
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("checkpoint") == tag:
            return saved["result"]
    result = run()
    result.pop("recording", None)
    write_text_atomic(path, json.dumps({"checkpoint": tag, "result": result}, indent=1, default=float))
    return result


# 4. distillation --------------------------------------------------------------------------------------------------


def distill_stage(cfg: MainConfig, experts: StageResult, g1: G1, log: Callable[[str], None]) -> Stage:
    def build(work: Path) -> dict:
        import torch

        from humanoid_gpt.deploy.policies import policy_setup
        from humanoid_gpt.experts.registry import ExpertRegistry
        from humanoid_gpt.jobs.distill import run_distill
        from humanoid_gpt.students import build_student, context_overrides, preset
        from humanoid_gpt.students.checkpoint import save_student, student_meta
        from humanoid_gpt.students.dagger import DaggerConfig
        from humanoid_gpt.students.distill import DistillRun, foreign_teacher_task, teacher_task

        d = cfg.distill
        teacher = d.teacher_path()
        registry_path = None if teacher else experts.folder / "registry.json"
        if teacher is None:
            actuated, tracking = g1, teacher_task(ExpertRegistry.load(registry_path))[1]
        else:  # the untrained student acts as the trained one: under the teacher's actuation
            foreign = policy_setup(str(teacher), g1, d.teacher_layout)
            actuated, tracking = foreign.g1, foreign_teacher_task(foreign)
        out = {}
        for name in [d.student, *d.baselines]:
            run = DistillRun(
                registry=registry_path,
                teacher=teacher,
                layout=d.teacher_layout,
                manifest=experts.folder / CORPUS_MANIFEST,
                backend=cfg.backend,
                student=name,
                context=d.context,
                log_root=work / "runs",
                run_name=name,
                threads=d.threads,
                device=cfg.device,
                distributed=d.nproc > 1 and cfg.device.startswith("cuda"),
                overrides=context_overrides(name, d.context),
                dagger=DaggerConfig(**{"seed": cfg.seed, **d.dagger}),
            )
            folder = run.run_dir()
            done = latest_checkpoint(folder, "student")
            if done is not None:
                run = dataclasses.replace(run, resume=folder)
            log(
                f"[distill] {name}: {run.dagger.max_iterations} DAgger iterations x {run.dagger.num_envs} envs x "
                f"{run.dagger.steps_per_iteration} steps"
                + (f" in {d.nproc} processes" if d.nproc > 1 else "")
                + (f" (resuming from {done.name})" if done else "")
            )
            if d.nproc > 1:
                _distill_under_torchrun(run, d.nproc)
            else:
                run_distill(run, g1)
            ckpt = latest_checkpoint(folder, "student")
            student_cfg = preset(name, **({"context": d.context} if d.context else {}), **run.overrides)
            torch.manual_seed(run.dagger.seed)  # the same initialisation recipe as the run: the "before" row
            untrained = save_student(
                work / "untrained" / f"{name}.pt",
                build_student(student_cfg),
                student_meta(student_cfg, actuated, tracking.to_dict()),
            )
            out[name] = {
                "checkpoint": str(ckpt.relative_to(work)),
                "run": str(folder.relative_to(work)),
                "untrained": str(untrained.relative_to(work)),
                "tokens": run.dagger.max_iterations * run.dagger.num_envs * run.dagger.steps_per_iteration,
            }
        return {"students": out, "deployed": d.student}

    key = {"distill": _key(cfg.distill), "backend": cfg.backend, "seed": cfg.seed, "experts": experts.key_hash}
    teacher = cfg.distill.teacher_path()
    if teacher is not None:  # another file at the same path is another teacher
        key["teacher"] = files_fingerprint([teacher])
    return Stage("distill", key, build)


def _distill_under_torchrun(run, nproc: int) -> None:
    """``hgpt distill`` in ``nproc`` processes (torch.distributed.run, one host): each simulates its own envs,
    DistributedDataParallel averages the gradients, rank 0 writes the checkpoints and curves."""
    import subprocess
    import sys

    from humanoid_gpt.flags import to_flags

    if run.overrides:
        raise ConfigError(
            f"distill.nproc > 1 launches `hgpt distill`, whose flags cannot carry the student overrides "
            f"{run.overrides}; use distill.context >= 31 for a TCN, or nproc 1"
        )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    cmd += ["-m", "humanoid_gpt.cli", "distill", *to_flags(run)]
    subprocess.run(cmd, check=True)


# 5. export --------------------------------------------------------------------------------------------------------


def parity(checkpoint: Path, onnx_path: Path, g1: G1, steps: int, seed: int) -> float:
    """Largest |action| difference between the streaming ONNX graph and the PyTorch student over ``steps`` steps
    of random observations in 2 streams (the second restarted halfway, so resets are checked too)."""
    import numpy as np
    import torch

    from humanoid_gpt.deploy.runtime import OnnxStream
    from humanoid_gpt.students.checkpoint import load_student

    student, _ = load_student(checkpoint, g1)
    stream = OnnxStream(onnx_path, batch=2)
    rng = np.random.default_rng(seed)
    cache, count = student.initial_state(2)
    worst = 0.0
    with torch.no_grad():
        for t in range(steps):
            if t == steps // 2:
                stream.reset(np.array([False, True]))
                fresh, _ = student.initial_state(1)
                cache[1:], count[1:] = fresh, 0
            obs = rng.standard_normal((2, student.cfg.obs_dim)).astype(np.float32)
            want, cache, count = student.step(torch.from_numpy(obs), cache, count)
            worst = max(worst, float(np.abs(stream.step(obs) - want.numpy()).max()))
    return worst


def export_stage(cfg: MainConfig, distill: StageResult, g1: G1, log: Callable[[str], None]) -> Stage:
    def build(work: Path) -> dict:
        from humanoid_gpt.deploy.onnx import export_onnx

        x = cfg.export
        ckpt = distill.folder / distill.summary["students"][distill.summary["deployed"]]["checkpoint"]
        paths = export_onnx(ckpt, work, g1)
        err = parity(ckpt, paths["streaming"], g1, x.parity_steps, cfg.seed)
        log(f"[export] {paths['streaming'].name}: max |ONNX - PyTorch| = {err:.2e} over {x.parity_steps} steps")
        if not err <= x.parity_tolerance:
            raise ConfigError(
                f"{paths['streaming']}: the streaming ONNX differs from PyTorch by {err:.2e} > "
                f"export.parity_tolerance {x.parity_tolerance}; the export is wrong (report it with the checkpoint)"
            )
        out = {"streaming": paths["streaming"].name, "windowed": paths["windowed"].name, "parity_max_abs": err}
        if x.quantize:
            from humanoid_gpt.deploy.quantize import quantize_onnx

            out["quantized"] = {s: quantize_onnx(paths["streaming"], s).name for s in x.quantize}
        if unbuildable:
            log(
                f"[export] TensorRT engine skipped: {unbuildable}. Build it on the machine that runs it: "
                f"hgpt export tensorrt {work.with_name('export') / paths['streaming'].name}"
            )
            out["tensorrt_skipped"] = unbuildable
        elif x.tensorrt:
            from humanoid_gpt.deploy.tensorrt import build_engine

            out["tensorrt"] = Path(build_engine(paths["streaming"], work / "student.engine")).name
        return out

    key = {"export": _key(cfg.export), "distill": distill.key_hash}
    unbuildable = tensorrt_skip_reason(cfg)
    if unbuildable:  # a rerun where TensorRT works rebuilds the stage, engine included
        key["tensorrt_skipped"] = True
    return Stage("export", key, build)


def tensorrt_skip_reason(cfg: MainConfig) -> str | None:
    """Why the export stage will not build the TensorRT engine the config asks for on this machine; None when it
    builds one or none is asked for."""
    if not cfg.export.tensorrt:
        return None
    from humanoid_gpt.deploy.tensorrt import tensorrt_unavailable

    return tensorrt_unavailable()


# 6. sim2sim -------------------------------------------------------------------------------------------------------


def eval_sets(cfg: MainConfig, corpus_dir: Path, g1: G1) -> dict[str, list]:
    """``held_out``: 10-s windows of the test split (performers no stage trained on); ``unseen``: windows of the
    unseen sources' clips (any split). Motion as captured (no time-warped copies); at most ``evaluate.max_windows``
    each, spread over the clips."""
    from humanoid_gpt.governance.corpus_config import SPLITS
    from humanoid_gpt.motion.io import load_clip

    v = cfg.evaluate
    files = {
        "held_out": split_clips(corpus_dir, "test", exclude=v.unseen_sources, originals=True),
        "unseen": [f for s in SPLITS for f in split_clips(corpus_dir, s, v.unseen_sources, originals=True)]
        if v.unseen_sources
        else [],
    }
    sets = {}
    for name, paths in files.items():
        clips = [load_clip(p, g1=g1) for p in paths]
        per_clip = max(1, -(-v.max_windows // max(len(clips), 1)))
        windows = spread([w for c in clips for w in _windows(c, v.window_seconds, per_clip)], v.max_windows)
        if windows:
            sets[name] = windows
    if not sets:
        raise ConfigError(
            f"no evaluation clips: the corpus's test split and unseen sources {v.unseen_sources} hold no clip of at "
            "least 1 s. Fix: give the corpus more performers (splits) or name an unseen source"
        )
    return sets


def peer_policies(peers: list[str], g1: G1, log: Callable[[str], None]) -> list[tuple[str, Path, PolicySetup]]:
    """The released trackers of ``peers`` that are present (relative to the data root or absolute), each with how
    the harness runs it; absent ones are logged and skipped."""
    from humanoid_gpt.deploy.policies import policy_setup

    found = []
    for entry in peers:
        path = Path(entry) if Path(entry).is_absolute() else settings.data_root() / entry
        if not path.is_file():
            log(f"[sim2sim] peer {entry}: not at {path}, skipped")
            continue
        setup = policy_setup(str(path), g1)
        found.append((f"peer {path.name} ({setup.layout})", path, setup))
    return found


def sim2sim_stage(
    cfg: MainConfig,
    corpus: StageResult,
    experts: StageResult,
    distill: StageResult,
    export: StageResult,
    g1: G1,
    log: Callable[[str], None],
) -> Stage:
    def build(work: Path) -> dict:
        from humanoid_gpt.backends import load_backend
        from humanoid_gpt.deploy.policies import OnnxStudentPolicy, ReferencePolicy, TorchStudentPolicy, policy_setup
        from humanoid_gpt.experts.evaluation import expert_tracking_config, load_expert_policy
        from humanoid_gpt.experts.registry import ExpertRegistry
        from humanoid_gpt.mdp.config import TrackingConfig

        v = cfg.evaluate
        teacher = cfg.distill.teacher_path()
        if teacher is None:
            teachers = ExpertRegistry.load(experts.folder / "registry.json").retained()
            actuated, tracking = g1, expert_tracking_config(next(iter(teachers.values())).checkpoint)
        else:  # the students act under the foreign teacher's actuation: so are they scored
            teachers, foreign = {}, policy_setup(str(teacher), g1, cfg.distill.teacher_layout)
            actuated, tracking = foreign.g1, TrackingConfig(**foreign.task_settings)
        backend = load_backend("mujoco", g1=actuated, threads=v.threads)
        deployed = distill.summary["deployed"]
        onnx = export.folder / export.summary["streaming"]
        policies: dict[str, tuple[Path | None, Callable]] = {
            f"{deployed} (ONNX)": (onnx, lambda env: OnnxStudentPolicy(onnx, env, threads=1)),
        }
        for name, s in distill.summary["students"].items():
            if name != deployed:
                path = distill.folder / s["checkpoint"]
                policies[name] = (path, lambda env, p=path: TorchStudentPolicy(p, env))
        for _, record in sorted(teachers.items()):
            path = Path(record.checkpoint)
            policies[f"teacher {record.task}"] = (path, lambda env, p=path: load_expert_policy(p, env, g1))
        if teacher is not None:
            policies[f"teacher {teacher.name} ({foreign.layout})"] = (teacher, foreign.make)
        untrained = distill.folder / distill.summary["students"][deployed]["untrained"]
        policies[f"{deployed} untrained"] = (untrained, lambda env: TorchStudentPolicy(untrained, env))
        policies["open-loop reference"] = (None, lambda env: ReferencePolicy(env))
        runs = {name: (backend, tracking) for name in policies}  # how each policy is simulated
        for name, path, setup in peer_policies(v.peers, g1, log):
            if teacher is not None and path.resolve() == teacher.resolve():
                continue  # already scored as the teacher
            policies[name] = (path, setup.make)
            peer_backend = load_backend("mujoco", g1=setup.g1, threads=v.threads)
            runs[name] = (peer_backend, TrackingConfig(**setup.task_settings))

        sets = eval_sets(cfg, corpus.folder, g1)
        results: dict[str, dict] = {}
        for set_name, windows in sets.items():
            log(f"[sim2sim] {set_name}: {len(windows)} windows of up to {v.window_seconds:g} s")
            for i, (policy, (path, make)) in enumerate(policies.items()):
                cached = work / "eval" / f"{set_name}.{i}.json"
                sim, task = runs[policy]
                result = _cached_eval(
                    cached, path, lambda w=windows, m=make, b=sim, t=task: b.evaluate(w, m, t, v.num_envs, cfg.seed)
                )
                agg = result["aggregate"]
                results.setdefault(set_name, {})[policy] = agg
                log(
                    f"[sim2sim] {set_name} {policy}: SR {agg['sr_percent']:.1f}%, MPKPE {agg['mpkpe_mm']:.0f} mm, "
                    f"stable {agg['mean_episode_s']:.1f} s"
                )
        video = None
        if v.video_seconds > 0:
            make = policies[f"{deployed} (ONNX)"][1]
            video = _student_video(cfg, sets, make, backend, tracking, work, actuated, deployed)
        windows = {k: [w.name for w in ws] for k, ws in sets.items()}
        write_text_atomic(work / "results.json", json.dumps({"results": results, "windows": windows}, indent=1))
        return {
            "results": results,
            "windows": {k: len(w) for k, w in windows.items()},
            "video": video,
            "deployed": f"{deployed} (ONNX)",
        }

    key = {
        # bumped when the stage makes another artefact from the same inputs (2: no time-warped copies; 3: falls judged
        # as the metrics define them)
        "version": 3,
        "evaluate": _key(cfg.evaluate),
        "seed": cfg.seed,
        "corpus": corpus.key_hash,
        "experts": experts.key_hash,
        "export": export.key_hash,
        "teacher": cfg.distill.teacher_layout,  # the file itself is in the distill key, hence the export's
    }
    return Stage("sim2sim", key, build)


def _student_video(cfg, sets, make, backend, tracking, work: Path, g1: G1, deployed: str) -> dict | None:
    from humanoid_gpt.render import tracking_video, write_filmstrip

    name = "unseen" if "unseen" in sets else "held_out"
    clip = sets[name][0].slice(0, int(cfg.evaluate.video_seconds * sets[name][0].fps) + 1)
    result = backend.evaluate([clip], make, tracking, 1, cfg.seed, progress=False, record=True)
    frames = tracking_video(g1, result, work / "student.mp4", deployed)
    if frames is None:
        return None
    write_filmstrip(frames, work / "student.png")
    return {
        "video": "student.mp4",
        "image": "student.png",
        "clip": clip.name,
        "set": name,
        "metrics": result["aggregate"],
    }


# The job ----------------------------------------------------------------------------------------------------------


def run_main(cfg: MainConfig, g1: G1 | None = None, until: str | None = None) -> Path:
    """Run (or resume) the main job of ``cfg``; returns its output folder. ``until``: stop after that stage."""
    from humanoid_gpt.jobs.report import report_stage

    if until is not None and until not in STAGES:
        raise ConfigError(f"--until {until!r}: one of {', '.join(STAGES)}")
    out = cfg.output_dir()
    log = Log(out / "main.log")
    g1 = g1 or load_g1()
    _check_teacher(cfg, g1)
    started = time.time()
    log(f"main job {cfg.name!r} ({cfg.source or 'in-memory config'}) -> {out}; humanoid_gpt {__version__}")
    unbuildable = tensorrt_skip_reason(cfg)
    if unbuildable:  # said now, not after the training: the user may rather run where the engine can be built
        log(f"export.tensorrt: the export stage will skip the TensorRT engine on this machine: {unbuildable}")
    write_text_atomic(out / "config.json", json.dumps(cfg.to_dict(), indent=1))
    done: dict[str, StageResult] = {}

    def stage(name: str, make: Callable[[], Stage]) -> bool:
        result = run_stage(out, make(), log)
        done[name] = result
        state = "skipped (done, inputs unchanged)" if result.skipped else f"finished in {result.seconds / 60:.1f} min"
        log(f"[{name}] {state} -> {result.folder}")
        return name == until

    steps = (
        ("corpus", lambda: corpus_stage(cfg, g1, log)),
        ("hme", lambda: hme_stage(cfg, done["corpus"], log)),
        ("experts", lambda: experts_stage(cfg, done["corpus"], done["hme"], g1, log)),
        ("distill", lambda: distill_stage(cfg, done["experts"], g1, log)),
        ("export", lambda: export_stage(cfg, done["distill"], g1, log)),
        (
            "sim2sim",
            lambda: sim2sim_stage(cfg, done["corpus"], done["experts"], done["distill"], done["export"], g1, log),
        ),
        ("report", lambda: report_stage(cfg, done, log)),
    )
    for name, make in steps:
        if stage(name, make):
            break
    log(f"main job {'stopped after ' + until if until else 'done'} in {(time.time() - started) / 60:.1f} min")
    for line in where_everything_is(out, done):
        log(line)
    return out


def _check_teacher(cfg: MainConfig, g1: G1) -> None:
    """A foreign teacher is refused before the hours of corpus and HME work, not when distillation reaches it."""
    from humanoid_gpt.deploy.layouts import identify

    teacher = cfg.distill.teacher_path()
    if teacher is None:
        return
    if cfg.backend != "mujoco":
        raise ConfigError(
            f"distill.teacher: a foreign teacher reads the MuJoCo harness's state; backend {cfg.backend!r} cannot run "
            "it. Fix: backend: mujoco, or remove distill.teacher"
        )
    if identify(teacher, cfg.distill.teacher_layout) is None:
        raise ConfigError(
            f"distill.teacher {teacher}: not another lab's tracker layout; our own experts teach through the experts "
            "stage (remove distill.teacher)"
        )


def where_everything_is(out: Path, done: dict[str, StageResult]) -> list[str]:
    """The final summary: each finished stage's artefact, the ones a user opens first."""
    found = {
        "report": ("report", "report.html"),
        "sim2sim": ("sim2sim", "results.json"),
        "export": ("export", done["export"].summary.get("streaming", "") if "export" in done else ""),
        "distill": ("distill", "runs"),
        "experts": ("experts", "registry.json"),
        "hme": ("hme", "report.md"),
        "corpus": ("corpus", "corpus/DATASET_CARD.md"),
    }
    lines = []
    for name, (folder, item) in found.items():
        if name in done:
            r = done[name]
            when = "done earlier" if r.skipped else f"{r.seconds / 60:.1f} min"
            lines.append(f"  {name:8s} {when:>12s}  {out / folder / item}")
    return [*lines, f"  log                    {out / 'main.log'}"]
