"""A sweep of bad inputs through the ``hgpt`` command, run as a user runs it (one process per case), counted the way
the hardening issue counts them: refused clearly, refused unclearly, traceback, silently accepted.

    HGPT_DATA_ROOT=../shared/data MENAGERIE_ROOT=../shared/menagerie .venv/bin/python experiments/bad_input_sweep.py \\
        [--json outputs/bad_inputs.json] [--only NAME...]

A case is *clear* when it exits 1 or 2 with every expected fragment (the file or option, and the problem) in its
message; *unclear* when it is refused without them; a *traceback* when Python's traceback or the CLI's catch-all
("unexpected ...") shows; *silent* when it exits 0 although the input is bad; *critical* when a hostile file's
payload ran (``tests/hostile_support.py``'s pickles create a marker file when unpickled). Bad files are made in a
temporary folder from the shared clips. ``tests/test_bad_inputs.py`` holds the fast, in-process part of the same cases.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test suite's hostile-file makers
import hostile_support as hostile  # noqa: E402

DATA = Path(os.environ.get("HGPT_DATA_ROOT", "../shared/data")).resolve()
WALK = DATA / "g1_motions/lafan1/walk1_subject1.csv"
BVH = DATA / "mocap/lafan1_bvh/walk.bvh"
AMC = DATA / "mocap/cmu_asf_amc/02_01.amc"
HGPT = [sys.executable, "-m", "humanoid_gpt.cli"]


@dataclass
class Case:
    name: str
    argv: list[str]
    fragments: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    env: dict | None = None
    ok_if: Callable[[Path], bool] | None = None  # for inputs run to completion: the output must show the problem


def rows(n: int | None = None) -> list[list[str]]:
    return [r.split(",") for r in WALK.read_text().splitlines()[:n]]


def write_rows(path: Path, table: list[list[str]]) -> None:
    path.write_text("\n".join(",".join(r) for r in table) + "\n")


def cases(t: Path) -> list[Case]:
    def csv(name: str, edit: Callable[[list[list[str]]], list[list[str]]], n: int = 300) -> Callable[[Path], None]:
        return lambda _: write_rows(t / name, edit(rows(n)))

    def put(name: str, content: bytes | str) -> Callable[[Path], None]:
        def make(_):
            (t / name).parent.mkdir(parents=True, exist_ok=True)
            (t / name).write_bytes(content if isinstance(content, bytes) else content.encode())

        return make

    def npz(name: str, **arrays) -> Callable[[Path], None]:
        return lambda _: np.savez(t / name, **arrays)

    def npy(name: str, array) -> Callable[[Path], None]:
        return lambda _: np.save(t / name, array)

    def turned(r: list[list[str]], degrees: float, order: str) -> list[list[str]]:
        from scipy.spatial.transform import Rotation

        a = np.array(r, dtype=float)
        turn = Rotation.from_euler("z", degrees, degrees=True)
        a[:, :3] = turn.apply(a[:, :3])
        q = (turn * Rotation.from_quat(a[:, 3:7])).as_quat()  # x, y, z, w
        a[:, 3:7] = q if order == "xyzw" else q[:, [3, 0, 1, 2]]
        return [[f"{v:.6f}" for v in row] for row in a]

    qpos = np.array(rows(300), dtype=float)
    wxyz = np.concatenate([qpos[:, :3], qpos[:, [6, 3, 4, 5]], qpos[:, 7:]], 1)
    check = lambda name: ["motions", "check", str(t / name), "--json", str(t / "checks.json")]  # noqa: E731
    evaluate = lambda *extra: ["sim2sim", "eval", "--out", str(t / "e.json"), *extra]  # noqa: E731
    train = lambda *extra: ["train", "expert", "--log-root", str(t / "runs"), "--num-envs", "2", *extra]  # noqa: E731
    manifest = lambda text: {"setup": put("m.json", text), "env": {"HGPT_CLUSTER_MANIFEST": str(t / "m.json")}}  # noqa: E731
    return [
        # Motion files ------------------------------------------------------------------------------------------
        Case("empty csv", check("empty.csv"), ("empty.csv", "empty"), put("empty.csv", "")),
        Case("csv with a header", check("header.csv"), ("header.csv",), csv("header.csv", lambda r: [["x"] * 36, *r])),
        Case(
            "truncated csv", check("cut.csv"), ("cut.csv", "truncated"), csv("cut.csv", lambda r: r[:-1] + [r[-1][:9]])
        ),
        Case("35 columns", check("c35.csv"), ("c35.csv", "35 columns"), csv("c35.csv", lambda r: [x[:35] for x in r])),
        Case(
            "NaN in a joint",
            check("nan.csv"),
            ("nan.csv", "NaN"),
            csv("nan.csv", lambda r: r[:9] + [r[9][:10] + ["nan"] + r[9][11:]] + r[10:]),
        ),
        Case(
            "inf in the root",
            check("inf.csv"),
            ("inf.csv", "inf"),
            csv("inf.csv", lambda r: r[:5] + [["inf"] + r[5][1:]] + r[6:]),
        ),
        Case(
            "non-unit quaternions",
            check("q2.csv"),
            ("q2.csv", "quaternion"),
            csv("q2.csv", lambda r: [x[:3] + [str(2 * float(v)) for v in x[3:7]] + x[7:] for x in r]),
        ),
        Case(
            "w-first quaternions in a CSV, heading 150",
            check("wfirst.csv"),
            ("wfirst.csv", "order"),
            csv("wfirst.csv", lambda r: turned(r, 150, "wxyz")),
        ),
        Case(
            "joints in degrees",
            check("deg.csv"),
            ("deg.csv", "degrees"),
            csv("deg.csv", lambda r: [x[:7] + [str(float(v) * 57.2958) for v in x[7:]] for x in r]),
        ),
        Case(
            "root height relative to the start",
            check("low.csv"),
            ("low.csv", "below the floor"),
            csv("low.csv", lambda r: [x[:2] + [str(float(x[2]) - 0.79)] + x[3:] for x in r]),
        ),
        Case(
            "joint columns swapped",
            check("swap.csv"),
            ("swap.csv", "joint order"),
            csv("swap.csv", lambda r: [x[:7] + x[7 + 15 :] + x[7 : 7 + 15] for x in r]),
        ),
        Case(
            "binary data named .csv",
            check("bin.csv"),
            ("bin.csv", "not a text CSV"),
            put("bin.csv", bytes(range(256)) * 40),
        ),
        Case(
            "binary data named .npz",
            check("bin.npz"),
            ("bin.npz", "not a readable NPZ"),
            put("bin.npz", bytes(range(256)) * 40),
        ),
        Case(
            "an NPZ of one repeated pose",
            check("frozen.npz"),
            ("frozen.npz", "same pose"),
            npz("frozen.npz", fps=np.array([30.0]), qpos=np.tile(wxyz[:1], (200_000, 1))),
        ),
        Case(
            "an NPZ with fps 0",
            check("fps0.npz"),
            ("fps0.npz", "frame rate"),
            npz("fps0.npz", fps=np.array([0.0]), qpos=wxyz),
        ),
        Case(
            "an NPZ of 0 frames",
            check("zero.npz"),
            ("zero.npz", "0 frames"),
            npz("zero.npz", fps=np.array([30.0]), qpos=wxyz[:0]),
        ),
        Case(
            "an NPZ of unknown keys",
            check("keys.npz"),
            ("keys.npz", "unknown NPZ layout"),
            npz("keys.npz", a=np.zeros(3)),
        ),
        Case("a .npy with no rate", check("walk.npy"), ("walk.npy", "fps"), npy("walk.npy", wxyz)),
        Case("a .npy of 35 columns", check("w_30fps.npy"), ("w_30fps.npy", "36"), npy("w_30fps.npy", wxyz[:, :35])),
        Case("a .txt motion", check("walk.txt"), ("walk.txt",), put("walk.txt", "1,2,3")),
        Case("a missing file", check("nope.csv"), ("nope.csv", "does not exist")),
        Case("a folder without motions", check("docs"), ("docs", "no motion files"), put("docs/notes.txt", "hi")),
        Case("--fps 0", [*check("ok.csv"), "--fps", "0"], ("fps", "0"), csv("ok.csv", lambda r: r)),
        Case("--fps -50", [*check("ok.csv"), "--fps", "-50"], ("fps", "-50"), csv("ok.csv", lambda r: r)),
        Case("--fps nan", [*check("ok.csv"), "--fps", "nan"], ("fps",), csv("ok.csv", lambda r: r)),
        Case("convert to a .csv name", ["motions", "convert", str(WALK), str(t / "out.csv")], ("out.csv", ".npz")),
        Case(
            "convert garbage",
            ["motions", "convert", str(t / "bin.csv"), str(t / "o.npz")],
            ("bin.csv",),
            put("bin.csv", bytes(range(256)) * 40),
        ),
        Case("render 0 seconds", ["render", str(WALK), "--out", str(t / "x.mp4"), "--seconds", "0"], ("--seconds",)),
        # Evaluation and policies -------------------------------------------------------------------------------
        Case(
            "eval with 0 envs", evaluate("--policy", "zero", "--motions", str(WALK), "--num-envs", "0"), ("--num-envs",)
        ),
        Case(
            "eval -1 seconds",
            evaluate("--policy", "zero", "--motions", str(WALK), "--max-seconds", "-1"),
            ("--max-seconds",),
        ),
        Case(
            "eval a 3-frame clip",
            evaluate("--policy", "zero", "--motions", str(t / "three.csv")),
            ("three", "shorter"),
            csv("three.csv", lambda r: r, 3),
        ),
        Case(
            "eval an empty folder",
            evaluate("--policy", "zero", "--motions", str(t / "void")),
            ("void",),
            lambda _: (t / "void").mkdir(),
        ),
        Case(
            "eval a policy file that is garbage",
            evaluate("--policy", str(t / "junk.pt"), "--motions", str(WALK)),
            ("junk.pt",),
            put("junk.pt", b"junk"),
        ),
        Case("eval a missing policy", evaluate("--policy", str(t / "none.pt"), "--motions", str(WALK)), ("none.pt",)),
        Case(
            "eval an ONNX that is garbage",
            evaluate("--policy", str(t / "junk.onnx"), "--motions", str(WALK)),
            ("junk.onnx",),
            put("junk.onnx", b"junk"),
        ),
        # Training ----------------------------------------------------------------------------------------------
        Case("train 0 envs", train("--task", "HGPT-Cluster-000", "--num-envs", "0"), ("--num-envs",)),
        Case(
            "train save interval 0", train("--task", "HGPT-Cluster-000", "--save-interval", "0"), ("--save-interval",)
        ),
        Case("train 0 iterations", train("--task", "HGPT-Cluster-000", "--max-iterations", "0"), ("--max-iterations",)),
        Case("train a task that is not a cluster", train("--task", "Walk-v0"), ("Walk-v0", "cluster")),
        Case("train an unknown cluster", train("--task", "HGPT-Cluster-777"), ("777",)),
        Case(
            "resume from config.json",
            train("--task", "HGPT-Cluster-000", "--resume", str(t / "r/config.json")),
            ("config.json", "not a checkpoint"),
            put("r/config.json", "{}"),
        ),
        Case("resume a missing folder", train("--task", "HGPT-Cluster-000", "--resume", str(t / "gone")), ("gone",)),
        Case(
            "resume an empty folder",
            train("--task", "HGPT-Cluster-000", "--resume", str(t / "void2")),
            ("void2", "no checkpoint"),
            lambda _: (t / "void2").mkdir(),
        ),
        Case(
            "a manifest that is a list",
            train("--task", "HGPT-Cluster-000"),
            ("m.json", "JSON object"),
            **manifest("[1]"),
        ),
        Case(
            "a manifest of another schema",
            train("--task", "HGPT-Cluster-000"),
            ("m.json", "schema_version"),
            **manifest('{"schema_version": 9, "clusters": {}}'),
        ),
        Case(
            "a manifest naming missing clips",
            train("--task", "HGPT-Cluster-000"),
            ("m.json", "do not exist"),
            **manifest('{"schema_version": 1, "clusters": {"000": ["g1_motions/x/gone.csv"]}}'),
        ),
        Case(
            "no motion data root",
            train("--task", "HGPT-Cluster-000"),
            ("HGPT_DATA_ROOT",),
            None,
            {"HGPT_DATA_ROOT": str(t / "nodata")},
        ),
        Case(
            "a menagerie without meshes",
            ["robot", "info"],
            ("MENAGERIE_ROOT", "assets"),
            lambda _: (
                (t / "men/unitree_g1").mkdir(parents=True)
                or (t / "men/unitree_g1/g1_mjlab.xml").write_text(
                    (Path(os.environ["MENAGERIE_ROOT"]) / "unitree_g1/g1_mjlab.xml").read_text()
                )
            ),
            {"MENAGERIE_ROOT": str(t / "men")},
        ),
        Case(
            "an empty menagerie folder",
            ["robot", "info"],
            ("MENAGERIE_ROOT",),
            lambda _: (t / "men2").mkdir(),
            {"MENAGERIE_ROOT": str(t / "men2")},
        ),
        Case(
            "experts eval of a missing checkpoint",
            ["experts", "eval", "--checkpoint", str(t / "x.pt"), "--registry", str(t / "reg.json")],
            ("x.pt", "does not exist"),
        ),
        Case(
            "experts eval into a malformed registry",
            ["experts", "eval", "--checkpoint", str(t / "x.pt"), "--registry", str(t / "bad.json")],
            ("bad.json",),
            put("bad.json", "{oops"),
        ),
        Case("distill from a missing registry", ["distill", "--registry", str(t / "none.json")], ("none.json",)),
        Case(
            "distill from a registry that retains none",
            ["distill", "--registry", str(t / "empty.json")],
            ("retains no expert",),
            put("empty.json", '{"schema_version": 1, "experts": {}}'),
        ),
        Case(
            "distill an unknown student",
            ["distill", "--registry", str(t / "empty.json"), "--student", "gpt-xl"],
            ("gpt-xl",),
            put("empty.json", '{"schema_version": 1, "experts": {}}'),
        ),
        Case(
            "distill steps not a multiple of H",
            ["distill", "--registry", str(t / "empty.json"), "--context", "8", "--steps-per-iteration", "12"],
            ("--steps-per-iteration",),
            put("empty.json", '{"schema_version": 1}'),
        ),
        Case(
            "export a config file",
            ["export", "onnx", str(t / "c.json")],
            ("c.json", "not a readable checkpoint"),
            put("c.json", "{}"),
        ),
        Case("export a missing checkpoint", ["export", "onnx", str(t / "gone.pt")], ("gone.pt",)),
        Case(
            "tensorrt without tensorrt", ["export", "tensorrt", str(t / "s.onnx")], ("tensorrt",), put("s.onnx", b"x")
        ),
        # Issue 27: files that would run code or lead out of their folder, malformed records, units, the network ---
        Case(
            "a checkpoint that would run code, exported",
            ["export", "onnx", str(t / "evil.pt"), "--out", str(t / "x")],
            ("evil.pt", "refused, not loaded"),
            lambda _: hostile.hostile_checkpoint(t / "evil.pt", t / "ran"),
        ),
        Case(
            "a checkpoint that would run code, evaluated as an expert",
            ["experts", "eval", "--checkpoint", str(t / "evil.pt"), "--registry", str(t / "r.json")],
            ("evil.pt", "refused, not loaded"),
            lambda _: hostile.hostile_checkpoint(t / "evil.pt", t / "ran"),
        ),
        Case(
            "a body model that would run code",
            ["retarget", str(t / "amass.npz"), "--out", str(t / "rt")],
            ("SMPLH_MALE.pkl", "refused rather than run"),
            lambda _: (hostile.amass_clip(t / "amass.npz"), hostile.hostile_body_model(t / "bm", t / "ran")),
            env={"HGPT_BODY_MODELS": str(t / "bm")},
        ),
        Case(
            "a registry naming /etc/passwd relatively",
            ["distill", "--registry", str(t / "reg.json")],
            ("reg.json", "leads out of the registry's folder"),
            lambda _: hostile.registry_file(t / "reg.json", checkpoint="../../../../../etc/passwd"),
        ),
        Case(
            "a registry record whose metrics are a string",
            ["distill", "--registry", str(t / "reg.json")],
            ("reg.json", "experts.900: metrics", "Fix"),
            lambda _: hostile.registry_file(t / "reg.json", metrics="good"),
        ),
        Case(
            "a manifest clip leading out of the data root",
            train("--task", "HGPT-Cluster-900"),
            ("m.json", "leads out of the data root"),
            **manifest(json.dumps({"schema_version": 1, "clusters": {"900": ["../../../../etc/hostname"]}})),
        ),
        Case(
            "ONNX external data outside its folder",
            ["sim2sim", "check", str(t / "p/m.onnx"), "--static-only"],
            ("m.onnx", "tensor 'weight'", "leads out of the model's folder"),
            lambda _: hostile.onnx_with_external_data(t / "p/m.onnx", "../outside/w.bin"),
        ),
        Case(
            "an AMC in radians under :DEGREES",
            ["retarget", str(t / "rad/02_01.amc"), "--out", str(t / "rt")],
            ("02_01.amc", ":RADIANS"),
            lambda _: (t / "rad").mkdir() or hostile.radians_under_degrees(AMC, t / "rad/02_01.amc"),
        ),
        Case(
            "teleop on every interface without --allow-network",
            ["teleop", "--source", "udp://0.0.0.0:9871", "--policy", str(t / "p.onnx")],
            ("--allow-network",),
        ),
        Case(
            "a main config with corpus.num_cpus 0",
            ["main", "--config", str(t / "job.yaml"), "--out", str(t / "job")],
            ("corpus: num_cpus=0",),
            lambda _: (t / "job.yaml").write_text(
                (Path(__file__).resolve().parents[1] / "source/humanoid_gpt/jobs/presets/demo.yaml")
                .read_text()
                .replace("num_cpus: 2", "num_cpus: 0")
            ),
        ),
        # Human mocap -------------------------------------------------------------------------------------------
        Case(
            "retarget a truncated BVH",
            ["retarget", str(t / "cut.bvh"), "--out", str(t / "rt")],
            ("cut.bvh",),
            lambda _: (t / "cut.bvh").write_text(BVH.read_text()[: len(BVH.read_text()) // 2]),
        ),
        Case(
            "retarget an AMC without its ASF",
            ["retarget", str(t / "lonely/09_01.amc"), "--out", str(t / "rt")],
            ("09_01.amc", "ASF"),
            lambda _: (t / "lonely").mkdir() or (t / "lonely/09_01.amc").write_text(AMC.read_text()),
        ),
        Case(
            "retarget a BVH with a missing channel line",
            ["retarget", str(t / "nochan.bvh"), "--out", str(t / "rt")],
            ("nochan.bvh",),
            lambda _: (t / "nochan.bvh").write_text(
                BVH.read_text().replace("CHANNELS 3 Zrotation Yrotation Xrotation\n", "", 1)
            ),
        ),
        Case(
            "retarget with a mapping naming a missing joint",
            ["retarget", str(BVH), "--out", str(t / "rt"), "--mapping", str(t / "map.json")],
            ("map.json",),
            put("map.json", json.dumps({"joints": {"pelvis": "NoSuchJoint"}})),
        ),
    ]


def classify(code: int, err: str, fragments: tuple[str, ...]) -> str:
    if "Traceback" in err or "error: unexpected" in err or code not in (0, 1, 2):
        return "traceback"
    if code == 0:
        return "silent"
    return "clear" if all(f.lower() in err.lower() for f in fragments) else "unclear"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path)
    p.add_argument("--only", nargs="*")
    args = p.parse_args()
    results, counts = [], {"clear": 0, "unclear": 0, "traceback": 0, "silent": 0, "critical": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(Path(tmp)):
            if args.only and case.name not in args.only:
                continue
            if case.setup is not None:
                case.setup(Path(tmp))
            env = {**os.environ, **(case.env or {}), "HGPT_OUTPUT_ROOT": str(Path(tmp) / "out")}
            run = subprocess.run([*HGPT, *case.argv], capture_output=True, text=True, env=env, timeout=600)
            err = run.stderr + run.stdout
            if "--json" in case.argv and (Path(tmp) / "checks.json").is_file():  # the table wraps long findings
                err += (Path(tmp) / "checks.json").read_text()
                (Path(tmp) / "checks.json").unlink()
            verdict = classify(run.returncode, err, case.fragments)
            if (Path(tmp) / "ran").exists():  # a hostile file's payload created its marker: code ran from a file
                verdict = "critical"
                (Path(tmp) / "ran").unlink()
            counts[verdict] += 1
            last = [line for line in err.strip().splitlines() if line.strip()][-1:] or [""]
            results.append({"case": case.name, "exit": run.returncode, "verdict": verdict, "message": last[0][:300]})
            print(f"{verdict:9s} {run.returncode}  {case.name}: {last[0][:160]}", flush=True)
    print(json.dumps(counts))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"counts": counts, "cases": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
