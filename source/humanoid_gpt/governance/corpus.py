"""Building a training corpus: sources -> G1 clips (retargeted when human) -> filtered -> time-warped -> a sharded,
memory-mapped corpus at one rate with forward kinematics cached, a Parquet manifest and a dataset card.

    >>> from humanoid_gpt.governance.corpus import build_corpus, load_corpus_config
    >>> summary = build_corpus(load_corpus_config("configs/corpus/shared.yaml"))   # doctest: +SKIP

How it runs (resumable, idempotent):

1. **Plan** (nothing is written before it succeeds): the config is checked (every source names existing files of a
   known format and a licence) and each source file becomes a *work unit* whose key hashes the file's sha256 and
   everything that changes its result (format and reader/retarget options, labels, filter and warp settings, rate,
   cached bodies, dtype, the robot model, :data:`UNIT_VERSION`).
2. **Units** (a map over sequences: in this process, or on Ray with ``executor: ray``): read or retarget, filter
   (:mod:`.filter`), cut the kept segments, warp them (:mod:`.warp`), compute the per-frame arrays
   (:func:`~humanoid_gpt.catalog.store.clips_arrays`: one forward-kinematics pass per file) and write
   ``<output>/.units/<key>.npz`` atomically with the decision and a content hash per clip. A unit whose file exists
   (and whose clips still hash to their recorded hashes) is skipped, so a ``kill -9`` at any moment loses at most
   the units in flight.
3. **Assembly** (in the driver, from the unit files only): rows, duplicates by content hash, performer-disjoint
   splits, shards per split (:mod:`.store`; each written into a fresh folder and renamed, checksummed), the Parquet
   manifest, ``filter_report.json``, the dataset card (:mod:`.card`), and ``index.json`` last. A shard whose files no
   longer match their sha256 is rebuilt; when everything matches, a rerun writes nothing.

Splits are by performer (LAFAN1 subjects, G1 Moves performers from its manifest, CMU subjects): performers are sorted
by frames (largest first, then name) and each goes to the split furthest below its target share, so no performer is
in two splits; ``splits.assign`` pins performers. A clip without a performer is its own group (the card says so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humanoid_gpt.catalog.store import (
    ARRAYS,
    INDEX,
    MANIFEST,
    SCHEMA,
    SCHEMA_VERSION,
    SHARDS,
    CorpusIndex,
    check_shard,
    content_hash,
    manifest_schema,
    shard_digest,
    warp_name,
    write_shard,
)
from humanoid_gpt.errors import HGPTError
from humanoid_gpt.governance.corpus_config import REPORT, SPLITS, CorpusConfig, SplitConfig, load_corpus_config
from humanoid_gpt.governance.corpus_units import UNITS, UnitTask, plan_units, read_unit_meta, run_unit, unit_intact
from humanoid_gpt.governance.filter_decision import FilterDecision, Reason
from humanoid_gpt.io_utils import atomic_write, sha256_file, write_text_atomic
from humanoid_gpt.runs import config_hash

# The build --------------------------------------------------------------------------------------------------------


@dataclass
class CorpusSummary:
    """What a build did and made (the numbers of the card)."""

    output: Path
    clips: int
    frames: int
    hours: float
    status_counts: dict[str, int]
    hours_by_source: dict[str, float]
    units_total: int
    units_computed: int
    units_reused: int
    shards_written: int
    shards_reused: int
    seconds: float
    up_to_date: bool = False
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        what = (
            "up to date: nothing to do"
            if self.up_to_date
            else (
                f"{self.units_computed} unit(s) computed, {self.units_reused} reused; {self.shards_written} shard(s) "
                f"written, {self.shards_reused} reused"
            )
        )
        per = ", ".join(f"{s} {h:.2f} h" for s, h in self.hours_by_source.items())
        return (
            f"{self.output}: {self.clips} clips, {self.frames:,} frames, {self.hours:.2f} h ({per}); {what}; "
            f"{self.seconds:.1f} s"
        )


UnitHook = Callable[[UnitTask, dict, bool], None]


def build_corpus(
    config: CorpusConfig | str | Path,
    progress: bool = True,
    on_unit: UnitHook | None = None,
) -> CorpusSummary:
    """Build (or finish, or check) the corpus of ``config`` (module docstring). ``on_unit(task, meta, cached)`` is
    called in this process after each unit is done or found done (progress reporting; tests raise from it to
    simulate a crash)."""
    start = time.perf_counter()
    cfg = config if isinstance(config, CorpusConfig) else load_corpus_config(config)
    tasks = plan_units(cfg, progress)  # every config error is raised here, before anything is written
    with _build_lock(Path(cfg.output)):
        metas: dict[str, dict] = {}
        todo: dict[str, UnitTask] = {}  # by key: identical files (same key) are one unit
        for task in tasks:
            meta = metas.get(task.key) or read_unit_meta(task.unit_path, task.key)
            if meta is not None and (task.key in metas or unit_intact(task.unit_path, meta)):
                metas[task.key] = meta
                if on_unit:
                    on_unit(task, meta, True)
            else:
                todo.setdefault(task.key, task)
        computed = _run_units(cfg, list(todo.values()), metas, progress, on_unit)
        for task in tasks:  # identical files under two sources share a unit
            if task.key not in metas:
                metas[task.key] = read_unit_meta(task.unit_path, task.key) or {}
        errors = [m["error"] for m in metas.values() if m.get("status") == "error"]
        if errors and cfg.on_error == "fail":
            raise HGPTError(
                f"{len(errors)} source file(s) could not be used (on_error: fail):\n  " + "\n  ".join(errors[:20])
            )
        summary = assemble(cfg, tasks, metas, progress, start)
    # Reused: every file whose unit this run did not compute (found done, or shared with an identical file).
    summary.units_total, summary.units_computed, summary.units_reused = len(tasks), computed, len(tasks) - computed
    summary.errors = errors
    summary.seconds = time.perf_counter() - start
    return summary


@contextlib.contextmanager
def _build_lock(out: Path) -> Iterator[None]:
    """One build at a time per output folder: an exclusive ``flock`` on ``<output>/.lock`` (the OS releases it when
    the process dies, even by ``kill -9``, so a crashed build never blocks the next one)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise HGPTError(
                f"{out}: another corpus build (pid {holder}) is writing here; wait for it to finish, or build into "
                "another output folder"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _settings_env() -> dict[str, str]:
    names = ("HGPT_DATA_ROOT", "MENAGERIE_ROOT", "HGPT_CACHE_DIR", "OMP_NUM_THREADS")
    return {k: os.environ[k] for k in names if os.environ.get(k)}


def _run_units(
    cfg: CorpusConfig, todo: list[UnitTask], metas: dict[str, dict], progress: bool, on_unit: UnitHook | None
) -> int:
    if not todo:
        return 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"corpus units ({cfg.executor})", unit="file")

    def done(task: UnitTask, meta: dict) -> None:
        metas[task.key] = meta
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(Path(task.path).name)
        if on_unit:
            on_unit(task, meta, False)

    try:
        if cfg.executor == "local":
            for task in todo:
                done(task, run_unit(task))
        else:
            import ray

            started = not ray.is_initialized()
            if started:
                kwargs: dict = {"address": cfg.ray_address} if cfg.ray_address else {"num_cpus": cfg.num_cpus}
                ray.init(
                    include_dashboard=False,
                    ignore_reinit_error=True,
                    log_to_driver=False,
                    runtime_env={"env_vars": _settings_env()},
                    **kwargs,
                )
            try:
                remote = ray.remote(num_cpus=1)(run_unit)
                pending = {remote.remote(t): t for t in todo}
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    task = pending.pop(ready[0])
                    done(task, ray.get(ready[0]))
            finally:
                if started:
                    ray.shutdown()
    finally:
        if bar is not None:
            bar.close()
    return len(todo)


