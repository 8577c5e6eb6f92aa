"""Settings of the HME stage (docs/architecture.md, stage 2): which clips, how the Periodic Autoencoders see them,
how clips are cut into segments and how many clusters to make. One dataclass, readable from YAML, so the library
calls (``fit``, ``embed``, ``cluster``, ``report``, ``build``) and the command line share one set of defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

from humanoid_gpt import settings
from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.io_utils import contained_path, read_yaml
from humanoid_gpt.typed_config import build_dataclass

# What the stage writes in its output folder (HMEConfig.output_dir), named once for the writers and the readers.
INDEX = "pae/index.json"
STORE = "embeddings.parquet"
MANIFEST = "clusters.json"
DIVERSITY = "diversity.json"


class HMEError(HGPTError, ValueError):
    """Motion the HME stage cannot embed or cluster (non-finite features, clips shorter than a window, fewer
    segments than clusters, missing outputs of an earlier step); the message names the clip or file and the fix."""


@dataclass
class PAEConfig:
    """The Periodic Autoencoder and its windows. Defaults follow the Humanoid-GPT release (4-s windows at 50 Hz
    sampled every 5th frame, 41 frames; convolutions 64 wide; AdamW 1e-3, batch 1024, 5 epochs) except two, measured
    on the shared clips (docs/evidence/README.md, "Harmonic Motion Embedding"): 32 latent channels instead of 8 (8
    reconstruct held-out windows no better than each window's mean, 0.69 vs 0.70 normalised MSE on LAFAN1, however
    long they train; 32 give 0.50), and at least ``min_steps`` optimizer steps."""

    rate: float = 50.0  # Hz: every clip is resampled to this rate before features are computed
    window_seconds: float = 4.0  # span of one window
    frame_step: int = 5  # frames (at ``rate``) between the samples of a window: 4 s / 5 -> 41 samples
    hop: int = 10  # frames (at ``rate``) between window starts; the release's code is not explicit, 0.2 s here
    channels: int = 32  # latent (phase) channels C; the release uses 8 (see above)
    width: int = 64  # intermediate convolution channels
    kernel: int = 9  # temporal kernel of the convolutions (odd); DeepPhase uses the window, 9 is ~4x faster
    epochs: int = 5  # the least passes over the partition's windows
    min_steps: int = 1000  # the least optimizer steps: a small partition runs more epochs. The release's 5 epochs of
    # batch 1024 assume millions of windows; on the shared LAFAN1 clips (37k windows) they are 180 steps, G1 Moves 25
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_windows: int | None = None  # cap of training windows per partition (random subset): a CPU budget knob
    threads: int | None = None  # torch intra-op threads while training/embedding; None: leave torch's setting

    @property
    def window_frames(self) -> int:
        """Samples per window: window_seconds * rate / frame_step + 1 (41 with the defaults)."""
        return int(round(self.window_seconds * self.rate / self.frame_step)) + 1

    @property
    def span(self) -> int:
        """Frames at ``rate`` a window covers, first to last sample included (201 with the defaults)."""
        return (self.window_frames - 1) * self.frame_step + 1

    @property
    def sample_dt(self) -> float:
        """Seconds between two samples of a window."""
        return self.frame_step / self.rate

    def validate(self) -> None:
        checks = {
            "rate": self.rate > 0,
            "window_seconds": self.window_seconds > 0,
            "frame_step": self.frame_step >= 1,
            "hop": self.hop >= 1,
            "channels": self.channels >= 1,
            "width": self.width >= 1,
            "kernel": self.kernel >= 1 and self.kernel % 2 == 1,
            "epochs": self.epochs >= 0,
            "min_steps": self.min_steps >= 0,
            "batch_size": self.batch_size >= 2,  # batch norm needs two windows
            "lr": self.lr > 0,
            "max_windows": self.max_windows is None or self.max_windows >= 2,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"PAE settings out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")
        if self.window_frames < 4:
            raise ConfigError(f"a window of {self.window_frames} samples is too short for an FFT: lengthen it")


CLUSTER_FEATURES = ("hme", "hme+joint_stats")


@dataclass
class HMEConfig:
    """The whole HME stage. Paths in ``sources`` are folders, files or globs inside the data root, or absolute.

    ``partitions``: which clips each Periodic Autoencoder trains on: ``"source"`` (one PAE per source folder),
    ``"folds:<n>"`` (n random folds of the clips), or ``"all"`` (one PAE). Every PAE embeds every clip; the HME
    vector concatenates them. ``holdout``: fraction of clips no PAE trains on, for measuring reconstruction on unseen
    motion. Folds and held-out clips follow ``split_seed`` and the clips' content hashes, so a new training ``seed``
    does not reshuffle the data. Clusters: ``k`` when given, else ``round(segments / target_cluster_size)``."""

    sources: list[str] = field(default_factory=lambda: ["g1_motions/lafan1", "g1_motions/g1_moves"])
    output: str = "outputs/hme"  # where everything is written; see output_dir()
    data_root: str | None = None  # None: $HGPT_DATA_ROOT
    partitions: str = "source"
    holdout: float = 0.1
    segment_seconds: float = 10.0  # long clips are cut into segments of this length (the last one absorbs the rest)
    k: int | None = None
    target_cluster_size: int = 30
    kmeans_iterations: int = 100
    kmeans_restarts: int = 4
    seed: int = 0  # PAE initialisation and batches, K-Means
    split_seed: int = 0  # which clips are held out and which fold a clip is in (apart from ``seed``: a new training
    # seed must not reshuffle the data)
    skip_short: bool = False  # clips shorter than a window: False raises naming them, True leaves them out
    balance_temperature: float = 1.0  # the sampling weights written with the manifest (0: as the data is, 1: equal)
    cluster_features: str = "hme+joint_stats"
    """What K-Means clusters: ``"hme"`` (the paper's vector: PAE amplitudes and frequencies) or ``"hme+joint_stats"``
    (that and each joint's mean and std of angle and velocity, each block standardised). The PAE parameters describe
    rhythm, not posture (a karate stance and a dance step can share a beat); on the shared clips the pure HME clustered
    the file-name labels a little worse than the joint statistics alone (purity 0.654 vs 0.669) and both together best
    (0.684, NMI 0.446 vs 0.420; ``experiments/hme_study.py``, README "Harmonic Motion Embedding")."""
    pae: PAEConfig = field(default_factory=PAEConfig)

    def root(self) -> Path:
        return Path(self.data_root).expanduser() if self.data_root else settings.data_root()

    def output_dir(self) -> Path:
        """``output`` as given when absolute; relative paths starting with ``outputs/`` go under $HGPT_OUTPUT_ROOT
        (``outputs/hme`` -> ``$HGPT_OUTPUT_ROOT/hme``), other relative paths under the working directory."""
        out = Path(self.output).expanduser()
        if out.is_absolute():
            return out
        if out.parts and out.parts[0] == "outputs":
            return settings.output_root().joinpath(*out.parts[1:])
        return Path.cwd() / out

    def validate(self) -> None:
        self.pae.validate()
        if not self.sources:
            raise ConfigError("HME config: 'sources' is empty; name folders or globs under the data root")
        for i, source in enumerate(self.sources):  # read from the data root: a relative one must not lead out of it
            contained_path(
                Path(source).expanduser(), self.root(), "the data root", f"HME config: sources[{i}]", ConfigError
            )
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"HME config: holdout={self.holdout} must be in [0, 1)")
        if self.segment_seconds < self.pae.window_seconds:
            raise ConfigError(
                f"HME config: segment_seconds={self.segment_seconds} is shorter than a PAE window "
                f"({self.pae.window_seconds} s); a segment needs at least one window"
            )
        if self.k is not None and self.k < 1:
            raise ConfigError(f"HME config: k={self.k} must be at least 1 (or null to use target_cluster_size)")
        if self.target_cluster_size < 1:
            raise ConfigError(f"HME config: target_cluster_size={self.target_cluster_size} must be at least 1")
        if self.cluster_features not in CLUSTER_FEATURES:
            raise ConfigError(
                f"HME config: cluster_features={self.cluster_features!r}; use one of {', '.join(CLUSTER_FEATURES)}"
            )
        if not 0.0 <= self.balance_temperature <= 1.0:
            raise ConfigError(f"HME config: balance_temperature={self.balance_temperature} must be in [0, 1]")
        partition_kind(self.partitions)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HMEConfig:
        data = dict(data or {})
        pae = data.pop("pae", None) or {}
        _check_keys(data, cls, "HME config")
        _check_keys(pae, PAEConfig, "HME config 'pae'")
        cfg = build_dataclass(cls, {**data, "pae": pae}, "HME config")  # a value of the wrong type named, not a crash
        cfg.validate()
        return cfg


def _check_keys(data: dict, cls: type, what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{what}: unknown keys {unknown}; known: {sorted(known)}")


def partition_kind(spec: str) -> tuple[str, int]:
    """``"source"`` -> ("source", 0), ``"all"`` -> ("all", 1), ``"folds:3"`` -> ("folds", 3); else a ConfigError."""
    if spec in ("source", "all"):
        return spec, 0 if spec == "source" else 1
    if spec.startswith("folds:") and spec.removeprefix("folds:").isdigit() and int(spec.removeprefix("folds:")) >= 1:
        return "folds", int(spec.removeprefix("folds:"))
    raise ConfigError(f"HME config: partitions={spec!r}; use 'source', 'all' or 'folds:<n>' (e.g. folds:3)")


def load_config(path: str | Path | None = None, **overrides) -> HMEConfig:
    """An :class:`HMEConfig` from a YAML file (missing keys take the defaults), with ``overrides`` on top."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        data = read_yaml(path, "HME config") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: an HME config is a YAML mapping of settings")
    pae = {**(data.pop("pae", None) or {}), **overrides.pop("pae", {})}
    return HMEConfig.from_dict({**data, **overrides, "pae": pae})


def default_yaml() -> str:
    """The defaults as a YAML file to start a config from (every field, with its default value)."""
    import yaml

    return yaml.safe_dump(HMEConfig().to_dict(), sort_keys=False)
