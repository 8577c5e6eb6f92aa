"""The main job's config: one YAML file per preset (``demo``, ``cpu``, ``gpu``, ``cluster`` ship with the package),
read into nested dataclasses with every mistake named (file, field, fix).

A preset is a plain file: ``hgpt main --print-config demo > mine.yaml``, edit, ``hgpt main --config mine.yaml``.
An overrides file changes a few fields of a preset and keeps the rest (``hgpt main --preset gpu --override
configs/main/gpu-smoke.yaml``: the gpu preset at smoke sizes): mappings merge field by field, any other value (a list,
a number) replaces the preset's.
Sections: ``corpus`` (a corpus config, :mod:`humanoid_gpt.governance.corpus`, whose ``output`` the job sets; a source
with ``optional: true`` is skipped when its files are absent), ``hme`` (:class:`~humanoid_gpt.hme.config.HMEConfig`
fields but ``sources``/``output``), ``experts``, ``distill`` (``dagger``: :class:`~humanoid_gpt.students.dagger.
DaggerConfig` fields), ``export`` and ``evaluate``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from humanoid_gpt import settings
from humanoid_gpt.catalog.manifests import ClusterManifest
from humanoid_gpt.deploy.export import ExportSettings
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.experts.registry import RetentionRule
from humanoid_gpt.experts.train import ExpertRun
from humanoid_gpt.flags import check_bounds
from humanoid_gpt.io_utils import read_yaml
from humanoid_gpt.students.distill import DistillRun
from humanoid_gpt.typed_config import build_dataclass

if TYPE_CHECKING:
    from humanoid_gpt.hme.config import HMEConfig

PRESETS = ("demo", "cpu", "gpu", "cluster")
SCHEMA_VERSION = 1


def _run_option(name: str, default: Any) -> Any:
    """The preset field that is :class:`ExpertRun`'s option ``name``: its help text and bounds, with the job's
    default (the main job trains short runs on reference-relative actions; ``hgpt train expert`` keeps its own)."""
    return field(default=default, metadata=ExpertRun.__dataclass_fields__[name].metadata)


@dataclass(frozen=True)
class ExpertsStage:
    """Which clusters get an expert, its PPO run (:class:`ExpertRun`'s options the preset sets), how it is judged
    (the retention rule) and where it runs. The stage fills in the rest of each run: task, manifest, backend, seed,
    device, run folder."""

    clusters: int | list[str] | Literal["all"] = 2  # a count (the clusters with the most segments), ids, or all
    num_envs: int = _run_option("num_envs", 256)
    max_iterations: int = _run_option("max_iterations", 100)
    save_interval: int = _run_option("save_interval", 25)
    relative_actions: bool = _run_option("relative_actions", True)
    randomization: bool = _run_option("randomization", True)
    adaptive_sampling: bool = _run_option("adaptive_sampling", True)
    threads: int = _run_option("threads", 2)
    compile: bool = _run_option("compile", False)
    executor: Literal["local", "ray", "submitit"] = "local"
    ray_address: str | None = None
    slurm: dict = field(default_factory=dict)  # submitit's update_parameters (partition, gpus_per_node, ...)
    retention: RetentionRule = field(default_factory=RetentionRule)
    eval_window_seconds: float = 10.0  # the retention evaluation: windows of the cluster's own clips
    eval_windows: int = 16

    def expert_run(self, **fixed: Any) -> ExpertRun:
        """One cluster's PPO run: the preset's options, and ``fixed`` (task, manifest, seed, ...) from the stage."""
        return ExpertRun(**{name: getattr(self, name) for name in RUN_OPTIONS}, **fixed)

    def chosen_clusters(self, manifest: ClusterManifest) -> list[str]:
        """The clusters of ``manifest`` that get an expert: named ones, or the ``n`` with the most segments (ties:
        lowest id), or all."""
        if self.clusters == "all":
            return sorted(manifest.clusters)
        if isinstance(self.clusters, list):
            unknown = sorted(set(self.clusters) - set(manifest.clusters))
            if unknown:
                raise ConfigError(
                    f"experts.clusters {unknown} are not in the HME manifest ({sorted(manifest.clusters)})"
                )
            return list(self.clusters)
        ranked = sorted(manifest.clusters, key=lambda c: (-len(manifest.clusters[c]), c))
        return sorted(ranked[: self.clusters])


RUN_OPTIONS = tuple(f.name for f in dataclasses.fields(ExpertsStage) if f.name in ExpertRun.__dataclass_fields__)
"""The :class:`ExpertRun` options a preset's ``experts`` section sets."""

ExportStage = ExportSettings
"""The export section: what ``hgpt export onnx`` takes as options (:mod:`humanoid_gpt.deploy.export`)."""


@dataclass(frozen=True)
class DistillStage:
    """Parallel DAgger into ``student`` (the deployed one) and, at equal data, the ``baselines``."""

    student: str = "gpt-s"
    baselines: list[str] = field(default_factory=list)  # e.g. [mlp, tcn]: distilled from the same teachers
    context: int | None = None
    threads: int = 2
    nproc: int = 1  # > 1: distill under torchrun, one process per GPU (device cuda) or per CPU env set (gloo)
    dagger: dict = field(default_factory=dict)  # DaggerConfig fields
    teacher: str | None = None
    """A released tracker of another lab (any policy file the harness runs; relative to the data root or absolute)
    that labels the states on every cluster instead of our experts: the experts stage then trains none, and the
    students act under the teacher's actuation (docs/howto-compare-trackers.md)."""
    teacher_layout: str | None = None  # the teacher's layout, for a renamed file (default: recognised)

    def teacher_path(self) -> Path | None:
        if self.teacher is None:
            return None
        path = Path(self.teacher).expanduser()
        path = path if path.is_absolute() else settings.data_root() / path
        if not path.is_file():
            raise ConfigError(
                f"distill.teacher {self.teacher!r}: no file at {path}; give a policy file the harness runs (relative "
                "to the data root or absolute), or remove distill.teacher to distill from our experts"
            )
        return path

    def distill_run(self, student: str, seed: int, device: str, **fixed: Any) -> DistillRun:
        """The DAgger run of ``student`` (the deployed one or a baseline): the section's settings, and ``fixed``
        (teachers, manifest, backend, run folder) from the stage."""
        from humanoid_gpt.students import context_overrides
        from humanoid_gpt.students.dagger import DaggerConfig

        return DistillRun(
            student=student,
            context=self.context,
            layout=self.teacher_layout,
            run_name=student,
            threads=self.threads,
            device=device,
            distributed=self.nproc > 1 and device.startswith("cuda"),
            overrides=context_overrides(student, self.context),
            dagger=DaggerConfig(**{"seed": seed, **self.dagger}),
            **fixed,
        )


@dataclass(frozen=True)
class EvaluateStage:
    """Sim2sim on clips no expert and no student trained on: the test split's performers (``held_out``) and the
    sources named in ``unseen_sources`` (left out of HME, experts and distillation: ``unseen``)."""

    unseen_sources: list[str] = field(default_factory=list)
    window_seconds: float = 10.0
    max_windows: int = 24  # per set, spread over its clips
    num_envs: int = 16
    threads: int = 2
    video_seconds: float = 8.0  # the student on an unseen clip beside its reference; 0: no video
    peers: list[str] = field(default_factory=lambda: ["policies/twist2/twist2_1017_25k.onnx"])
    """Released trackers of other labs scored on the same windows (a row each), relative to the data root or
    absolute; one that is not there is skipped with a log line."""


@dataclass(frozen=True)
class MainConfig:
    name: str
    description: str = ""
    backend: Literal["mujoco", "isaaclab"] = "mujoco"
    device: str = "cpu"
    seed: int = 0
    output: str | None = None  # default: $HGPT_OUTPUT_ROOT/main/<name>
    # The corpus and HME sections stay the mappings as written: their stage keys, config.json and the report's key
    # hash them so (filled-in defaults would change every cache key), and the HME seed falls back to ``seed`` only when
    # the section sets none. Their typed, validated views: load_corpus_config and hme_config().
    corpus: dict = field(default_factory=dict)
    hme: dict = field(default_factory=dict)
    experts: ExpertsStage = field(default_factory=ExpertsStage)
    distill: DistillStage = field(default_factory=DistillStage)
    export: ExportStage = field(default_factory=ExportStage)
    evaluate: EvaluateStage = field(default_factory=EvaluateStage)
    source: str = field(default="", compare=False)  # the file it was read from

    def output_dir(self) -> Path:
        if self.output:
            out = Path(self.output).expanduser()
            return out if out.is_absolute() else Path.cwd() / out
        return settings.output_root() / "main" / self.name

    def hme_config(self, sources: list[str], output: str) -> HMEConfig:
        """The HME section as the library's config, on ``sources`` (the corpus's training clips) into ``output``,
        with the job's seed unless the section sets its own; refused naming the field, as ``hgpt hme`` refuses it."""
        from humanoid_gpt.hme.config import HMEConfig

        return HMEConfig.from_dict(
            {**self.hme, "sources": sources, "output": output, "seed": self.hme.get("seed", self.seed)}
        )

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("source")
        return data


def preset_path(name: str) -> Path:
    """The packaged preset file ``name`` (demo, cpu, gpu, cluster)."""
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}; presets: {', '.join(PRESETS)} (or --config FILE for your own)")
    return Path(str(resources.files("humanoid_gpt.jobs") / "presets" / f"{name}.yaml"))


