"""Which experts are kept: evaluation in the MuJoCo harness, a configurable retention rule, and the registry file
(cluster id -> checkpoint, metrics, retained flag, config hash) that distillation reads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from humanoid_gpt.errors import ConfigError, HGPTError
from humanoid_gpt.io_utils import contained_path, read_versioned_json, write_text_atomic
from humanoid_gpt.typed_config import build_dataclass, typed_value

SCHEMA_VERSION = 1


class RegistryError(HGPTError, ValueError):
    """An expert registry that cannot be used."""


@dataclass(frozen=True)
class RetentionRule:
    """Keep an expert only if it tracks its cluster stably. Defaults sit between the paper's weakest student
    (SR 76.9%, MPKPE 100 mm) and what a per-cluster expert should reach."""

    min_sr_percent: float = 80.0
    max_mpkpe_mm: float = 100.0
    max_mpjpe: float = 0.2
    min_mean_episode_s: float = 5.0

    def judge(self, metrics: dict) -> tuple[bool, list[str]]:
        """(retained, reasons for dropping) from aggregate sim2sim metrics."""
        reasons = []
        if metrics.get("sr_percent", 0.0) < self.min_sr_percent:
            reasons.append(f"SR {metrics.get('sr_percent', 0.0):.1f}% < {self.min_sr_percent}%")
        if metrics.get("mpkpe_mm", float("inf")) > self.max_mpkpe_mm:
            reasons.append(f"MPKPE {metrics.get('mpkpe_mm', float('inf')):.1f} mm > {self.max_mpkpe_mm} mm")
        if metrics.get("mpjpe", float("inf")) > self.max_mpjpe:
            reasons.append(f"MPJPE {metrics.get('mpjpe', float('inf')):.3f} rad > {self.max_mpjpe} rad")
        if metrics.get("mean_episode_s", 0.0) < self.min_mean_episode_s:
            reasons.append(f"stable tracking {metrics.get('mean_episode_s', 0.0):.1f} s < {self.min_mean_episode_s} s")
        return not reasons, reasons


@dataclass
class ExpertRecord:
    cluster: str
    task: str
    checkpoint: str  # absolute, or relative to the registry file's folder (and inside it)
    config_hash: str
    metrics: dict
    retained: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``retained``, or ``dropped: `` and the reasons: the one phrase every caller prints."""
        return "retained" if self.retained else "dropped: " + "; ".join(self.reasons)


@dataclass
class ExpertRegistry:
    experts: dict[str, ExpertRecord] = field(default_factory=dict)
    rule: RetentionRule = field(default_factory=RetentionRule)

    def add(self, cluster: str, task: str, checkpoint: str | Path, config_hash: str, metrics: dict) -> ExpertRecord:
        """Judge and record one cluster's expert (replacing an earlier one)."""
        retained, reasons = self.rule.judge(metrics)
        record = ExpertRecord(cluster, task, str(checkpoint), config_hash, metrics, retained, reasons)
        self.experts[cluster] = record
        return record

    def retained(self) -> dict[str, ExpertRecord]:
        return {c: r for c, r in self.experts.items() if r.retained}

    def save(self, path: str | Path) -> Path:
        data = {
            "schema_version": SCHEMA_VERSION,
            "rule": asdict(self.rule),
            "experts": {c: asdict(r) for c, r in sorted(self.experts.items())},
        }
        write_text_atomic(path, json.dumps(data, indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ExpertRegistry:
        data = read_versioned_json(path, SCHEMA_VERSION, RegistryError, "expert registry")
        try:  # a hand-edited or foreign file: each field's type named here, not as a TypeError where it is used
            experts = {
                c: build_dataclass(ExpertRecord, r, f"{path}: experts.{c}")
                for c, r in typed_value(dict, data.get("experts", {}), f"{path}: experts").items()
            }
            rule = build_dataclass(RetentionRule, data.get("rule", {}), f"{path}: rule")
        except ConfigError as e:
            raise RegistryError(f"{e}. Fix: write it again with `hgpt experts eval`, or correct that field") from None
        for cluster, record in experts.items():  # relative checkpoints live beside the registry: the folder can move
            where = f"{path}: expert of cluster {cluster!r}: checkpoint"
            record.checkpoint = str(
                contained_path(record.checkpoint, Path(path).parent, "the registry's folder", where, RegistryError)
            )
        return cls(experts, rule)
