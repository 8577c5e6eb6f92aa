"""Students: one causal sequence policy (GPT, or the MLP / TCN baselines) distilled from the cluster experts."""

from humanoid_gpt.students.base import Student
from humanoid_gpt.students.config import PRESETS, StudentConfig, preset


def build_student(cfg: StudentConfig) -> Student:
    from humanoid_gpt.students.baselines import MLPStudent, TCNStudent
    from humanoid_gpt.students.gpt import GPTStudent

    cfg.validate()
    return {"gpt": GPTStudent, "mlp": MLPStudent, "tcn": TCNStudent}[cfg.kind](cfg)


__all__ = ["PRESETS", "Student", "StudentConfig", "build_student", "preset"]
