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
    from humanoid_gpt.hme.config import HMEConfig

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
    from humanoid_gpt.catalog.store import export_clips
    from humanoid_gpt.governance.corpus import build_corpus
    from humanoid_gpt.governance.corpus_config import load_corpus_config

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


# 2. HME -----------------------------------------------------------------------------------------------------------


def hme_config(cfg: MainConfig, corpus_dir: Path, work: Path) -> HMEConfig:
    """The HME section on the corpus's training clips, but the unseen sources' (no stage may train on them)."""
    train = corpus_dir / "clips" / "train"
    sources = sorted(str(p) for p in train.glob("*") if p.is_dir() and p.name not in cfg.evaluate.unseen_sources)
    if not sources:
        raise ConfigError(
            f"the corpus has no training clips outside evaluate.unseen_sources {cfg.evaluate.unseen_sources} "
            f"({train}); add sources or move clips into the train split"
        )
    return cfg.hme_config(sources, str(work))


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


def experts_stage(cfg: MainConfig, corpus: StageResult, hme: StageResult, g1: G1, log: Callable[[str], None]) -> Stage:
    def build(work: Path) -> dict:
        from humanoid_gpt.catalog.manifests import corpus_manifest, load_manifest, task_id
        from humanoid_gpt.experts.fanout import train_all
        from humanoid_gpt.experts.registry import ExpertRegistry

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
        clusters = e.chosen_clusters(manifest)
        runs = []
        for c in clusters:
            folder = work / "runs" / task_id(c) / c
            done = latest_checkpoint(folder, "model")
            fixed = dict(manifest=manifest_path, backend=cfg.backend, seed=cfg.seed, device=cfg.device)
            resume = folder if done is not None else None
            runs.append(e.expert_run(task=task_id(c), log_root=work / "runs", run_name=c, resume=resume, **fixed))
            log(
                f"[experts] {task_id(c)}: {len(manifest.clusters[c])} segments, {e.max_iterations} PPO iterations x "
                f"{e.num_envs} envs" + (f" (resuming from {done.name})" if done else "")
            )
        train_all(runs, e.executor, work / "slurm", e.slurm or None, e.ray_address)
        registry = ExpertRegistry(rule=e.retention)
        summary = {
            c: _retain(cfg, manifest, c, run, registry, g1, work, log) for c, run in zip(clusters, runs, strict=True)
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
        # judged on falls as the metrics define them, humanoid_gpt_mujoco.evaluate's schema 2)
        "version": 3,
        "experts": _key(cfg.experts),
        "backend": cfg.backend,
        "seed": cfg.seed,
        "hme": hme.key_hash,
        "teacher": cfg.distill.teacher,
    }
    return Stage("experts", key, build)


def _retain(cfg: MainConfig, manifest, cluster: str, run, registry, g1: G1, work: Path, log) -> dict:
    """One trained expert judged on windows of its cluster (the evaluation cached in the work folder) and recorded
    in ``registry``; its line of the stage summary."""
    from humanoid_gpt.experts.evaluation import judge_expert, retention_windows

    e = cfg.experts
    ckpt = latest_checkpoint(run.run_dir(), "model")
    clips = retention_windows(manifest, cluster, g1, e.eval_windows, e.eval_window_seconds)
    cache = work / "eval" / f"{cluster}.json"
    judged = judge_expert(registry, g1, ckpt, clips, cluster, 16, ckpt.relative_to(work), cache)
    meta, agg, record = judged.meta, judged.result["aggregate"], judged.record
    log(
        f"[experts] {meta['task']}: SR {agg['sr_percent']:.1f}% over {len(clips)} windows, MPKPE "
        f"{agg['mpkpe_mm']:.0f} mm, stable {agg['mean_episode_s']:.1f} s -> {record.verdict}"
    )
    return {
        "task": meta["task"],
        "checkpoint": str(ckpt.relative_to(work)),
        "windows": len(clips),
        "samples": e.max_iterations * e.num_envs * meta["train_cfg"]["num_steps_per_env"],
        "retained": record.retained,
        "reasons": record.reasons,
        "metrics": agg,
    }


# 4. distillation --------------------------------------------------------------------------------------------------


def distill_stage(cfg: MainConfig, experts: StageResult, g1: G1, log: Callable[[str], None]) -> Stage:
    def build(work: Path) -> dict:
        from humanoid_gpt.deploy.policies import policy_setup
        from humanoid_gpt.experts.registry import ExpertRegistry
        from humanoid_gpt.jobs.distill import run_distill, run_distill_processes
        from humanoid_gpt.students.distill import foreign_teacher_task, save_untrained, teacher_task

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
            fixed = dict(registry=registry_path, teacher=teacher, manifest=experts.folder / CORPUS_MANIFEST)
            run = d.distill_run(name, cfg.seed, cfg.device, backend=cfg.backend, log_root=work / "runs", **fixed)
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
                run_distill_processes(run, d.nproc)
            else:
                run_distill(run, g1)
            ckpt = latest_checkpoint(folder, "student")
            untrained = save_untrained(run, actuated, tracking, work / "untrained" / f"{name}.pt")
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


# 5. export --------------------------------------------------------------------------------------------------------