# Assembly ---------------------------------------------------------------------------------------------------------


def _rows(cfg: CorpusConfig, tasks: list[UnitTask], metas: dict[str, dict]) -> list[dict]:
    """One manifest row per clip (kept, dropped warp, dropped or unreadable file), in corpus order."""
    sources = {s.name: s for s in cfg.sources}
    rows = []
    for task in tasks:
        meta = metas[task.key]
        source = sources[task.source]
        prov = meta.get("provenance") or {}
        stem = Path(task.path).stem
        base = {
            "source": task.source,
            "path": task.rel,
            "source_sha256": task.file_sha256,
            "format": task.format,
            "performer": source.performer.performer(stem, prov, source.name),
            "licence": source.licence,
            "unit": task.key,
            "retarget_status": prov.get("retarget_status"),
            "source_fps": meta.get("source_fps"),
            "content_hash": None,
            "duplicate_of": None,
            "split": None,
            "shard": None,
            "offset": None,
            "shard_sha256": None,
        }
        if meta.get("status") == "error":
            rows.append(
                {
                    **base,
                    "clip_id": f"{task.source}/{task.name}",
                    "name": task.name,
                    "labels": list(task.labels) or ["unlabelled"],
                    "status": "drop",
                    "reasons": [f"unreadable: {meta['error']}"],
                    "reason_codes": ["unreadable"],
                    "warp": 1.0,
                    "fps": None,
                    "frames": 0,
                    "duration_s": 0.0,
                    "source_start": None,
                    "source_stop": None,
                }
            )
            continue
        decision = FilterDecision.from_dict(meta["decision"])
        reasons = [r.describe() for r in decision.reasons]
        codes = [r.code for r in decision.reasons]
        base["labels"] = decision.labels
        if decision.action == "drop":
            rows.append(
                {
                    **base,
                    "clip_id": f"{task.source}/{task.name}",
                    "name": task.name,
                    "status": "drop",
                    "reasons": reasons,
                    "reason_codes": codes,
                    "warp": 1.0,
                    "fps": decision.fps,
                    "frames": decision.frames,
                    "duration_s": round((decision.frames - 1) / decision.fps, 4) if decision.frames else 0.0,
                    "source_start": 0,
                    "source_stop": decision.frames,
                }
            )
            continue
        whole = [[0, decision.frames]]
        for entry in meta["clips"]:
            # Names from this task, not the unit: two identical files share one unit.
            segment = (
                task.name
                if [list(s) for s in decision.segments] == whole
                else (f"{task.name}@{entry['start']}:{entry['stop']}")
            )
            name = warp_name(segment, entry["warp"])
            row = {
                **base,
                "clip_id": f"{task.source}/{name}",
                "name": name,
                "status": decision.action,
                "reasons": list(reasons),
                "reason_codes": list(codes),
                "warp": entry["warp"],
                "fps": entry.get("fps", cfg.fps),
                "frames": entry["frames"],
                "duration_s": round((entry["frames"] - 1) / cfg.fps, 4) if entry["frames"] else 0.0,
                "source_start": entry["start"],
                "source_stop": entry["stop"],
                "content_hash": entry.get("content_hash"),
                "_offset": entry.get("offset"),
            }
            if entry["status"] == "drop":
                reason = Reason.from_dict(entry["reason"])
                row.update(status="drop", reasons=[*reasons, reason.describe()], reason_codes=[*codes, reason.code])
            rows.append(row)
    seen: dict[str, str] = {}
    for row in rows:  # duplicates: the first clip with a content hash keeps it
        h = row["content_hash"]
        if h is None or row["status"] == "drop":
            continue
        if h in seen:
            row.update(
                status="duplicate",
                duplicate_of=seen[h],
                reasons=[*row["reasons"], f"duplicate: same content as {seen[h]}"],
                reason_codes=[*row["reason_codes"], "duplicate"],
            )
        else:
            seen[h] = row["clip_id"]
    return rows


