"""Biovision Hierarchy (BVH) motion files.

The format: a ``HIERARCHY`` section, a tree of ``ROOT`` / ``JOINT`` blocks in braces, each with an ``OFFSET x y z``
(rest translation from the parent) and ``CHANNELS n name...``, and ``End Site`` blocks holding only an ``OFFSET``;
then a ``MOTION`` section: ``Frames: N``, ``Frame Time: dt`` (seconds) and N rows, each holding every joint's
channel values in hierarchy order. Channels are ``Xposition Yposition Zposition Xrotation Yrotation Zrotation``, in
any number (0 to 6) and order. Rotations are degrees, composed as intrinsic rotations in the listed order
(``Zrotation Yrotation Xrotation`` is R = Rz @ Ry @ Rx); a joint's local transform is its translation then that
rotation. Position channels replace the matching components of the joint's OFFSET (they hold where the joint is,
as the root's channels do), on any joint.

Choices of this reader:

- End Sites are not joints by default (they carry no channels; LAFAN1's are at zero offset), so a joint count matches
  the file's ROOT + JOINT count. ``end_sites=True`` adds each as a leaf joint named ``<parent>_end`` that moves with
  its parent (a head's becomes canonical ``head_top``).
- Unit: BVH has no unit field. ``unit=None`` measures the skeleton's longest bone path (about 1.3x the height) and
  picks metres, centimetres, millimetres or inches (:mod:`.conventions`); ``unit`` forces a name or metres per unit.
- Up axis: BVH is Y-up by convention, converted to Z-up by (x, y, z) -> (z, x, y); ``up_axis="z"`` keeps a Z-up file
  as it is; ``up_axis="auto"`` takes the axis along which the head is above the feet. With a given or default axis
  the same check runs and warns when it disagrees.
- fps: 1 / Frame Time, snapped to a whole rate when the written digits allow it (0.033333 -> 30), unless ``fps=``
  is passed (then the file's Frame Time is ignored, even when missing or bad).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humanoid_gpt.governance.mocap._math import intrinsic_rotation, matrix_to_quat
from humanoid_gpt.governance.mocap.conventions import (
    SPAN_PER_STATURE,
    MocapWarning,
    detect_unit,
    detect_up_axis,
    parse_unit,
    parse_up_axis,
    skeleton_span,
    z_up_matrix,
)
from humanoid_gpt.governance.mocap.names import canonical_names
from humanoid_gpt.governance.mocap.skeleton import HumanMotion, Skeleton, mocap_error

_CHANNELS = {f"{axis}{kind}": (kind, axis.lower()) for axis in "XYZ" for kind in ("position", "rotation")}
_FRAMES = re.compile(r"^\s*frames\s*:\s*(\S*)", re.IGNORECASE)
_FRAME_TIME = re.compile(r"^\s*frame\s*time\s*:\s*(\S*)", re.IGNORECASE)


@dataclass
class _Joint:
    name: str
    parent: int
    line: int
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    channels: list[tuple[str, str]] = field(default_factory=list)  # (kind, axis) in file order
    has_channels: bool = False
    end_sites: list[np.ndarray] = field(default_factory=list)


class _Tokens:
    """Hierarchy tokens with their line numbers (1-based, as an editor shows them)."""

    def __init__(self, path: Path, lines: list[str], start: int, stop: int):
        self.path = path
        self.items = [(n + 1, tok) for n in range(start, stop) for tok in lines[n].split()]
        self.i = 0

    def peek(self) -> tuple[int, str] | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def next(self, what: str, opened: tuple[str, int] | None = None) -> tuple[int, str]:
        item = self.peek()
        if item is None:
            if opened is not None:
                raise mocap_error(
                    self.path,
                    f"line {opened[1]}",
                    f"unbalanced braces: the block of '{opened[0]}' opened here is never closed before MOTION",
                    "add the missing '}' (every ROOT, JOINT and End Site block needs one)",
                )
            raise mocap_error(self.path, "HIERARCHY", f"ended while expecting {what}", "complete the hierarchy")
        self.i += 1
        return item

    def rest_of_line(self, line: int) -> list[str]:
        out = []
        while (item := self.peek()) is not None and item[0] == line and item[1] != "{":
            out.append(item[1])
            self.i += 1
        return out

    def number(self, what: str, opened: tuple[str, int]) -> float:
        line, tok = self.next(what, opened)
        try:
            return float(tok)
        except ValueError:
            raise mocap_error(
                self.path, f"line {line}", f"{what}: '{tok}' is not a number", "write the value as a decimal number"
            ) from None


def _find(path: Path, lines: list[str], keyword: str, start: int = 0) -> int:
    for n in range(start, len(lines)):
        words = lines[n].split()
        if words and words[0].upper() == keyword:
            return n
    raise mocap_error(
        path,
        keyword,
        f"no {keyword} line found",
        "a BVH file holds a HIERARCHY section (the joint tree) followed by a MOTION section (Frames:, Frame Time:, "
        "one row per frame); check that the file is a complete BVH",
    )


def _parse_hierarchy(path: Path, tokens: _Tokens) -> list[_Joint]:
    joints: list[_Joint] = []
    while (item := tokens.peek()) is not None:
        line, tok = item
        if tok.upper() != "ROOT":
            if tok == "}":
                raise mocap_error(path, f"line {line}", "unbalanced braces: '}' closes no block", "remove it")
            raise mocap_error(path, f"line {line}", f"expected ROOT, found '{tok}'", "start the hierarchy with ROOT")
        tokens.next("ROOT")
        _parse_joint(path, tokens, joints, -1, line)
    if not joints:
        raise mocap_error(path, "HIERARCHY", "no ROOT joint", "describe the skeleton as ROOT name { OFFSET ... }")
    return joints


def _parse_joint(path: Path, tokens: _Tokens, joints: list[_Joint], parent: int, line: int) -> None:
    name = " ".join(tokens.rest_of_line(line))
    if not name:
        raise mocap_error(path, f"line {line}", "ROOT/JOINT without a name", "write ROOT <name> or JOINT <name>")
    joint = _Joint(name, parent, line)
    index = len(joints)
    joints.append(joint)
    opened = (name, line)
    brace_line, tok = tokens.next("'{'", opened)
    if tok != "{":
        raise mocap_error(path, f"line {brace_line}", f"expected '{{' after {name}, found '{tok}'", "add '{'")
    while True:
        item_line, tok = tokens.next("'}'", opened)
        key = tok.upper()
        if tok == "}":
            break
        if key == "OFFSET":
            joint.offset = np.array([tokens.number(f"OFFSET of {name}", opened) for _ in range(3)])
        elif key == "CHANNELS":
            joint.channels = _parse_channels(path, tokens, name, item_line, opened)
            joint.has_channels = True
        elif key == "JOINT":
            _parse_joint(path, tokens, joints, index, item_line)
        elif key == "END":
            site_line, site = tokens.next("Site", opened)
            if site.upper() != "SITE":
                raise mocap_error(path, f"line {site_line}", f"expected 'End Site', found 'End {site}'", "fix it")
            joint.end_sites.append(_parse_end_site(path, tokens, name, item_line))
        else:
            raise mocap_error(
                path,
                f"line {item_line}",
                f"unexpected '{tok}' in the block of {name}",
                "a joint block holds OFFSET, CHANNELS, JOINT and End Site entries only",
            )
    if not joint.has_channels:
        raise mocap_error(
            path,
            f"line {line}",
            f"joint '{name}' has no CHANNELS line",
            "add 'CHANNELS 3 Zrotation Xrotation Yrotation' (or the channels its MOTION columns hold; "
            "'CHANNELS 0' for a joint that does not move)",
        )


def _parse_channels(path: Path, tokens: _Tokens, name: str, line: int, opened) -> list[tuple[str, str]]:
    count_line, tok = tokens.next("the channel count", opened)
    try:
        count = int(tok)
    except ValueError:
        count = -1
    if count < 0:
        raise mocap_error(path, f"line {count_line}", f"CHANNELS of {name}: '{tok}' is not a count", "fix the count")
    channels = []
    for _ in range(count):
        ch_line, ch = tokens.next(f"{count} channel names", opened)
        spec = next((v for k, v in _CHANNELS.items() if k.lower() == ch.lower()), None)
        if spec is None:
            raise mocap_error(
                path,
                f"line {ch_line}",
                f"unknown channel '{ch}' of joint {name} (CHANNELS {count} declared on line {line})",
                f"use {', '.join(_CHANNELS)}; check that the count matches the names",
            )
        channels.append(spec)
    return channels


def _parse_end_site(path: Path, tokens: _Tokens, parent: str, line: int) -> np.ndarray:
    opened = (f"End Site of {parent}", line)
    brace_line, tok = tokens.next("'{'", opened)
    if tok != "{":
        raise mocap_error(path, f"line {brace_line}", f"expected '{{' after End Site, found '{tok}'", "add '{'")
    offset = np.zeros(3)
    while True:
        item_line, tok = tokens.next("'}'", opened)
        if tok == "}":
            return offset
        if tok.upper() != "OFFSET":
            raise mocap_error(path, f"line {item_line}", f"unexpected '{tok}' in an End Site", "End Site holds OFFSET")
        offset = np.array([tokens.number(f"End Site OFFSET of {parent}", opened) for _ in range(3)])


def _header_value(lines: list[str], n: int, pattern: re.Pattern) -> str | None:
    if n < len(lines) and (m := pattern.match(lines[n])):
        return m.group(1)
    return None


def _parse_motion(path: Path, lines: list[str], motion: int, width: int, fps: float | None):
    """(values (T, width), frame_time or None, Frame Time as written or None)."""
    n = motion + 1
    while n < len(lines) and not lines[n].strip():
        n += 1
    frames_tok = _header_value(lines, n, _FRAMES)
    if frames_tok is None:
        raise mocap_error(path, f"line {n + 1}", "expected 'Frames: N' after MOTION", "add the frame count line")
    try:
        frames = int(frames_tok)
    except ValueError:
        raise mocap_error(path, f"line {n + 1}", f"Frames: '{frames_tok}' is not a count", "write an integer") from None
    if frames <= 0:
        raise mocap_error(path, f"line {n + 1}", f"Frames: {frames}: the file has no motion", "export some frames")
    n += 1
    while n < len(lines) and not lines[n].strip():
        n += 1
    frame_time = None
    time_tok = _header_value(lines, n, _FRAME_TIME)
    if time_tok is not None:
        try:
            frame_time = float(time_tok)
        except ValueError:
            frame_time = float("nan")
        if not (frame_time > 0 and np.isfinite(frame_time)) and fps is None:
            raise mocap_error(
                path,
                f"line {n + 1}",
                f"Frame Time: '{time_tok}' is not a positive number of seconds",
                "write the frame period (e.g. 0.033333 for 30 fps), or pass fps=",
            )
        n += 1
    elif fps is None:
        raise mocap_error(path, f"line {n + 1}", "expected 'Frame Time: dt' after Frames", "add it, or pass fps=")
    # Rows are kept as text and parsed in one numpy call: no per-row lists, so long files stay fast.
    row_lines = [k for k in range(n, len(lines)) if lines[k].strip()]
    if len(row_lines) < frames:
        last = row_lines[-1] + 1 if row_lines else n
        raise mocap_error(
            path,
            f"MOTION (lines {n + 1}-{last})",
            f"truncated: 'Frames: {frames}' but only {len(row_lines)} frame rows follow; the file looks cut short",
            f"re-export or re-download the file, or set 'Frames: {len(row_lines)}' to read the frames present",
        )
    if len(row_lines) > frames:
        warnings.warn(
            f"{path}: {len(row_lines)} frame rows but 'Frames: {frames}'; reading the first {frames}",
            MocapWarning,
            stacklevel=3,
        )
        row_lines = row_lines[:frames]
    rows = [lines[k] for k in row_lines]
    for k, row in zip(row_lines, rows, strict=True):
        if (count := len(row.split())) != width:
            raise mocap_error(
                path,
                f"line {k + 1}",
                f"frame row has {count} values, expected {width} (the sum of all joints' CHANNELS)",
                "check the row for missing or merged numbers, or that CHANNELS match the exporter's columns",
            )
    try:
        data = np.array(" ".join(rows).split(), dtype=np.float64).reshape(frames, width)
    except ValueError:
        for k, row in zip(row_lines, rows, strict=True):
            for col, v in enumerate(row.split()):
                try:
                    float(v)
                except ValueError:
                    raise mocap_error(
                        path, f"line {k + 1}, value {col + 1}", f"'{v}' is not a number", "fix or re-export the row"
                    ) from None
        raise
    bad = ~np.isfinite(data)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise mocap_error(
            path,
            f"line {row_lines[row] + 1}, value {col + 1}",
            f"{data[row, col]} in frame {row}",
            "re-export the motion without missing samples, or fill the gap before reading",
        )
    return data, frame_time, time_tok


def _rate(frame_time: float, text: str) -> float:
    """1 / Frame Time, snapped to a whole rate when that rate's period rounds to the digits written in the file
    ('0.033333' is 30 fps, not 30.0003)."""
    whole = round(1.0 / frame_time)
    digits = len(text.split(".", 1)[1]) if "." in text and "e" not in text.lower() else None
    tolerance = 0.5 * 10.0**-digits if digits else 1e-12
    if whole > 0 and abs(1.0 / whole - frame_time) <= tolerance:
        return float(whole)
    return 1.0 / frame_time


def _local_transforms(joints: list[_Joint], data: np.ndarray):
    """Per joint: local translation (T, 3) and rotation (T, 3, 3), file units."""
    col = 0
    out = []
    for joint in joints:
        t = np.broadcast_to(joint.offset, (data.shape[0], 3)).copy()
        axes, angles = "", []
        for kind, axis in joint.channels:
            if kind == "position":
                t[:, "xyz".index(axis)] = data[:, col]  # position channels say where the joint is
            else:
                axes += axis
                angles.append(data[:, col])
            col += 1
        angles = np.radians(np.stack(angles, axis=-1)) if angles else np.zeros((data.shape[0], 0))
        out.append((t, intrinsic_rotation(axes, angles)))
    return out


def read_bvh(
    path: str | Path,
    *,
    unit: str | float | None = None,
    up_axis: str | None = None,
    fps: float | None = None,
    end_sites: bool = False,
) -> HumanMotion:
    """Read a BVH file into a :class:`HumanMotion` (metres, Z up, global positions and orientations).

    ``unit``: None detects it from the skeleton's size; a name ('m', 'cm', 'mm', 'in') or metres per file unit
    forces it. ``up_axis``: None is BVH's convention 'y'; 'z' for files already Z-up; 'auto' detects it. ``fps``
    overrides the file's Frame Time. ``end_sites`` keeps End Sites as leaf joints. Bad files raise
    :class:`MocapFormatError` naming the file, line and fix.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()  # \n, \r\n and \r alike
    start = _find(path, lines, "HIERARCHY")
    motion = _find(path, lines, "MOTION", start + 1)
    joints = _parse_hierarchy(path, _Tokens(path, lines, start + 1, motion))
    width = sum(len(j.channels) for j in joints)
    data, frame_time, frame_time_text = _parse_motion(path, lines, motion, width, fps)
    local = _local_transforms(joints, data)

    # Joint list: the file's joints, then (optionally) End Sites as leaves right after the others.
    names = [j.name for j in joints]
    parents = [j.parent for j in joints]
    # Rest offsets: the OFFSET, or where the position channels put the joint in the first frame when it has any.
    rest = [
        local_t[0] if any(kind == "position" for kind, _ in j.channels) else j.offset
        for j, (local_t, _) in zip(joints, local, strict=True)
    ]
    sites = [(k, n, off) for k, j in enumerate(joints) for n, off in enumerate(j.end_sites)]
    if end_sites:
        for k, n, off in sites:  # '<joint>_end', or '<joint>_end0', '_end1', ... when a joint has several
            names.append(f"{joints[k].name}_end" + (str(n) if len(joints[k].end_sites) > 1 else ""))
            parents.append(k)
            rest.append(off)

    # Forward kinematics in file units and axes: a loop over joints, all frames at once.
    T, J = data.shape[0], len(names)
    pos = np.zeros((T, J, 3))
    rot = np.zeros((T, J, 3, 3))
    for j in range(J):
        t, r = local[j] if j < len(joints) else (rest[j], np.eye(3))
        p = parents[j]
        if p < 0:
            pos[:, j], rot[:, j] = t, r
        else:
            pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", rot[:, p], np.broadcast_to(t, (T, 3)))
            rot[:, j] = rot[:, p] @ r

    canonical = list(canonical_names(tuple(names[: len(joints)]), "bvh"))
    for j in range(len(joints), J):  # End Sites: the head's is the top of the head; others have no canonical name
        canonical.append("head_top" if canonical[parents[j]] == "head" and "head_top" not in canonical else None)

    source = str(path)
    lengths = [np.linalg.norm(local[j][0][0]) for j in range(len(joints))]
    span_parents = parents[: len(joints)] + [k for k, _, _ in sites]
    span_lengths = lengths + [float(np.linalg.norm(off)) for _, _, off in sites]
    if unit is None:
        span = skeleton_span(np.array(span_parents), np.array(span_lengths))
        unit_name, scale = detect_unit(span / SPAN_PER_STATURE, source)
        unit_source = "detected"
    else:
        try:
            unit_name, scale = parse_unit(unit)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None
        unit_source = "option"

    axis, axis_source = _choose_up_axis(source, pos, canonical, up_axis)
    C = z_up_matrix(axis)
    positions = scale * pos @ C.T
    rotations = matrix_to_quat(C @ rot @ C.T)
    offsets = scale * np.asarray(rest) @ C.T
    skeleton = Skeleton(tuple(names), np.array(parents), offsets)

    rate = float(fps) if fps is not None else _rate(frame_time, frame_time_text)
    provenance = {
        "path": source,
        "format": "bvh",
        "unit": unit_name,
        "scale_to_m": scale,
        "unit_source": unit_source,
        "up_axis": axis,
        "up_axis_source": axis_source,
        "fps_source": "option" if fps is not None else "file",
        "frame_time": frame_time,
        "frames": T,
        "channels": width,
        "end_sites": "joints" if end_sites else "dropped",
    }
    return HumanMotion(path.stem, rate, skeleton, positions, rotations, provenance, canonical=tuple(canonical))


def _choose_up_axis(source: str, pos: np.ndarray, canonical: list, up_axis: str | None) -> tuple[str, str]:
    """The file's up axis and where it came from ('option', 'bvh_convention', 'detected'); warns on disagreement."""
    head = canonical.index("head") if "head" in canonical else None
    feet = [canonical.index(c) for c in ("left_ankle", "right_ankle", "left_foot", "right_foot") if c in canonical]
    detected = detect_up_axis(pos, head, feet) if head is not None and feet else None
    if up_axis is not None and str(up_axis).lower() == "auto":
        if detected not in ("y", "z"):
            raise mocap_error(
                source,
                "up axis",
                f"cannot detect it (head above feet along {detected or 'no clear axis'})",
                "pass up_axis='y' or 'z'",
            )
        return detected, "detected"
    axis = parse_up_axis(up_axis if up_axis is not None else "y", source)
    if detected is not None and detected != axis:
        warnings.warn(
            f"{source}: reading as {axis.upper()}-up, but the head is above the feet along {detected}; "
            "pass up_axis= if the motion comes out lying down",
            MocapWarning,
            stacklevel=3,
        )
    return axis, "option" if up_axis is not None else "bvh_convention"
