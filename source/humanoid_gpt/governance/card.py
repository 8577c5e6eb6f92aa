"""The corpus's dataset card: a Markdown page (``DATASET_CARD.md``) and a plot (``card.png``) written beside the
manifest: hours per source and split, licences, what the filter removed and why, warps, labels."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from humanoid_gpt.io_utils import atomic_write, write_text_atomic

if TYPE_CHECKING:
    from humanoid_gpt.governance.corpus_config import CorpusConfig

NON_COMMERCIAL = ("NC", "non-commercial", "noncommercial", "research only", "AMASS")


def _h(seconds: float) -> str:
    return f"{seconds / 3600.0:.3f}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def card_numbers(config: CorpusConfig, rows: list[dict], report: list[dict]) -> dict:
    """The figures the card shows, from the manifest rows and the filter report (also used by tests)."""
    fps = config.fps
    inside = [r for r in rows if r["shard"] is not None]
    per_source: dict[str, dict] = {}
    for s in config.sources:
        decisions = [d for d in report if d["source"] == s.name]
        per_source[s.name] = {
            "format": s.format,
            "licence": s.licence,
            "files": len(decisions),
            "input_s": sum(max(d.get("frames", 0) - 1, 0) / d["fps"] for d in decisions if d.get("fps")),
            "actions": Counter(d.get("action", "error") for d in decisions),
            "kept_1x_s": sum(r["frames"] / fps for r in inside if r["source"] == s.name and r["warp"] == 1.0),
            "corpus_s": sum(r["frames"] / fps for r in inside if r["source"] == s.name),
            "clips": sum(1 for r in inside if r["source"] == s.name),
            "performers": len({r["performer"] for r in rows if r["source"] == s.name and r["performer"]}),
        }
    reasons: dict[str, dict] = defaultdict(lambda: {"files": 0, "dropped_s": 0.0, "cut_s": 0.0})
    for d in report:
        if "action" not in d:
            reasons["unreadable"]["files"] += 1
            continue
        for code in dict.fromkeys(r["code"] for r in d["reasons"]):
            reasons[code]["files"] += 1
        seconds = max(d["frames"] - 1, 0) / d["fps"] if d["fps"] else 0.0
        if d["action"] == "drop":
            for code in dict.fromkeys(r["code"] for r in d["reasons"]):
                reasons[code]["dropped_s"] += seconds
        else:
            for r in d["reasons"]:
                reasons[r["code"]]["cut_s"] += sum(b - a for a, b in r["frames"]) / d["fps"]
    warps: dict[float, Counter] = defaultdict(Counter)
    for r in rows:
        if r["status"] in ("keep", "trim", "duplicate") or "warp_velocity" in r["reason_codes"]:
            warps[r["warp"]]["kept" if r["shard"] is not None else r["status"]] += 1
    splits: dict[str, dict] = {}
    for split in ("train", "val", "test"):
        members = [r for r in inside if r["split"] == split]
        splits[split] = {
            "clips": len(members),
            "seconds": sum(r["frames"] / fps for r in members),
            "performers": sorted({r["performer"] or "(unknown)" for r in members}),
        }
    labels: dict[str, dict] = defaultdict(lambda: {"files": set(), "seconds": 0.0})
    for r in rows:
        for label in r["labels"]:
            labels[label]["files"].add((r["source"], r["path"]))
            if r["shard"] is not None:
                labels[label]["seconds"] += r["frames"] / fps
    return {
        "per_source": per_source,
        "reasons": dict(reasons),
        "warps": dict(warps),
        "splits": splits,
        "labels": {k: {"files": len(v["files"]), "seconds": v["seconds"]} for k, v in labels.items()},
        "duplicates": sum(1 for r in rows if r["status"] == "duplicate"),
        "unknown_performers": sorted({r["path"] for r in inside if not r["performer"]}),
        "clips": len(inside),
        "frames": sum(r["frames"] for r in inside),
    }


def write_card(out: Path, config: CorpusConfig, rows: list[dict], report: list[dict], build: dict) -> list[Path]:
    """Write ``DATASET_CARD.md`` and ``card.png`` into ``out``; returns their paths."""
    n = card_numbers(config, rows, report)
    png = out / "card.png"
    _plot(png, n)
    fps = config.fps
    total_s = n["frames"] / fps
    lines = [
        f"# {config.name}: Humanoid-GPT motion corpus",
        "",
        f"{n['clips']} clips, {n['frames']:,} frames at {fps:g} Hz, **{_h(total_s)} hours** (time-warped copies "
        f"included: factors {', '.join(f'{f:g}' for f in config.warps.all_factors)}). Built {build.get('built')} "
        f"with executor `{build.get('executor')}` from {build.get('units')} source files"
        + (f" in {build['seconds']:.0f} s." if build.get("seconds") is not None else "."),
        "",
        "Each clip is a G1 motion (root pose and 29 joints) with the forward kinematics of "
        f"{len(config.bodies)} bodies cached; `manifest.parquet` has one row per clip, kept or not, with its source, "
        "performer, labels, licence, status and reasons, warp factor, content hash, split, shard and offset. "
        "`filter_report.json` has every filter decision with its frame ranges.",
        "",
        "![hours per source and filter reasons](card.png)",
        "",
        "## Sources",
        "",
        _table(
            [
                "source",
                "format",
                "licence",
                "files",
                "input h",
                "kept h (1x)",
                "corpus h (warped)",
                "clips",
                "keep / trim / drop",
                "performers",
            ],
            [
                [
                    name,
                    s["format"],
                    s["licence"],
                    s["files"],
                    _h(s["input_s"]),
                    _h(s["kept_1x_s"]),
                    _h(s["corpus_s"]),
                    s["clips"],
                    f"{s['actions'].get('keep', 0)} / {s['actions'].get('trim', 0)} / "
                    f"{s['actions'].get('drop', 0) + s['actions'].get('error', 0)}",
                    s["performers"],
                ]
                for name, s in n["per_source"].items()
            ],
        ),
        "",
        "## Licences",
        "",
    ]
    by_licence: dict[str, list[str]] = defaultdict(list)
    for s in config.sources:
        by_licence[s.licence].append(s.name)
    for licence, names in by_licence.items():
        flag = (
            " (non-commercial: the whole corpus is non-commercial while it holds these clips)"
            if any(k.lower() in licence.lower() for k in NON_COMMERCIAL)
            else ""
        )
        lines.append(f"- **{licence}**: {', '.join(names)}{flag}")
    lines += [
        "",
        "Every row of the manifest carries its licence; filter on it before redistributing or training a "
        "commercial model. Derived data inherits its source's terms.",
        "",
        "## Filter reasons",
        "",
        "Per source file (a file may have several reasons). *Dropped*: hours of files dropped with this reason among "
        "others; *cut*: hours of frames this reason cut out of trimmed files (at the source rate, before warping).",
        "",
        _table(
            ["reason", "files", "dropped h", "cut h"],
            [
                [code, r["files"], _h(r["dropped_s"]), _h(r["cut_s"])]
                for code, r in sorted(n["reasons"].items(), key=lambda kv: -(kv[1]["dropped_s"] + kv[1]["cut_s"]))
            ],
        ),
        "",
        f"Thresholds: {', '.join(f'{k}={v}' for k, v in config.filters.as_dict().items() if k != 'label_rules')}; "
        f"label rules: {', '.join(config.filters.label_rules)}.",
        "",
        "## Time warps",
        "",
        _table(
            ["factor", "clips kept", "dropped (joint velocity)", "duplicates"],
            [
                [f"{f:g}", c.get("kept", 0), c.get("drop", 0), c.get("duplicate", 0)]
                for f, c in sorted(n["warps"].items())
            ],
        ),
        "",
        f"Duplicates removed by content hash: {n['duplicates']}.",
        "",
        "## Splits (performer-disjoint)",
        "",
        _table(
            ["split", "clips", "hours", "performers"],
            [[s, v["clips"], _h(v["seconds"]), ", ".join(v["performers"]) or "-"] for s, v in n["splits"].items()],
        ),
        "",
    ]
    if n["unknown_performers"]:
        lines += [
            f"{len(n['unknown_performers'])} file(s) have no performer (each is its own group): "
            + ", ".join(n["unknown_performers"][:10]),
            "",
        ]
    lines += [
        "## Labels",
        "",
        _table(
            ["label", "files", "corpus h"],
            [
                [label, v["files"], _h(v["seconds"])]
                for label, v in sorted(n["labels"].items(), key=lambda kv: (-kv[1]["seconds"], kv[0]))
            ],
        ),
        "",
    ]
    md = out / "DATASET_CARD.md"
    write_text_atomic(md, "\n".join(lines))
    return [md, png]


def _plot(path: Path, n: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(n["per_source"])
    kept = [n["per_source"][s]["kept_1x_s"] / 3600 for s in names]
    warped = [(n["per_source"][s]["corpus_s"] - n["per_source"][s]["kept_1x_s"]) / 3600 for s in names]
    removed = [max(n["per_source"][s]["input_s"] / 3600 - k, 0.0) for s, k in zip(names, kept, strict=True)]
    a.bar(names, kept, label="kept (1x)")
    a.bar(names, warped, bottom=kept, label="time-warped copies")
    a.bar(
        names,
        removed,
        bottom=[k + w for k, w in zip(kept, warped, strict=True)],
        label="removed by the filter",
        color="lightgray",
    )
    a.set_ylabel("hours")
    a.set_title("hours per source")
    a.legend()
    a.tick_params(axis="x", rotation=20)
    codes = sorted(n["reasons"], key=lambda c: n["reasons"][c]["dropped_s"] + n["reasons"][c]["cut_s"])
    b.barh(codes, [n["reasons"][c]["dropped_s"] / 3600 for c in codes], label="in dropped files")
    b.barh(
        codes,
        [n["reasons"][c]["cut_s"] / 3600 for c in codes],
        left=[n["reasons"][c]["dropped_s"] / 3600 for c in codes],
        label="cut from trimmed files",
    )
    b.set_xlabel("hours (source rate, before warping)")
    b.set_title("filter reasons")
    b.legend()
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=90)
    plt.close(fig)