def assign_splits(rows: list[dict], config: SplitConfig) -> dict[str, str]:
    """Performer (group) -> split, performer-disjoint: pinned performers first, then the others by frames (largest
    first, then name), each to the split furthest below its target share of all frames."""
    frames: dict[str, int] = {}
    for row in rows:
        if row["status"] in ("keep", "trim"):
            frames[row["_group"]] = frames.get(row["_group"], 0) + row["frames"]
    total = sum(frames.values())
    have = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}
    for group, split in config.assign.items():
        if group in frames:
            out[group] = split
            have[split] += frames[group]
    shares = config.shares
    for group in sorted((g for g in frames if g not in out), key=lambda g: (-frames[g], g)):
        split = max(SPLITS, key=lambda s: (shares[s] * total - have[s], shares[s], -SPLITS.index(s)))
        out[group] = split
        have[split] += frames[group]
    return out


def _shard_plan(cfg: CorpusConfig, rows: list[dict]) -> list[dict]:
    """Shards per split in row order, at most ``shard_frames`` each (a longer clip gets one of its own)."""
    plan = []
    for split in SPLITS:
        members = [r for r in rows if r["split"] == split and r["status"] in ("keep", "trim")]
        current: list[dict] = []
        size = 0
        for row in members:
            if current and size + row["frames"] > cfg.shard_frames:
                plan.append({"split": split, "rows": current})
                current, size = [], 0
            current.append(row)
            size += row["frames"]
        if current:
            plan.append({"split": split, "rows": current})
    for i, shard in enumerate(plan):
        ident = config_hash(
            {"dtype": cfg.dtype, "bodies": list(cfg.bodies), "fps": cfg.fps},
            [[r["unit"], r["_offset"], r["frames"], r["content_hash"]] for r in shard["rows"]],
        )
        shard["name"] = f"{shard['split']}-{i:05d}-{ident[:12]}"
        shard["frames"] = sum(r["frames"] for r in shard["rows"])
    return plan