def load_main_config(path: str | Path, overrides: Sequence[str | Path] = ()) -> MainConfig:
    """A :class:`MainConfig` from a YAML file with the ``overrides`` files merged over it in order (module
    docstring); unknown fields, wrong types and impossible values are errors naming the files and the field."""
    raw = _read_config(Path(path), f"main-job config (use --preset {'|'.join(PRESETS)}, or a YAML file)")
    where = str(path)
    for extra in overrides:
        raw = merge_override(raw, _read_config(Path(extra), "main-job overrides"), f"{extra}:")
        where += f" + {extra}"
    cfg = build_dataclass(MainConfig, raw, where)
    cfg = dataclasses.replace(cfg, source=where)
    check(cfg)
    return cfg


def _read_config(path: Path, what: str) -> dict:
    raw = read_yaml(path, what)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a {what} file is a mapping (name, corpus, hme, experts, ...)")
    version = raw.pop("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{path}: schema_version {version} is not {SCHEMA_VERSION}, the one this version reads")
    return raw


def merge_override(base: dict, override: dict, where: str) -> dict:
    """``base`` with ``override`` merged in: a mapping over a mapping merges field by field, any other value replaces
    (a list of sources replaces the whole list). A mapping given where the base holds a list or a number is refused,
    naming the field: it would silently drop the base's value."""
    out = dict(base)
    for key, value in override.items():
        field_name = f"{where} {key}" if where.endswith(":") else f"{where}.{key}"
        old = base.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge_override(old, value, field_name)
        elif isinstance(value, dict) and old is not None:
            raise ConfigError(f"{field_name}: a mapping cannot merge into the preset's value {old!r}; give a value")
        else:
            out[key] = value
    return out


