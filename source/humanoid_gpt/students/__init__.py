"""Students: one causal sequence policy (GPT, its banded key/value-cache variant, or the MLP / TCN baselines)
distilled from the cluster experts (docs/architecture.md, stage 4)."""

from humanoid_gpt.students.base import Student
from humanoid_gpt.students.config import PRESETS, StudentConfig, context_overrides, preset


def build_student(cfg: StudentConfig) -> Student:
    from humanoid_gpt.students.baselines import MLPStudent, TCNStudent
    from humanoid_gpt.students.gpt import GPTStudent
    from humanoid_gpt.students.gpt_kv import KVGPTStudent

    cfg.validate()
    return {"gpt": GPTStudent, "mlp": MLPStudent, "tcn": TCNStudent, "gpt-kv": KVGPTStudent}[cfg.kind](cfg)


__all__ = ["PRESETS", "Student", "StudentConfig", "build_student", "context_overrides", "preset"]