def _write_shard_from_units(cfg: CorpusConfig, shard: dict, units: dict[str, str]) -> dict[str, str]:
    n, b = shard["frames"], len(cfg.bodies)
    shapes = {k: tuple(b if d == "B" else d for d in shape) for k, shape in ARRAYS.items()}
    arrays = {k: np.empty((n, *shape), dtype=cfg.dtype) for k, shape in shapes.items()}
    at = 0
    by_unit: dict[str, list[dict]] = {}
    for row in shard["rows"]:
        by_unit.setdefault(row["unit"], []).append(row)
    placed = {}
    for unit, members in by_unit.items():
        with np.load(units[unit], allow_pickle=False) as data:
            loaded = {k: data[k] for k in ARRAYS}
        for row in members:
            placed[row["clip_id"]] = (row, loaded)
    for row in shard["rows"]:
        _, loaded = placed[row["clip_id"]]
        s = slice(row["_offset"], row["_offset"] + row["frames"])
        if content_hash(loaded["qpos"][s], cfg.fps) != row["content_hash"]:
            raise HGPTError(f"unit {units[row['unit']]} no longer matches its content hash; run the build again")
        for k in ARRAYS:
            arrays[k][at : at + row["frames"]] = loaded[k][s]
        row["offset"] = at
        at += row["frames"]
    return write_shard(Path(cfg.output) / SHARDS / shard["name"], arrays)


def assemble(
    cfg: CorpusConfig,
    tasks: list[UnitTask],
    metas: dict[str, dict],
    progress: bool = True,
    start: float | None = None,
) -> CorpusSummary:
    """Module docstring, step 3: rows, duplicates, splits, shards, manifest, report, card, index (last), then unit
    files no task names any more are removed. ``start``: the build's ``perf_counter`` start (for the card)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from humanoid_gpt.governance.card import write_card
    from humanoid_gpt.robot import load_g1
    from humanoid_gpt.runs import robot_hash

    out = Path(cfg.output)
    rows = _rows(cfg, tasks, metas)
    for row in rows:
        row["_group"] = row["performer"] or f"(unknown)/{row['source']}/{row['path']}"
    splits = assign_splits(rows, cfg.splits)
    for row in rows:
        row["split"] = splits.get(row["_group"])
    plan = _shard_plan(cfg, rows)
    for shard in plan:  # offsets inside each shard, known before anything is written
        at = 0
        for row in shard["rows"]:
            row["shard"], row["offset"] = shard["name"], at
            at += row["frames"]
    build_id = config_hash(
        {"schema": SCHEMA_VERSION, "fps": cfg.fps, "dtype": cfg.dtype, "bodies": list(cfg.bodies)},
        [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
    )
    previous = None
    try:
        previous = CorpusIndex.read(out)
    except HGPTError:
        pass
    old_shards = previous.shards if previous is not None else {}
    units = {t.key: t.unit_path for t in tasks}
    written = reused = 0
    iterator = plan
    if progress:
        from tqdm import tqdm

        iterator = tqdm(plan, desc="corpus shards", unit="shard", leave=False)
    for shard in iterator:
        folder = out / SHARDS / shard["name"]
        expected = old_shards.get(shard["name"], {}).get("files")
        if folder.is_dir() and not check_shard(folder, expected):
            shard["files"] = json.loads((folder / "SHA256SUMS.json").read_text())
            reused += 1
        else:
            shard["files"] = _write_shard_from_units(cfg, shard, units)
            written += 1
        shard["sha256"] = shard_digest(shard["files"])
        for row in shard["rows"]:
            row["shard_sha256"] = shard["sha256"]
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    report = [
        {
            "source": t.source,
            "path": t.rel,
            **(metas[t.key].get("decision") or {"error": metas[t.key].get("error")}),
            "name": t.name,
        }
        for t in tasks
    ]
    summary = _summary(cfg, public)
    manifest_path, report_path = out / MANIFEST, out / REPORT
    files_ok = previous is not None and previous.data.get("build_id") == build_id and written == 0
    if files_ok:
        recorded = previous.data.get("files", {})
        files_ok = all((out / f).is_file() and sha256_file(out / f) == h for f, h in recorded.items())
    if files_ok:  # nothing changed and every file is whole: a rerun writes nothing
        summary.up_to_date = True
        summary.shards_reused = reused
        _remove_stale(out, {s["name"] for s in plan})
        return summary
    table = pa.Table.from_pylist(public, schema=manifest_schema())
    with atomic_write(manifest_path) as f:
        pq.write_table(table, f)
    write_text_atomic(report_path, json.dumps(report, indent=1, default=str))
    g1 = load_g1()
    build = {
        "seconds": None if start is None else round(time.perf_counter() - start, 1),
        "units": len(tasks),
        "executor": cfg.executor,
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    card_files = write_card(out, cfg, public, report, build)
    index = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "name": cfg.name,
        "build_id": build_id,
        "robot_hash": robot_hash(g1.xml_path),
        "fps": cfg.fps,
        "dtype": cfg.dtype,
        "bodies": list(cfg.bodies),
        "arrays": {k: list(v) for k, v in ARRAYS.items()},
        "shards": [
            {
                "name": s["name"],
                "split": s["split"],
                "frames": s["frames"],
                "clips": len(s["rows"]),
                "files": s["files"],
                "sha256": s["sha256"],
            }
            for s in plan
        ],
        "files": {p.name: sha256_file(p) for p in (manifest_path, report_path, *card_files)},
        "sources": [{"name": s.name, "path": s.path, "format": s.format, "licence": s.licence} for s in cfg.sources],
        "config": {
            "filters": cfg.filters.as_dict(),
            "warps": cfg.warps.as_dict(),
            "splits": dataclasses.asdict(cfg.splits),
            "shard_frames": cfg.shard_frames,
        },
        "built": build["built"],
    }
    write_text_atomic(out / INDEX, json.dumps(index, indent=1, default=str))
    _remove_stale(out, {s["name"] for s in plan})
    _prune_units(out, {t.key for t in tasks})
    summary.shards_written, summary.shards_reused = written, reused
    return summary


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Shard folders the index no longer names, and leftovers of interrupted writes."""
    folder = out / SHARDS
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)