def export_stage(cfg: MainConfig, distill: StageResult, g1: G1, log: Callable[[str], None]) -> Stage:
    def build(work: Path) -> dict:
        from humanoid_gpt.deploy.export import export_student

        ckpt = distill.folder / distill.summary["students"][distill.summary["deployed"]]["checkpoint"]
        say = lambda text: log(f"[export] {text}")  # noqa: E731
        done = export_student(ckpt, work, g1, cfg.export, cfg.seed, work / "student.engine", say)
        out = {"streaming": done.streaming.name, "windowed": done.windowed.name, "parity_max_abs": done.parity_max_abs}
        if done.quantized:
            out["quantized"] = {scheme: path.name for scheme, path in done.quantized.items()}
        if done.engine_skipped:
            say(
                f"TensorRT engine skipped: {done.engine_skipped}. Build it on the machine that runs it: "
                f"hgpt export tensorrt {work.with_name('export') / done.streaming.name}"
            )
            out["tensorrt_skipped"] = done.engine_skipped
        elif done.engine is not None:
            out["tensorrt"] = done.engine.name
        return out

    key = {"export": _key(cfg.export), "distill": distill.key_hash}
    if tensorrt_skip_reason(cfg):  # a rerun where TensorRT works rebuilds the stage, engine included
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
    from humanoid_gpt.catalog.store import exported_clips
    from humanoid_gpt.governance.corpus_config import SPLITS
    from humanoid_gpt.motion.clip import scored_windows, spread
    from humanoid_gpt.motion.io import load_clip

    v, clips_dir = cfg.evaluate, corpus_dir / "clips"
    files = {
        "held_out": exported_clips(clips_dir, "test", exclude=v.unseen_sources, originals=True),
        "unseen": [f for s in SPLITS for f in exported_clips(clips_dir, s, v.unseen_sources, originals=True)]
        if v.unseen_sources
        else [],
    }
    sets = {}
    for name, paths in files.items():
        clips = [load_clip(p, g1=g1) for p in paths]
        per_clip = max(1, -(-v.max_windows // max(len(clips), 1)))
        windows = spread([w for c in clips for w in scored_windows(c, v.window_seconds, per_clip)], v.max_windows)
        if windows:
            sets[name] = windows
    if not sets:
        raise ConfigError(
            f"no evaluation clips: the corpus's test split and unseen sources {v.unseen_sources} hold no clip of at "
            "least 1 s. Fix: give the corpus more performers (splits) or name an unseen source"
        )
    return sets


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
        from humanoid_gpt.deploy.sim2sim import film_episode, harness, peer_policies
        from humanoid_gpt.experts.evaluation import expert_tracking_config, load_expert_policy
        from humanoid_gpt.experts.registry import ExpertRegistry
        from humanoid_gpt.metrics import cached_evaluation

        v = cfg.evaluate
        teacher = cfg.distill.teacher_path()
        if teacher is None:
            teachers = ExpertRegistry.load(experts.folder / "registry.json").retained()
            actuated, tracking = g1, expert_tracking_config(next(iter(teachers.values())).checkpoint)
            backend = load_backend("mujoco", g1=actuated, threads=v.threads)
        else:  # the students act under the foreign teacher's actuation: so are they scored
            teachers, foreign = {}, policy_setup(str(teacher), g1, cfg.distill.teacher_layout)
            actuated, (backend, tracking) = foreign.g1, harness(foreign, v.threads)
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
        for name, path, setup in peer_policies(v.peers, g1, lambda text: log(f"[sim2sim] {text}")):
            if teacher is not None and path.resolve() == teacher.resolve():
                continue  # already scored as the teacher
            policies[name], runs[name] = (path, setup.make), harness(setup, v.threads)

        sets = eval_sets(cfg, corpus.folder, g1)
        results: dict[str, dict] = {}
        for set_name, windows in sets.items():
            log(f"[sim2sim] {set_name}: {len(windows)} windows of up to {v.window_seconds:g} s")
            for i, (policy, (path, make)) in enumerate(policies.items()):
                cached = work / "eval" / f"{set_name}.{i}.json"
                sim, task = runs[policy]
                result = cached_evaluation(
                    cached, path, lambda w=windows, m=make, b=sim, t=task: b.evaluate(w, m, t, v.num_envs, cfg.seed)
                )
                agg = result["aggregate"]
                results.setdefault(set_name, {})[policy] = agg
                log(
                    f"[sim2sim] {set_name} {policy}: SR {agg['sr_percent']:.1f}%, MPKPE {agg['mpkpe_mm']:.0f} mm, "
                    f"stable {agg['mean_episode_s']:.1f} s"
                )
        video = None
        if v.video_seconds > 0:  # the deployed student on the first window, unseen sources first
            name = "unseen" if "unseen" in sets else "held_out"
            clip = sets[name][0].slice(0, int(v.video_seconds * sets[name][0].fps) + 1)
            make = policies[f"{deployed} (ONNX)"][1]
            metrics = film_episode(backend, make, tracking, clip, actuated, work / "student.mp4", deployed, cfg.seed)
            if metrics is not None:
                video = {
                    "video": "student.mp4",
                    "image": "student.png",
                    "clip": clip.name,
                    "set": name,
                    "metrics": metrics,
                }
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
