"""The ``hgpt`` command: the project's operations for people with or without Isaac Lab.

Each subcommand is a few lines over library calls; later stages add their own subcommands here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from humanoid_gpt import configure_process
from humanoid_gpt.errors import HGPTError


def _main(args: argparse.Namespace) -> int:
    import dataclasses

    from humanoid_gpt.jobs.config import load_main_config, preset_path
    from humanoid_gpt.jobs.pipeline import run_main

    if args.print_config:
        print(preset_path(args.print_config).read_text(), end="")
        return 0
    cfg = load_main_config(args.config or preset_path(args.preset), args.override or ())
    if args.out:
        cfg = dataclasses.replace(cfg, output=str(args.out.resolve()))
    out = run_main(cfg, until=args.until)
    if args.until in (None, "report"):
        print(f"report: {out / 'report' / 'report.md'} (and report.html)")
    else:  # no report yet: name what the stages made (each stage's artefact is listed above)
        print(f"stopped after {args.until}: its output is in {out / args.until}; run without --until for the report")
    return 0


def _motions_check(args: argparse.Namespace) -> int:
    from humanoid_gpt.io_utils import write_text_atomic
    from humanoid_gpt.motion.check import check_files, print_checks
    from humanoid_gpt.motion.io import find_motion_files
    from humanoid_gpt.robot import load_g1

    checks = check_files(find_motion_files(args.paths), load_g1(), fps=args.fps, progress=True)
    print_checks(checks)
    if args.json:
        write_text_atomic(args.json, json.dumps([c.to_dict() for c in checks], indent=2))
    invalid = [c for c in checks if c.status == "invalid"]
    print(f"{len(checks) - len(invalid)} valid, {len(invalid)} invalid")
    return 1 if invalid else 0


def _motions_convert(args: argparse.Namespace) -> int:
    from humanoid_gpt.motion.io import load_clip, save_beyondmimic_npz, save_clip
    from humanoid_gpt.robot import load_g1

    if args.dst.suffix != ".npz":
        raise HGPTError(f"{args.dst}: both output formats ({args.to}) are NPZ files; name the output <name>.npz")
    g1 = load_g1()
    clip = load_clip(args.src, fps=args.src_fps, g1=g1)
    if args.fps is not None:
        clip = clip.resample(args.fps)
    if args.to == "beyondmimic":
        save_beyondmimic_npz(clip, args.dst, g1, joint_order=args.joint_order)
    else:
        save_clip(clip, args.dst)
    print(f"{args.src} -> {args.dst} ({args.to}, {clip.num_frames} frames at {clip.fps:g} fps)")
    return 0


def _retarget(args: argparse.Namespace) -> int:
    from humanoid_gpt.governance.retarget import retarget_to

    options = dict(skeleton=args.skeleton, mapping=args.mapping, height=args.height, fps=args.out_fps, src_fps=args.fps)
    results = retarget_to(args.src, args.out, progress=True, **options)
    if not results:
        raise HGPTError(f"no mocap files (.bvh, .amc, .npy, .npz) in {', '.join(map(str, args.src))}")
    for r in results:
        print(f"{r['status']:8s} {r['message']}")
    bad = [r for r in results if r["status"] == "error" or (r["status"] == "flagged" and not args.allow_flagged)]
    print(f"{len(results) - len(bad)} of {len(results)} retargeted into {args.out}")
    return 1 if bad else 0


def _corpus_filter(args: argparse.Namespace) -> int:
    from humanoid_gpt.governance.filter import filter_clips, load_filter_config, print_decisions
    from humanoid_gpt.io_utils import write_text_atomic
    from humanoid_gpt.robot import load_g1

    decisions = filter_clips(args.paths, load_filter_config(args.config), load_g1(), fps=args.fps, progress=True)
    print_decisions(decisions)
    if args.json:
        write_text_atomic(args.json, json.dumps([d.to_dict() for d in decisions], indent=1))
    return 0


def _corpus_build(args: argparse.Namespace) -> int:
    from humanoid_gpt.governance.corpus import build_corpus, print_summary
    from humanoid_gpt.governance.corpus_config import load_corpus_config

    config = load_corpus_config(args.config, data_root=args.data_root, output=args.out, executor=args.executor)
    summary = build_corpus(config, progress=True)
    print_summary(summary)
    return 1 if summary.errors and args.strict else 0


def _corpus_export(args: argparse.Namespace) -> int:
    from humanoid_gpt.catalog.store import export_clips

    paths = export_clips(args.corpus, args.out, args.split, args.sources)
    print(f"{len(paths)} clips -> {args.out}/<split>/<source>/")
    return 0


def _hme(args: argparse.Namespace) -> int:
    from humanoid_gpt.hme import pipeline

    step = args.hme_command
    if step == "build":
        out = pipeline.build(args.config)
        print(f"manifest: {out['manifest']}\nreport: {out['report']}\ndiversity: {out['diversity']}")
    elif step == "fit":
        for partition, path in pipeline.fit(args.config).items():
            print(f"{partition}: {path}")
    elif step == "embed":
        print(json.dumps(pipeline.embed(args.config), default=str))
    elif step == "cluster":
        print(f"manifest: {pipeline.cluster(args.config)} (HGPT_CLUSTER_MANIFEST=<it> makes its HGPT-Cluster tasks)")
    else:
        print(f"report: {pipeline.report(args.config)}")
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from humanoid_gpt import settings
    from humanoid_gpt.data.fetch import fetch_lafan1

    dest = args.dest or settings.g1_motions_dir("lafan1")
    if args.if_missing and dest.is_dir() and any(dest.glob("*.csv")):
        print(f"motions already in {dest}")
        return 0
    files = fetch_lafan1(dest)
    print(f"{len(files)} LAFAN1-G1 clips verified in {files[0].parent}")
    return 0


def _robot_info(args: argparse.Namespace) -> int:
    from humanoid_gpt.robot import load_g1
    from humanoid_gpt.robot.info import print_robot

    print_robot(load_g1())
    return 0


def _robot_usd(args: argparse.Namespace) -> int:
    from humanoid_gpt.robot import load_g1
    from humanoid_gpt.robot.usd import g1_usd

    print(g1_usd(load_g1()))
    return 0


def _render(args: argparse.Namespace) -> int:
    from humanoid_gpt.motion.io import load_clip
    from humanoid_gpt.render import render_clip, write_filmstrip, write_video
    from humanoid_gpt.robot import load_g1

    g1 = load_g1()
    frames = render_clip(g1, load_clip(args.clip, g1=g1), fps=args.fps, max_seconds=args.seconds)
    if args.out.suffix == ".png":
        write_filmstrip(frames, args.out)
    else:
        write_video(frames, args.out, fps=args.fps)
    print(args.out)
    return 0


def _sim2sim_eval(args: argparse.Namespace) -> int:
    from humanoid_gpt.deploy.policies import policy_setup
    from humanoid_gpt.deploy.sim2sim import policy_motions, report_scores, score_policies
    from humanoid_gpt.robot import load_g1

    g1 = load_g1()
    setups = [policy_setup(p, g1, args.layout, args.relative_actions) for p in args.policy]  # refuse before loading
    windows = (args.max_seconds, args.windows, args.window_seconds)
    motions = policy_motions(args.policy, setups, g1, args.motions, args.fps, *windows)
    results = score_policies(args.policy, setups, motions, args.num_envs, args.threads, args.seed, args.video)
    report_scores(results, args.out, len(motions[0]) if args.motions else None)
    return 0


def _train_expert(args: argparse.Namespace) -> int:
    from humanoid_gpt.experts.train import ExpertRun, train_expert
    from humanoid_gpt.flags import from_args
    from humanoid_gpt.robot import load_g1

    print(f"run: {train_expert(from_args(ExpertRun, args), load_g1())}")
    return 0


def _train_all(args: argparse.Namespace) -> int:
    from humanoid_gpt.catalog.manifests import active_manifest
    from humanoid_gpt.experts.fanout import cluster_runs, train_all
    from humanoid_gpt.experts.train import ExpertRun
    from humanoid_gpt.flags import from_args

    run = from_args(ExpertRun, args)
    runs = cluster_runs(active_manifest(run.manifest), run, args.clusters)
    for run_dir in train_all(runs, args.executor, args.slurm_folder, ray_address=args.ray_address):
        print(f"run: {run_dir}")
    return 0


def _experts_eval(args: argparse.Namespace) -> int:
    from humanoid_gpt.catalog.manifests import active_manifest
    from humanoid_gpt.catalog.refs import load_clip_refs
    from humanoid_gpt.experts.checkpoint import load_checkpoint
    from humanoid_gpt.experts.evaluation import expert_cluster, judge_expert
    from humanoid_gpt.experts.registry import ExpertRegistry, RetentionRule
    from humanoid_gpt.metrics import write_report
    from humanoid_gpt.robot import load_g1

    g1 = load_g1()
    registry = ExpertRegistry.load(args.registry) if args.registry.exists() else ExpertRegistry(rule=RetentionRule())
    task = load_checkpoint(args.checkpoint)["infos"]["hgpt"]["task"]
    cluster = expert_cluster(args.checkpoint, task, args.cluster)
    clips = load_clip_refs(active_manifest(args.manifest).clip_refs(cluster), g1, progress=True)
    if args.max_seconds:
        clips = [c.slice(0, int(args.max_seconds * c.fps) + 1) for c in clips]
    judged = judge_expert(registry, g1, args.checkpoint, clips, cluster, args.num_envs, args.checkpoint.resolve())
    if args.out:
        write_report(judged.result, args.out)
    registry.save(args.registry)
    agg = judged.result["aggregate"]
    print(
        f"{task}: SR {agg['sr_percent']:.1f}%, MPKPE {agg['mpkpe_mm']:.1f} mm -> {judged.record.verdict} "
        f"({args.registry})"
    )
    return 0


def _distill(args: argparse.Namespace) -> int:
    from humanoid_gpt.flags import from_args
    from humanoid_gpt.jobs.distill import run_distill
    from humanoid_gpt.robot import load_g1
    from humanoid_gpt.students.distill import DistillRun

    print(f"run: {run_distill(from_args(DistillRun, args), load_g1())}")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from humanoid_gpt.deploy.export import ExportSettings, export_student
    from humanoid_gpt.flags import from_args
    from humanoid_gpt.robot import load_g1

    done = export_student(
        args.checkpoint, args.out or args.checkpoint.parent, load_g1(), from_args(ExportSettings, args)
    )
    print(f"streaming: {done.streaming}\nwindowed: {done.windowed}")
    for scheme, path in done.quantized.items():
        print(f"{scheme}: {path}")
    return 0


def _sim2sim_check(args: argparse.Namespace) -> int:
    from humanoid_gpt.deploy.check import run_check

    return run_check(args.policy, args.robot, args.json, dynamic=not args.static_only, seconds=args.seconds)


def _teleop(args: argparse.Namespace) -> int:
    from humanoid_gpt.deploy.teleop import format_status, load_key, print_teleop, run_teleop
    from humanoid_gpt.io_utils import write_text_atomic

    result = run_teleop(
        args.source,
        args.policy,
        seconds=args.seconds,
        delay_s=args.delay_ms / 1e3,
        mode_machine=args.mode_machine,
        realtime=args.realtime,
        key=load_key(args.key_file),
        allow_network=args.allow_network,
        fps=args.fps,
        on_status=lambda status: print(format_status(status), file=sys.stderr, flush=True),
    )
    print_teleop(result)
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=1))
    return 1 if result["stopped"] else 0


def _export_tensorrt(args: argparse.Namespace) -> int:
    from humanoid_gpt.deploy.tensorrt import build_engine

    print(f"engine: {build_engine(args.onnx, args.out, args.fp16, args.max_batch)}")
    return 0


def _positive(kind: type):
    from humanoid_gpt.flags import bounded

    return bounded(kind, 0, strict=True)


MOTION_FPS_HELP = (
    "frame rate of G1 motion files that store none (CSV, .npy); default: the file name, a manifest.json or dataset "
    "card beside the files, or the dataset's documented rate (LAFAN1-G1: 30); otherwise CSVs are read at 30 fps "
    "with a warning and .npy files are refused"
)


def build_parser() -> argparse.ArgumentParser:
    from humanoid_gpt.deploy.export import ExportSettings
    from humanoid_gpt.experts.train import ExpertRun
    from humanoid_gpt.flags import add_flags, destination
    from humanoid_gpt.jobs.config import PRESETS
    from humanoid_gpt.jobs.pipeline import STAGES
    from humanoid_gpt.students.distill import DistillRun

    out_file, out_folder = destination(folder=False), destination(folder=True)
    p = argparse.ArgumentParser(
        prog="hgpt", description="Humanoid-GPT: zero-shot whole-body motion tracking for the G1"
    )
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("main", help="the whole pipeline, human mocap to a validated tracker, with a report")
    which = m.add_mutually_exclusive_group()
    which.add_argument("--preset", choices=PRESETS, default="demo", help="a packaged preset (default: demo)")
    which.add_argument("--config", type=Path, help="a preset file of your own (start from --print-config demo)")
    which.add_argument("--print-config", choices=PRESETS, metavar="PRESET", help="print a preset's file and exit")
    m.add_argument(
        "--override",
        type=Path,
        action="append",
        metavar="FILE",
        help="a YAML file of fields merged over the preset, in order (configs/main/gpu-smoke.yaml: the gpu preset at "
        "smoke sizes); repeatable",
    )
    m.add_argument("--out", type=out_folder, help="output folder (default: $HGPT_OUTPUT_ROOT/main/<preset name>)")
    m.add_argument("--until", choices=STAGES, help="stop after this stage")
    m.set_defaults(func=_main)

    motions = sub.add_parser("motions", help="motion files").add_subparsers(dest="motions_command", required=True)
    c = motions.add_parser("check", help="validate motion files; exit 1 if any is invalid")
    c.add_argument("paths", nargs="+", type=Path, help="files or folders")
    c.add_argument("--json", type=out_file, help="also write the checks as JSON")
    c.add_argument("--fps", type=float, help=MOTION_FPS_HELP)
    c.set_defaults(func=_motions_check)
    v = motions.add_parser("convert", help="convert a motion file to our NPZ or BeyondMimic NPZ")
    v.add_argument("src", type=Path)
    v.add_argument("dst", type=out_file)
    v.add_argument("--to", choices=("hgpt", "beyondmimic"), default="hgpt")
    v.add_argument("--fps", type=_positive(float), help="resample to this rate")
    v.add_argument("--src-fps", type=float, help="frame rate of a source that does not store one")
    v.add_argument("--joint-order", choices=("isaaclab", "unitree"), default="isaaclab", help="BeyondMimic output")
    v.set_defaults(func=_motions_convert)

    rg = sub.add_parser("retarget", help="retarget human mocap (BVH, ASF/AMC, joint positions) to the G1")
    rg.add_argument("src", nargs="+", type=Path, help="mocap files or folders")
    rg.add_argument("--out", type=out_folder, required=True, help="folder for <name>.npz and <name>.retarget.json")
    who = rg.add_mutually_exclusive_group()
    who.add_argument("--skeleton", choices=("lafan1", "bvh", "cmu", "smpl"), help="correspondence preset")
    who.add_argument("--mapping", type=Path, help="a YAML/JSON correspondence for another skeleton")
    rg.add_argument("--height", type=_positive(float), help="performer height in metres (default: from the skeleton)")
    rg.add_argument(
        "--fps",
        type=_positive(float),
        help="frame rate of files that store none (AMC, replacing CMU's 120 Hz; joint-position .npy, .npz without a "
        "rate); a file that stores another rate (BVH) is read at its own, with a warning: --out-fps resamples",
    )
    rg.add_argument("--out-fps", type=_positive(float), help="resample the retargeted clips to this rate")
    rg.add_argument("--allow-flagged", action="store_true", help="exit 0 even when some frames could not be followed")
    rg.set_defaults(func=_retarget)

    corpus = sub.add_parser("corpus", help="filter clips and build training corpora").add_subparsers(
        dest="corpus_command", required=True
    )
    cf = corpus.add_parser("filter", help="keep / trim / drop motion files, with every reason and its frames")
    cf.add_argument("paths", nargs="+", type=Path, help="motion files or folders (G1 clips, retargeted clips)")
    cf.add_argument("--json", type=out_file, help="also write the decisions as JSON")
    cf.add_argument("--config", type=Path, help="filter thresholds: a YAML of FilterConfig fields or a corpus config")
    cf.add_argument("--fps", type=_positive(float), help="frame rate of files that store none")
    cf.set_defaults(func=_corpus_filter)
    cb = corpus.add_parser("build", help="build a sharded corpus with cached kinematics, manifest and card")
    cb.add_argument("config", type=Path, help="corpus config (YAML), e.g. configs/corpus/shared.yaml")
    cb.add_argument("--out", type=out_folder, help="corpus folder (default: the config's output)")
    cb.add_argument("--data-root", type=Path, help="root of relative source paths (default: $HGPT_DATA_ROOT)")
    cb.add_argument("--executor", choices=("local", "ray"), help="default: the config's executor")
    cb.add_argument("--strict", action="store_true", help="exit 1 when a source file could not be read")
    cb.set_defaults(func=_corpus_build)
    ce = corpus.add_parser("export", help="write a corpus's clips as clip files (<out>/<split>/<source>/<name>.npz)")
    ce.add_argument("corpus", type=Path, help="a corpus folder (hgpt corpus build)")
    ce.add_argument("--out", type=out_folder, required=True)
    ce.add_argument("--split", nargs="+", choices=("train", "val", "test"), help="default: every split")
    ce.add_argument("--sources", nargs="+", help="only these sources (default: all)")
    ce.set_defaults(func=_corpus_export)

    hme = sub.add_parser("hme", help="Harmonic Motion Embedding: periodic autoencoders, clusters, diversity")
    hme_steps = hme.add_subparsers(dest="hme_command", required=True)
    for step, text in (
        ("build", "fit, embed, cluster and report in one go"),
        ("fit", "train the periodic autoencoders (one per partition; resumable)"),
        ("embed", "embed clip segments (incremental: only new or changed clips)"),
        ("cluster", "K-Means on the embeddings -> the cluster manifest the HGPT-Cluster tasks read"),
        ("report", "Markdown report with plots"),
    ):
        h = hme_steps.add_parser(step, help=text)
        h.add_argument("config", nargs="?", type=Path, help="YAML config (default: the built-in settings)")
        h.set_defaults(func=_hme)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    f = data.add_parser("fetch", help="download the default motions (LAFAN1 retargeted to the G1)")
    f.add_argument("--dest", type=Path, help="default: $HGPT_DATA_ROOT/g1_motions/lafan1")
    f.add_argument("--if-missing", action="store_true", help="do nothing when the folder already holds clips")
    f.set_defaults(func=_data_fetch)

    robot = sub.add_parser("robot", help="the G1").add_subparsers(dest="robot_command", required=True)
    robot.add_parser("info", help="joints, limits, gains").set_defaults(func=_robot_info)
    robot.add_parser("usd", help="convert the G1 MJCF to USD (cached) and print its path").set_defaults(func=_robot_usd)

    sim = sub.add_parser("sim2sim", help="the native MuJoCo harness").add_subparsers(dest="sim_command", required=True)
    e = sim.add_parser("eval", help="run a policy over clips and write the paper's metrics as JSON")
    e.add_argument(
        "--policy",
        required=True,
        action="append",
        help="'reference', 'zero', a student checkpoint (.pt), a streaming student ONNX, another lab's tracker ONNX "
        "(TWIST2, holosoma, mjlab / BeyondMimic, the Humanoid-GPT release; recognised from the file), or a TorchScript "
        "file; repeat to score several on identical windows",
    )
    e.add_argument(
        "--layout",
        help="force another lab's policy layout for a renamed or re-exported file (twist2, holosoma, mjlab, "
        "humanoid-gpt-release)",
    )
    e.add_argument("--windows", type=_positive(int), help="score N windows per clip, spread through it")
    e.add_argument("--window-seconds", type=_positive(float), default=10.0, help="length of each window (s)")
    e.add_argument(
        "--motions",
        nargs="+",
        type=Path,
        help="motion files or folders (default: the reference motion inside each policy file: holosoma's, mjlab's, "
        "BeyondMimic's)",
    )
    e.add_argument("--out", type=out_file, required=True, help="the metrics JSON")
    e.add_argument("--num-envs", type=_positive(int), default=16)
    e.add_argument("--threads", type=_positive(int), default=2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--fps", type=float, help=MOTION_FPS_HELP)
    e.add_argument("--max-seconds", type=_positive(float), help="evaluate only the first seconds of each clip")
    e.add_argument("--relative-actions", action="store_true", help="actions relative to the next reference pose")
    e.add_argument(
        "--video",
        type=Path,
        help="also render the first clip's episode beside its reference (MP4); several policies: side by side",
    )
    e.set_defaults(func=_sim2sim_eval)
    sc = sim.add_parser(
        "check", help="check a policy file (ours or BeyondMimic/mjlab) against the robot model; exit 1 on a mismatch"
    )
    sc.add_argument("policy", type=Path)
    sc.add_argument("--robot", type=Path, help="the robot's MJCF (default: mujoco-menagerie's G1)")
    sc.add_argument("--json", type=out_file, help="also write the items and standing trials as JSON")
    sc.add_argument("--seconds", type=_positive(float), default=4.0, help="length of the standing trial")
    sc.add_argument("--static-only", action="store_true", help="skip the standing trial in MuJoCo")
    sc.set_defaults(func=_sim2sim_check)

    tp = sub.add_parser(
        "teleop", help="drive the simulated G1 from a mocap file or a UDP stream (deploy/teleop.py, docs/teleop.md)"
    )
    tp.add_argument(
        "--source", required=True, help="a mocap file (.bvh, .amc, .npy, .npz) or udp://HOST:PORT (HOST: loopback)"
    )
    tp.add_argument("--policy", type=Path, required=True, help="a streaming student ONNX")
    tp.add_argument("--seconds", type=float, default=10.0, help="session length")
    tp.add_argument("--delay-ms", type=float, default=60.0, help="jitter-buffer playout delay (0 to 1000)")
    tp.add_argument("--mode-machine", type=int, default=0, help="copied from rt/lowstate on a robot")
    tp.add_argument("--realtime", action="store_true", help="play a file at its own rate, not as fast as possible")
    tp.add_argument("--fps", type=_positive(float), help="frame rate of a source file that stores none (AMC, .npy)")
    tp.add_argument(
        "--allow-network",
        action="store_true",
        help="listen on an address other than loopback (udp://0.0.0.0:PORT: every interface), with a warning",
    )
    tp.add_argument(
        "--key-file",
        type=Path,
        help="the shared key (HMAC-SHA256 over each datagram; unsigned frames are dropped); default: "
        "$HGPT_TELEOP_KEY, else none",
    )
    tp.add_argument("--json", type=out_file, help="also write the counters and latencies as JSON")
    tp.set_defaults(func=_teleop)

    train = sub.add_parser("train", help="training").add_subparsers(dest="train_command", required=True)
    t = train.add_parser("expert", help="train one cluster expert with PPO")
    add_flags(t, ExpertRun, required=("task",))
    t.set_defaults(func=_train_expert)

    experts = sub.add_parser("experts", help="trained experts").add_subparsers(dest="experts_command", required=True)
    x = experts.add_parser("eval", help="evaluate an expert on its cluster's clips and record it in the registry")
    x.add_argument("--checkpoint", type=Path, required=True)
    x.add_argument("--registry", type=out_file, default=Path("experts.json"), help="the registry file to update")
    x.add_argument("--cluster", help="the manifest cluster it was trained on (default: from its task id)")
    x.add_argument("--manifest", type=Path, help="cluster manifest (default: $HGPT_CLUSTER_MANIFEST or the default)")
    x.add_argument("--out", type=out_file, help="also write the full metrics JSON")
    x.add_argument("--num-envs", type=_positive(int), default=16)
    x.add_argument("--max-seconds", type=_positive(float), help="evaluate only the first seconds of each clip")
    x.set_defaults(func=_experts_eval)

    a = train.add_parser("all", help="train every cluster of the manifest: locally, on Ray or on SLURM (submitit)")
    a.add_argument("--executor", choices=("local", "ray", "submitit"), default="local")
    a.add_argument("--clusters", nargs="+", help="only these cluster ids (default: all)")
    add_flags(a, ExpertRun, exclude=("task",))
    a.add_argument("--slurm-folder", type=Path, help="submitit's job folder (default outputs/submitit)")
    a.add_argument("--ray-address", help="an existing Ray cluster (default: start a local one)")
    a.set_defaults(func=_train_all)

    d = sub.add_parser("distill", help="distill the registry's retained experts into one student (parallel DAgger)")
    add_flags(d, DistillRun)
    d.set_defaults(func=_distill)

    export = sub.add_parser("export", help="export a student").add_subparsers(dest="export_command", required=True)
    o = export.add_parser("onnx", help="write the streaming and windowed ONNX graphs, with deployment metadata")
    o.add_argument("checkpoint", type=Path)
    o.add_argument("--out", type=out_folder, help="folder (default: beside the checkpoint)")
    o.add_argument(
        "--quantize",
        nargs="*",
        default=[],
        choices=("int8-dynamic", "int8-weights", "int4-weights"),
        help="also write quantized copies of the streaming graph",
    )
    add_flags(o, ExportSettings, exclude=("tensorrt",))  # the parity check's steps and tolerance
    o.set_defaults(func=_export_onnx)
    rt = export.add_parser("tensorrt", help="build a TensorRT engine from an exported ONNX (NVIDIA GPU)")
    rt.add_argument("onnx", type=Path)
    rt.add_argument("--out", type=out_file, help="engine file (default: beside the ONNX, .engine)")
    rt.add_argument("--fp16", action="store_true")
    rt.add_argument("--max-batch", type=_positive(int), default=4096)
    rt.set_defaults(func=_export_tensorrt)

    r = sub.add_parser("render", help="render a motion file on the G1 to MP4 (or a PNG filmstrip)")
    r.add_argument("clip", type=Path)
    r.add_argument("--out", type=out_file, required=True)
    r.add_argument("--fps", type=_positive(float), default=30.0)
    r.add_argument("--seconds", type=_positive(float), default=10.0)
    r.set_defaults(func=_render)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers and ``kill`` send) raised as an interrupt, so every handler that tidies up after
    Ctrl-C (checkpoints, teleop's damping command) does the same for it."""


def _terminate(signum: int, frame) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    configure_process()
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return args.func(args)
    except (HGPTError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        print(
            f"interrupted ({signal.Signals(signum).name}): finished files are complete; rerun the same command to "
            "resume",
            file=sys.stderr,
        )
        return 128 + signum  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM
    except Exception as e:  # a bug or an input no check caught: say so in one line, the traceback on request
        if os.environ.get("HGPT_DEBUG"):
            raise
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(
            f"error: unexpected {type(e).__name__}: {e} (at {Path(where.filename).name}:{where.lineno}). This is a "
            "bug or an input hgpt does not check yet: please report it with the command; HGPT_DEBUG=1 shows the "
            "traceback",
            file=sys.stderr,
        )
        return 3
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