def _prune_units(out: Path, keys: set[str]) -> None:
    """Unit files of earlier configs (another threshold, a removed source): the index no longer needs them."""
    folder = out / UNITS
    if folder.is_dir():
        for path in folder.glob("*/*"):
            if path.name.split(".")[0] not in keys:
                path.unlink(missing_ok=True)


def _summary(cfg: CorpusConfig, rows: list[dict]) -> CorpusSummary:
    kept = [r for r in rows if r["shard"] is not None]
    frames = sum(r["frames"] for r in kept)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    hours = {s.name: 0.0 for s in cfg.sources}
    for r in kept:
        hours[r["source"]] += r["frames"] / cfg.fps / 3600.0
    return CorpusSummary(
        output=Path(cfg.output),
        clips=len(kept),
        frames=frames,
        hours=frames / cfg.fps / 3600.0,
        status_counts=counts,
        hours_by_source=hours,
        units_total=0,
        units_computed=0,
        units_reused=0,
        shards_written=0,
        shards_reused=0,
        seconds=0.0,
    )


def verify_corpus(folder: str | Path) -> list[str]:
    """Every problem of a built corpus (shard checksums, manifest and card against the index); empty when whole."""
    index = CorpusIndex.read(folder)
    problems = index.verify()
    for name, digest in index.data.get("files", {}).items():
        path = Path(folder) / name
        if not path.is_file() or sha256_file(path) != digest:
            problems.append(f"{path}: missing or changed since the build")
    return problems


def print_summary(summary: CorpusSummary, rows: Sequence[dict] | None = None) -> None:
    """The build's numbers on the terminal: per source, per status and reason."""
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=f"corpus {summary.output}")
    for col in ("source", "hours in corpus"):
        table.add_column(col)
    for s, h in summary.hours_by_source.items():
        table.add_row(s, f"{h:.2f}")
    table.add_row("[b]total[/b]", f"[b]{summary.hours:.2f}[/b]")
    console().print(table)
    console().print(", ".join(f"{n} {s}" for s, n in sorted(summary.status_counts.items())) + " (manifest rows)")
    for e in summary.errors[:10]:
        console().print(f"[red]unreadable[/red] {e}")
    console().print(summary.describe())