def check(cfg: MainConfig) -> None:
    """Impossible settings, refused before any stage runs."""
    where = cfg.source or cfg.name
    e, d, v = cfg.experts, cfg.distill, cfg.evaluate
    if isinstance(e.clusters, int) and e.clusters < 1:
        raise ConfigError(f"{where}: experts.clusters={e.clusters}; train at least one expert")
    positive = {
        "experts.num_envs": e.num_envs,
        "experts.max_iterations": e.max_iterations,
        "experts.save_interval": e.save_interval,
        "experts.threads": e.threads,
        "experts.eval_windows": e.eval_windows,
        "experts.eval_window_seconds": e.eval_window_seconds,
        "distill.threads": d.threads,
        "distill.nproc": d.nproc,
        "evaluate.window_seconds": v.window_seconds,
        "evaluate.max_windows": v.max_windows,
        "evaluate.num_envs": v.num_envs,
        "evaluate.threads": v.threads,
        "export.parity_steps": cfg.export.parity_steps,
    }
    bad = [f"{k}={x}" for k, x in positive.items() if not x > 0]
    if bad:
        raise ConfigError(f"{where}: {', '.join(bad)} must be positive")
    if v.video_seconds < 0:
        raise ConfigError(f"{where}: evaluate.video_seconds={v.video_seconds} must be >= 0 (0: no video)")
    if "sources" not in cfg.corpus:
        raise ConfigError(f"{where}: corpus.sources is missing; list the motion sources (see configs/corpus/)")
    for k in ("sources", "output", "data_root"):
        if k in cfg.hme:
            raise ConfigError(f"{where}: hme.{k} is set by the main job (the corpus's training clips); remove it")
    _check_corpus(cfg.corpus, where)
    try:  # the stage sets sources and output (the corpus's training clips): stand-ins here
        cfg.hme_config(["clips"], "unused")
    except ConfigError as e:
        raise ConfigError(f"{where}: hme: {e}") from None
    names = {s.get("name") for s in cfg.corpus["sources"] if isinstance(s, dict)}
    unknown = sorted(set(v.unseen_sources) - names)
    if unknown:
        raise ConfigError(f"{where}: evaluate.unseen_sources {unknown} are not corpus sources ({sorted(names)})")
    _check_dagger(d, where)


def _check_dagger(d: DistillStage, where: str) -> None:
    """The DAgger settings as every student of the stage will read them: a rollout that is not whole windows of a
    student's context is refused now, not after the experts trained."""
    from humanoid_gpt.students.config import context_overrides, preset
    from humanoid_gpt.students.dagger import DaggerConfig

    dagger = build_dataclass(DaggerConfig, d.dagger, f"{where}: distill.dagger")
    check_bounds(dagger, f"{where}: distill.dagger.")
    for name in [d.student, *d.baselines]:
        try:
            student = preset(
                name, **({"context": d.context} if d.context else {}), **context_overrides(name, d.context)
            )
            dagger.validate(student.context)
        except ConfigError as e:
            raise ConfigError(f"{where}: distill ({name}): {e}") from None


def _check_corpus(corpus: dict, where: str) -> None:
    """The corpus section read as the corpus stage will read it (``optional`` is the main job's; it sets ``output``),
    so a bad value is refused when the config loads, not when the stage starts."""
    from humanoid_gpt.governance.corpus_config import load_corpus_config

    sources = corpus["sources"]
    if isinstance(sources, list):
        sources = [{k: v for k, v in s.items() if k != "optional"} if isinstance(s, dict) else s for s in sources]
    load_corpus_config(
        {**corpus, "sources": sources, "output": "unused"}, data_root=settings.data_root(), where=f"{where}: corpus"
    )
