"""Distilling a released tracker of another lab into our students (issue 28): parallel DAgger with TWIST2's student
as the teacher of every clip, rollouts under its actuation, then the students scored beside the teacher on 10-s
windows of a performer no run trained on (LAFAN1 subject 5, 4 windows per take).

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python experiments/foreign_teacher.py \\
        --students gpt-s mlp tcn --budgets 50 200 --out outputs/evidence/foreign_teacher

Training clips: every LAFAN1 take of subjects 1-4 (the demo corpus's training performers for LAFAN1; 33 takes, 2 h).
Every student of one budget gets the same data (iterations x envs x steps). A finished student is not trained again
and an interrupted one resumes from its last checkpoint, so the command can be repeated. Writes ``report.md``,
``report.json`` and ``curves.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evidence_common import add_dagger_args, dagger_config, distill_student, plot_curves

from humanoid_gpt import settings
from humanoid_gpt.catalog.manifests import ClusterManifest
from humanoid_gpt.deploy.policies import policy_setup
from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.metrics import metrics_table
from humanoid_gpt.motion import load_clip
from humanoid_gpt.motion.clip import clip_windows
from humanoid_gpt.robot import load_g1
from humanoid_gpt.robot.g1 import Actuation
from humanoid_gpt.students.config import context_overrides
from humanoid_gpt.students.distill import DistillRun
from humanoid_gpt_mujoco.evaluate import evaluate

TRAIN_SUBJECTS = ("subject1", "subject2", "subject3", "subject4")
HELD_OUT = "subject5"


def score(spec: str, g1, windows, threads: int, our_gains: bool = False) -> dict:
    """One policy file on the held-out windows, simulated as it expects (its layout or recorded actuation); with
    ``our_gains`` its targets (its default pose + action x its scale) are held by our PD gains and torque limits:
    the best case of relabelling a teacher's targets into our actuation, which the rollouts do not do."""
    setup = policy_setup(spec, g1)
    robot = setup.g1
    if our_gains:
        own = robot.actuation
        mixed = Actuation(f"{own.name} targets, our gains", tuple(g1.kp), tuple(g1.kd), tuple(g1.effort_limit),
                          own.default_joint_pos, own.action_scale)  # fmt: skip
        robot = g1.with_actuation(mixed)
    tracking = TrackingConfig(**setup.task_settings)
    return evaluate(robot, windows, setup.make, tracking, 16, threads, progress=False)["aggregate"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", type=Path, help="default: policies/twist2/twist2_1017_25k.onnx under the data root")
    p.add_argument("--students", nargs="+", default=["gpt-s", "mlp", "tcn"])
    p.add_argument("--budgets", type=int, nargs="+", default=[50], help="DAgger iterations of each run")
    p.add_argument("--compare", nargs="*", default=[], help="other policy files to score on the same windows")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    add_dagger_args(p)
    p.set_defaults(beta_iterations=10)
    args = p.parse_args()
    g1 = load_g1()
    teacher = args.teacher or settings.data_root() / "policies" / "twist2" / "twist2_1017_25k.onnx"
    lafan = settings.g1_motions_dir("lafan1")
    train = sorted(f"g1_motions/lafan1/{f.name}" for f in lafan.glob("*.csv") if f.stem.endswith(TRAIN_SUBJECTS))
    manifest = ClusterManifest(clusters={"lafan1-s1-4": train})
    held = [load_clip(f, g1=g1) for f in sorted(lafan.glob(f"*{HELD_OUT}.csv"))]
    windows = [w for c in held for w in clip_windows(c, 10.0, 4)]
    results_file = args.out / "report.json"
    report = json.loads(results_file.read_text()) if results_file.exists() else {"scores": {}, "curves": {}}
    scores, curves = report["scores"], report["curves"]

    def record(name: str, spec: str) -> None:
        if name not in scores:
            scores[name] = score(spec, g1, windows, args.threads)
            print(f"{name}: {json.dumps(scores[name])}", flush=True)
            write_report(args, report, teacher, len(train), len(windows))

    record("teacher (TWIST2)", str(teacher))
    if "teacher (TWIST2), our gains" not in scores:  # why rollouts run under the teacher's actuation
        scores["teacher (TWIST2), our gains"] = score(str(teacher), g1, windows, args.threads, our_gains=True)
        write_report(args, report, teacher, len(train), len(windows))
    record("reference (open loop)", "reference")
    for spec in args.compare:
        record(Path(spec).name, spec)
    for iterations in args.budgets:
        for student in args.students:
            name = f"{student} @ {iterations} it"
            folder = args.out / "runs" / f"{student}-{iterations}"
            run = DistillRun(
                teacher=teacher,
                student=student,
                log_root=args.out / "runs",
                run_name=f"{student}-{iterations}",
                overrides=context_overrides(student, None),
                resume=folder if any(folder.glob("student_*.pt")) else None,
                threads=args.threads,
                dagger=dagger_config(args, iterations),
            )
            if name not in scores:
                ckpt, curves[name], _ = distill_student(run, g1, manifest)
                record(name, str(ckpt))
    plot_curves(curves, args.out / "curves.png")


def write_report(args, report: dict, teacher: Path, clips: int, windows: int) -> None:
    write_text_atomic(args.out / "report.json", json.dumps(report, indent=1, default=str))
    rows = [((name,), m) for name, m in report["scores"].items()]
    text = (
        "# Students distilled from a released tracker (TWIST2)\n\n"
        f"Teacher: `{teacher.name}` on every clip. Training: {clips} LAFAN1 takes of subjects 1-4; DAgger with "
        f"{args.num_envs} envs x {args.steps_per_iteration} steps per iteration, beta over {args.beta_iterations} "
        f"iterations, the teacher's actuation. Scored on {windows} windows of 10 s of subject 5 (held out), falls as "
        "the metrics define them.\n\n" + "\n".join(metrics_table(("policy",), rows)) + "\n\n"
        "`teacher (TWIST2), our gains`: the teacher's own targets held by our PD gains and torque limits, the best "
        "case of relabelling its targets into our actuation (rollouts run under its actuation instead).\n\n"
        "Made by (each budget a separate command; finished rows are kept):\n\n```bash\n"
        "HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie \\\n"
        "    .venv/bin/python experiments/foreign_teacher.py \\\n"
        "    --students gpt-s mlp tcn --budgets 50 200 --out docs/evidence/foreign_teacher\n```\n"
    )
    write_text_atomic(args.out / "report.md", text)


if __name__ == "__main__":
    main()
