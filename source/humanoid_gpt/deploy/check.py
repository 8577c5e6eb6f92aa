"""Sim2sim parity check of a tracking policy file against the robot model, before it goes near hardware
(``hgpt sim2sim check POLICY.onnx``; docs/architecture.md, stage 5 and "The G1 facts the code rests on").

The file's metadata is read (:mod:`~humanoid_gpt.deploy.check_declared`) and compared item by item with the robot
(:mod:`~humanoid_gpt.deploy.check_static`, with :mod:`~humanoid_gpt.deploy.check_motion` for the motion a foreign
export carries); then a dynamic check (:mod:`~humanoid_gpt.deploy.check_dynamic`): the policy tracks a slow standing
reference in the MuJoCo harness and, when it falls, the usual deployment mistakes are tried in turn. Our students get
the student observation; a foreign policy of a known layout runs as that layout; any other foreign policy's
observation layout is unknown here, so its dynamic check is reported as needing our layout. This module runs the
check, prints its table and writes its JSON report.
"""

from __future__ import annotations

import json
from pathlib import Path

from humanoid_gpt.deploy.check_dynamic import check_dynamic, check_layout_dynamic
from humanoid_gpt.deploy.check_items import PolicyCheck
from humanoid_gpt.deploy.check_motion import layout_of
from humanoid_gpt.deploy.check_static import check_static
from humanoid_gpt.robot.g1 import G1


def check_policy(
    path: str | Path, g1: G1 | None = None, dynamic: bool = True, seconds: float = 4.0, backend=None
) -> PolicyCheck:
    """Check a tracking policy file against the robot: metadata items, then (for our streaming students) the
    standing trial. ``check.ok`` is False on any mismatch."""
    from humanoid_gpt.robot import load_g1

    g1 = g1 or load_g1()
    path = Path(path)
    check, declared = check_static(path, g1)
    name = f"dynamic: standing {seconds:g} s"
    if not dynamic:
        return check
    if declared is None:
        check.add(name, "skipped", "the file could not be read")
    elif check.source != "humanoid_gpt" and layout_of(path) is not None:
        check_layout_dynamic(check, path, g1, seconds)
    elif check.source != "humanoid_gpt":
        check.add(
            name,
            "skipped",
            "needs our observation layout (STUDENT_LAYOUT) or a known layout; this policy's observation is "
            + (", ".join(n for n, _ in declared.observation) or "undeclared"),
            "run it in its own framework's sim2sim, or distill it into a humanoid_gpt student",
        )
    elif not declared.meta.get("_feedable"):
        check.add(name, "skipped", "only a streaming graph with our observation layout can be run here")
    else:
        result = check_dynamic(path, g1, declared, seconds, backend)
        check.dynamic = result
        first = result["trials"][0]
        if result["status"] == "stood":
            check.add(name, "ok", f"tracked {first['seconds']:.1f} s, MPJPE {first['mpjpe']:.3f} rad")
        elif result["fix"] is not None:
            check.add(
                name,
                "mismatch",
                f"fell after {first['seconds']:.1f} s as declared; stands with: {result['fix']['hypothesis']}",
                result["fix"]["fix"],
            )
        else:
            tried = ", ".join(t["hypothesis"] for t in result["trials"][1:])
            check.add(
                name,
                "mismatch",
                f"fell after {first['seconds']:.1f} s; none of the usual mistakes makes it stand ({tried})",
                "the policy itself does not balance: check its training",
            )
    return check


def print_policy_check(check: PolicyCheck) -> None:
    """A table of the items on the terminal, mismatches in red with their fix."""
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=f"{Path(check.path).name} ({check.source}) against {Path(check.robot).name}")
    for col in ("item", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    style = {"ok": "green", "mismatch": "red", "warning": "yellow", "info": "cyan", "skipped": "dim"}
    for item in check.items:
        table.add_row(item.name, f"[{style[item.status]}]{item.status}[/]", item.detail, item.fix)
    console().print(table)
    verdict = "ok" if check.ok else f"{sum(i.status == 'mismatch' for i in check.items)} mismatch(es)"
    console().print(f"{check.path}: {verdict}")


def run_check(
    policy: str | Path,
    robot: str | Path | None = None,
    json_path: str | Path | None = None,
    dynamic: bool = True,
    seconds: float = 4.0,
) -> int:
    """``hgpt sim2sim check``: check, print the table, write the JSON report; the exit code (1 on any mismatch)."""
    from humanoid_gpt.io_utils import write_text_atomic
    from humanoid_gpt.robot import load_g1

    check = check_policy(policy, load_g1(robot), dynamic, seconds)
    print_policy_check(check)
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(check.to_dict(), indent=1))
    return 0 if check.ok else 1
