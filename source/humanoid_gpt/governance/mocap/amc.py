"""Acclaim skeleton (ASF) and motion (AMC) files, as used by the CMU motion-capture database.

ASF sections: ``:units`` (``mass``, ``length`` and ``angle deg|rad``), ``:root`` (``order`` of the root's AMC values,
e.g. ``TX TY TZ RX RY RZ``; ``axis`` order of its orientation; ``position``; ``orientation``), ``:bonedata`` (one
``begin``/``end`` block per bone: ``id``, ``name``, ``direction`` (unit vector, world axes at rest), ``length``,
``axis a b c ORDER`` (the bone's local frame C at rest, rotations applied in ORDER about fixed axes), ``dof`` (a
subset of ``rx ry rz tx ty tz l`` in the order their values appear in the AMC), ``limits``), and ``:hierarchy``
(``begin``, lines ``parent child child ...``, ``end``). Lengths are in 1/length inches (CMU writes ``length 0.45``:
inches = value / 0.45), converted here to metres (x 0.0254).

AMC: header lines (``:FULLY-SPECIFIED``, ``:DEGREES`` or ``:RADIANS``), then frames, each a frame number followed by
one line per bone with dof: the bone name and its values in the ASF ``dof`` order. Bones without dof do not appear.
Frame rate is not stored: CMU captured at 120 Hz, the default here (recorded as ``fps_source: "cmu_default"``).

Kinematics (column vectors): a bone's motion rotation M applies its dof rotations in the listed order about fixed
axes (``rx ry rz`` is M = Rz Ry Rx); its global orientation is R = R_parent C M C^-1 (identity at rest), and its end
is its start plus R (length x direction). Joints are placed as in BVH: a joint per bone at the bone's START (the
parent's end) carrying the bone's orientation, so ``ltibia`` is the knee and rotates the shin; the root is a joint
at the root position; each leaf bone's end is an extra joint ``<bone>_end`` (``head_end`` is the top of the head).
A bone's ``l`` dof stretches it along its direction; ``tx ty tz`` dof move its end along its rotated local axes.
ASF/AMC is Y-up like BVH and is converted to Z-up the same way (:mod:`.conventions`).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humanoid_gpt.governance.mocap._math import intrinsic_rotation, matrix_to_quat
from humanoid_gpt.governance.mocap.conventions import MocapWarning, parse_up_axis, z_up_matrix
from humanoid_gpt.governance.mocap.names import canonical_names
from humanoid_gpt.governance.mocap.skeleton import HumanMotion, Skeleton, mocap_error

CMU_FPS = 120.0
INCH = 0.0254
_DOFS = ("rx", "ry", "rz", "tx", "ty", "tz", "l")


@dataclass
class AsfBone:
    """One ASF bone, values as written (lengths in ASF units, angles converted to radians)."""

    id: int
    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray  # radians
    axis_order: str  # e.g. 'XYZ': rotations applied about X, then Y, then Z (fixed axes)
    dof: tuple[str, ...] = ()
    limits: list[tuple[float, float]] = field(default_factory=list)
    line: int = 0


@dataclass
class AsfSkeleton:
    """An ASF file: units, root, bones (file order) and each bone's parent ('root' or a bone name)."""

    path: Path
    name: str
    mass: float
    length: float  # ASF length unit: inches = value / length
    angle: str  # 'deg' or 'rad'
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray  # radians
    bones: dict[str, AsfBone]
    parents: dict[str, str]

    @property
    def metres_per_unit(self) -> float:
        return INCH / self.length


def _axis_matrix(order: str, angles: np.ndarray) -> np.ndarray:
    """Rotations about fixed axes applied in ``order`` ('XYZ' -> Rz Ry Rx); angles (..., 3) in x, y, z slots."""
    idx = ["xyz".index(a) for a in order.lower()]
    return intrinsic_rotation(order.lower()[::-1], np.asarray(angles)[..., idx[::-1]])


def _text_lines(path: Path) -> list[str]:
    """The file's lines with comments ('#' to the end of the line) removed; \n, \r\n and \r alike."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    return [line.split("#", 1)[0] for line in lines] if "#" in text else lines


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(1-based line number, tokens) of the non-empty lines."""
    return [(n, words) for n, words in enumerate(map(str.split, _text_lines(path)), 1) if words]


def _floats(path: Path, line: int, words: list[str], count: int, what: str) -> np.ndarray:
    if len(words) < count:
        raise mocap_error(path, f"line {line}", f"{what} needs {count} numbers, found {len(words)}", "complete it")
    try:
        return np.array([float(w) for w in words[:count]])
    except ValueError:
        raise mocap_error(path, f"line {line}", f"{what}: {' '.join(words)} is not numeric", "fix the values") from None


def read_asf(path: str | Path) -> AsfSkeleton:
    """Read an ASF skeleton. Errors name the file, line and fix."""
    path = Path(path)
    sections: dict[str, list[tuple[int, list[str]]]] = {}
    current = None
    for n, words in _lines(path):
        if words[0].startswith(":"):
            current = words[0][1:].lower()
            sections[current] = [(n, words[1:])] if len(words) > 1 else []
        elif current is not None:
            sections[current].append((n, words))
    for needed in ("root", "bonedata", "hierarchy"):
        if needed not in sections:
            raise mocap_error(
                path, f":{needed}", "section missing", "an ASF skeleton needs :root, :bonedata and :hierarchy"
            )

    units = {w[0].lower(): w[1] for _, w in sections.get("units", []) if len(w) >= 2}
    try:
        mass, length = float(units.get("mass", 1.0)), float(units.get("length", 1.0))
    except ValueError:
        raise mocap_error(path, ":units", f"mass/length not numeric: {units}", "write numbers") from None
    angle = units.get("angle", "deg").lower()[:3]
    if angle not in ("deg", "rad") or not length > 0:
        raise mocap_error(path, ":units", f"angle '{angle}' / length {length}", "use angle deg|rad and length > 0")
    to_rad = np.pi / 180.0 if angle == "deg" else 1.0

    root = {w[0].lower(): (n, w[1:]) for n, w in sections["root"]}
    order_line, order = root.get("order", (0, ["TX", "TY", "TZ", "RX", "RY", "RZ"]))
    root_order = tuple(o.lower() for o in order)
    bad = [o for o in root_order if o not in _DOFS[:6]]
    if bad:
        raise mocap_error(path, f"line {order_line}", f"root order has {bad}", "use TX TY TZ RX RY RZ")
    root_axis = root.get("axis", (0, ["XYZ"]))[1][0].upper()
    pos_line, pos = root.get("position", (0, ["0", "0", "0"]))
    ori_line, ori = root.get("orientation", (0, ["0", "0", "0"]))
    position = _floats(path, pos_line, pos, 3, "root position")
    orientation = _floats(path, ori_line, ori, 3, "root orientation") * to_rad

    bones = _parse_bones(path, sections["bonedata"], to_rad)
    parents = _parse_hierarchy(path, sections["hierarchy"], bones)
    name = " ".join(sections["name"][0][1]) if sections.get("name") else path.stem
    return AsfSkeleton(path, name, mass, length, angle, root_order, root_axis, position, orientation, bones, parents)


def _parse_bones(path: Path, lines: list[tuple[int, list[str]]], to_rad: float) -> dict[str, AsfBone]:
    bones: dict[str, AsfBone] = {}
    block: dict | None = None
    for n, words in lines:
        key = words[0].lower()
        if key == "begin":
            block = {"line": n, "limits": []}
        elif block is None:
            raise mocap_error(path, f"line {n}", f"'{words[0]}' outside a begin/end block", "wrap bones in begin/end")
        elif key == "end":
            bone = _make_bone(path, block, to_rad)
            bones[bone.name] = bone
            block = None
        elif key in ("id", "name"):
            block[key] = words[1] if len(words) > 1 else None
        elif key == "direction":
            block[key] = _floats(path, n, words[1:], 3, "direction")
        elif key == "length":
            block[key] = float(_floats(path, n, words[1:], 1, "length")[0])
        elif key == "axis":
            block["axis"] = _floats(path, n, words[1:], 3, "axis")
            block["axis_order"] = words[4].upper() if len(words) > 4 else "XYZ"
        elif key == "dof":
            dof = tuple(w.lower() for w in words[1:])
            bad = [d for d in dof if d not in _DOFS]
            if bad:
                raise mocap_error(path, f"line {n}", f"unknown dof {bad}", f"use a subset of {' '.join(_DOFS)}")
            block["dof"] = dof
        elif key == "limits" or key.startswith("("):
            text = " ".join(words[1:] if key == "limits" else words)
            for lo, hi in re.findall(r"\(\s*(\S+)\s+([^\s)]+)\s*\)", text):
                block["limits"].append((float(lo), float(hi)))
        elif key in ("bodymass", "cofmass"):
            continue  # optional physical data, not needed for kinematics
        else:
            raise mocap_error(path, f"line {n}", f"unexpected '{words[0]}' in a bone", "check the bone block")
    if block is not None:
        raise mocap_error(path, f"line {block['line']}", "bone block never ends", "add 'end'")
    return bones


def _make_bone(path: Path, block: dict, to_rad: float) -> AsfBone:
    for key in ("name", "direction", "length"):
        if block.get(key) is None:
            raise mocap_error(path, f"bone at line {block['line']}", f"no {key}", f"add '{key} ...' to the bone")
    direction = block["direction"]
    norm = np.linalg.norm(direction)
    return AsfBone(
        id=int(block.get("id") or 0),
        name=block["name"],
        direction=direction / norm if norm > 0 else direction,
        length=block["length"],
        axis=block.get("axis", np.zeros(3)) * to_rad,
        axis_order=block.get("axis_order", "XYZ"),
        dof=block.get("dof", ()),
        limits=block["limits"],
        line=block["line"],
    )


def _parse_hierarchy(path: Path, lines: list[tuple[int, list[str]]], bones: dict[str, AsfBone]) -> dict[str, str]:
    parents: dict[str, str] = {}
    for n, words in lines:
        if words[0].lower() in ("begin", "end"):
            continue
        for name in words:
            if name != "root" and name not in bones:
                raise mocap_error(path, f"line {n}", f"hierarchy names unknown bone '{name}'", "define it in :bonedata")
        for child in words[1:]:
            parents[child] = words[0]
    orphans = [b for b in bones if b not in parents]
    if orphans:
        raise mocap_error(path, ":hierarchy", f"bones {orphans} have no parent", "list them under their parent")
    return parents


def _joint_order(asf: AsfSkeleton) -> list[str]:
    """Bones depth first from the root, children in hierarchy order, each leaf followed by its '<leaf>_end'."""
    children: dict[str, list[str]] = {}
    for child, parent in asf.parents.items():
        children.setdefault(parent, []).append(child)
    order, stack = [], list(reversed(children.get("root", [])))
    while stack:
        bone = stack.pop()
        order.append(bone)
        if bone not in children:
            order.append(f"{bone}_end")
        stack.extend(reversed(children.get(bone, [])))
    unreachable = set(asf.bones) - set(order)
    if unreachable:
        raise mocap_error(asf.path, ":hierarchy", f"bones {sorted(unreachable)} never reach root", "fix the hierarchy")
    return order


def find_asf(amc_path: str | Path) -> Path:
    """The ASF beside an AMC: the subject prefix ('02_01.amc' -> '02.asf'), else the only .asf in the folder."""
    amc_path = Path(amc_path)
    folder = amc_path.parent
    asfs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".asf") if folder.is_dir() else []
    subject = amc_path.stem.split("_", 1)[0].lower()
    for p in asfs:
        if p.stem.lower() == subject:
            return p
    if len(asfs) == 1:
        return asfs[0]
    found = f"found {', '.join(p.name for p in asfs)}" if asfs else "none found"
    raise mocap_error(
        amc_path,
        "skeleton",
        f"an AMC needs its ASF skeleton; looked for {subject}.asf or a single .asf beside it ({found})",
        "pass asf_path=... (the subject's .asf file)",
    )


def _read_amc_frames(path: Path, asf: AsfSkeleton) -> tuple[dict[str, np.ndarray], int, str]:
    """Per bone with dof (and 'root') an array (T, len(dof)); the first frame number; the angle unit."""
    widths = {name: len(b.dof) for name, b in asf.bones.items() if b.dof}
    widths["root"] = len(asf.root_order)
    # Only strings and ints are kept per line (no per-line lists): long files stay fast, the garbage collector
    # has few containers to scan.
    rows: dict[str, list[str]] = {name: [] for name in widths}  # each row's values as text
    row_lines: dict[str, list[int]] = {name: [] for name in widths}
    frame_of: dict[str, list[int]] = {name: [] for name in widths}  # frame index of each row, to check counts
    numbers: list[tuple[int, int]] = []  # (frame number, line)
    angle = None
    for n, line in enumerate(_text_lines(path), 1):
        words = line.split()
        if not words:
            continue
        head = words[0]
        if widths.get(head) == len(words) - 1 and numbers:  # the common case first: a well-formed bone line
            rows[head].append(" ".join(words[1:]))  # converted per bone at the end, in one numpy call
            row_lines[head].append(n)
            frame_of[head].append(len(numbers) - 1)
        elif head.startswith(":"):
            if head.upper() in (":DEGREES", ":RADIANS"):
                angle = "deg" if head.upper() == ":DEGREES" else "rad"
        elif len(words) == 1 and head.lstrip("-").isdigit():
            number = int(head)
            if numbers and number != numbers[-1][0] + 1:
                raise mocap_error(
                    path,
                    f"line {n}",
                    f"frame {number} follows frame {numbers[-1][0]}",
                    "frames must be numbered one by one; restore the missing frames or renumber them",
                )
            numbers.append((number, n))
        elif not numbers:
            raise mocap_error(path, f"line {n}", f"'{head}' before the first frame number", "start with a number")
        elif head not in widths:
            what = "has no dof in the ASF" if head in asf.bones else "is not a bone of the ASF"
            raise mocap_error(path, f"line {n}", f"'{head}' {what} ({asf.path.name})", "check the AMC matches its ASF")
        else:
            dof = asf.root_order if head == "root" else asf.bones[head].dof
            raise mocap_error(
                path,
                f"line {n} (frame {numbers[-1][0]})",
                f"bone '{head}' has {len(words) - 1} values, expected {widths[head]} ({' '.join(dof)})",
                "restore the missing values or check the AMC matches its ASF",
            )
    F = len(numbers)
    counts = np.stack([np.bincount(frame_of[name], minlength=F) for name in widths]) if F else np.zeros((0, 0))
    if F and not counts[:, -1].all():  # a cut-off last frame: drop it, keep the rest
        warnings.warn(f"{path}: last frame {numbers[-1][0]} is incomplete; dropped", MocapWarning, stacklevel=3)
        F -= 1
        counts = counts[:, :F]
        for name in widths:
            del rows[name][F:], row_lines[name][F:], frame_of[name][F:]
    if F == 0:
        raise mocap_error(path, "frames", "no complete frame", "an AMC holds numbered frames of bone lines")
    if (counts != 1).any():
        b, f = np.argwhere(counts != 1)[0]
        bone, (number, line) = list(widths)[b], numbers[f]
        problem = f"bone '{bone}' missing" if counts[b, f] == 0 else f"bone '{bone}' given {counts[b, f]} times"
        raise mocap_error(path, f"frame {number} (line {line})", problem, "each frame lists every moving bone once")
    data = {name: _bone_values(path, rows[name], row_lines[name], widths[name]) for name in widths}
    return data, numbers[0][0], angle or asf.angle


RADIAN_LIMIT = np.pi + 0.05
"""Euler angles in radians stay within +-pi: a file stated in degrees whose rotations all do, yet move, holds radians
(read as degrees, the clip would be nearly frozen)."""
DEGREE_FLOOR = 4 * np.pi
"""Rotations beyond +-4 pi are not radians: a file stated in radians reaching them holds degrees."""


def _check_angle_unit(path: Path, data: dict[str, np.ndarray], asf: AsfSkeleton, angle: str) -> None:
    """Refuse rotation values that cannot be in the unit the file states (``:DEGREES`` or ``:RADIANS``, else the
    ASF's), naming the file, what was found and the fix."""
    dofs = {"root": [d.lower() for d in asf.root_order], **{n: list(b.dof) for n, b in asf.bones.items()}}
    rotations = [data[n][:, [k for k, d in enumerate(dofs[n]) if d.startswith("r")]] for n in data]
    values = np.concatenate([r for r in rotations if r.size] or [np.zeros((1, 1))], axis=1)
    largest, moves = float(np.abs(values).max()), float(np.ptp(values, axis=0).max())
    if angle == "deg" and largest <= RADIAN_LIMIT and moves >= 0.5:
        problem = (
            f"its rotations are stated in degrees (:DEGREES) but all lie within +-{largest:.2f} while moving by up "
            f"to {moves:.2f}: they are radians, and read as degrees the clip would be nearly frozen"
        )
    elif angle == "rad" and largest > DEGREE_FLOOR:
        problem = f"its rotations are stated in radians (:RADIANS) but reach {largest:.0f}: they are degrees"
    else:
        return
    found = "rad" if angle == "deg" else "deg"
    header = {"deg": ":DEGREES", "rad": ":RADIANS"}
    raise mocap_error(
        path,
        "angle unit",
        problem,
        f"change the header line to {header[found]} or read it with angles='{found}' (a corpus source: read: "
        f"{{angles: {found}}}); if they really are in {header[angle]}, angles='{angle}'",
    )


def _bone_values(path: Path, rows: list[str], lines: list[int], width: int) -> np.ndarray:
    """(T, width) floats from one bone's values per frame; errors name the offending line."""
    try:
        values = np.array(" ".join(rows).split(), dtype=np.float64).reshape(len(rows), width)
    except ValueError:
        for line, text in zip(lines, rows, strict=True):
            try:
                [float(w) for w in text.split()]
            except ValueError:
                raise mocap_error(path, f"line {line}", f"non-numeric value in '{text}'", "fix it") from None
        raise
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise mocap_error(path, f"line {lines[row]}", f"NaN or inf in '{rows[row]}'", "fill the gap before reading")
    return values


def read_amc(
    amc_path: str | Path,
    asf_path: str | Path | None = None,
    *,
    fps: float | None = None,
    up_axis: str | None = None,
    angles: str | None = None,
) -> HumanMotion:
    """Read an AMC motion with its ASF skeleton into a :class:`HumanMotion` (metres, Z up).

    ``asf_path`` None looks beside the AMC (:func:`find_asf`). ``fps`` None uses CMU's 120 Hz and records it as
    ``fps_source: "cmu_default"``. ``up_axis``: the files' up axis; None is the convention 'y'; 'z' keeps a Z-up
    file as it is. ``angles`` ('deg' or 'rad') replaces the unit the file states (its header, else the ASF's); a
    stated unit the values cannot be in is refused (:func:`_check_angle_unit`).
    """
    amc_path = Path(amc_path)
    asf = read_asf(asf_path if asf_path is not None else find_asf(amc_path))
    data, first, angle = _read_amc_frames(amc_path, asf)
    if angles is None:
        _check_angle_unit(amc_path, data, asf, angle)
    elif angles in ("deg", "rad"):
        angle = angles
    else:
        raise mocap_error(amc_path, "angles", f"{angles!r} is not an angle unit", "pass angles='deg' or 'rad'")
    to_rad = np.pi / 180.0 if angle == "deg" else 1.0
    T = len(data["root"])
    scale = asf.metres_per_unit

    # Root: translation channels replace the rest position's components; rotation R = C M C^-1.
    root_values = data["root"]
    root_pos = np.broadcast_to(asf.root_position, (T, 3)).copy()
    root_rot = np.zeros((T, 3))
    root_rot_order = ""
    for k, dof in enumerate(asf.root_order):
        if dof.startswith("t"):
            root_pos[:, "xyz".index(dof[1])] = root_values[:, k]
        else:
            root_rot[:, "xyz".index(dof[1])] = root_values[:, k] * to_rad
            root_rot_order += dof[1]
    C = _axis_matrix(asf.root_axis, asf.root_orientation)
    M = _axis_matrix(root_rot_order or "xyz", root_rot)
    rot = {"root": C @ M @ C.T}
    end = {"root": root_pos}

    order = _joint_order(asf)
    for name in order:
        if name.endswith("_end") and name[:-4] in asf.bones and name not in asf.bones:
            continue
        bone = asf.bones[name]
        parent = asf.parents[name]
        C = _axis_matrix(bone.axis_order, bone.axis)
        values = data.get(name, np.zeros((T, 0)))
        angles, rot_order, length, trans = np.zeros((T, 3)), "", np.full(T, bone.length), np.zeros((T, 3))
        for k, dof in enumerate(bone.dof):
            if dof == "l":
                length = length + values[:, k]
            elif dof.startswith("t"):
                trans[:, "xyz".index(dof[1])] = values[:, k]
            else:
                angles[:, "xyz".index(dof[1])] = values[:, k] * to_rad
                rot_order += dof[1]
        M = _axis_matrix(rot_order or "xyz", angles)
        R = rot[parent] @ C @ M @ C.T
        rot[name] = R
        tip = length[:, None] * bone.direction + np.einsum("ab,tb->ta", C, trans)
        end[name] = end[parent] + np.einsum("tab,tb->ta", R, tip)

    # Joints: root at the root position; each bone at its start (= its parent's end); leaf ends.
    names = ["root"] + order
    index = {n: i for i, n in enumerate(names)}
    parents, pos, rots, rest = [-1], [root_pos], [rot["root"]], [asf.root_position]
    for name in order:
        if name in asf.bones:
            parent = asf.parents[name]
            parents.append(index[parent])
            pos.append(end[parent])
            rots.append(rot[name])
            rest.append(np.zeros(3) if parent == "root" else asf.bones[parent].length * asf.bones[parent].direction)
        else:
            bone = asf.bones[name[:-4]]
            parents.append(index[bone.name])
            pos.append(end[bone.name])
            rots.append(rot[bone.name])
            rest.append(bone.length * bone.direction)

    axis = parse_up_axis(up_axis if up_axis is not None else "y", str(amc_path))
    Z = z_up_matrix(axis)
    positions = scale * np.stack(pos, axis=1) @ Z.T
    rotations = matrix_to_quat(Z @ np.stack(rots, axis=1) @ Z.T)
    skeleton = Skeleton(tuple(names), np.array(parents), scale * np.asarray(rest) @ Z.T)
    provenance = {
        "path": str(amc_path),
        "format": "amc",
        "asf_path": str(asf.path),
        "unit": f"1/{asf.length:g} inch",
        "scale_to_m": scale,
        "unit_source": "asf",
        "angle_unit": angle,
        "angle_unit_source": "option" if angles is not None else "file",
        "up_axis": axis,
        "up_axis_source": "option" if up_axis is not None else "asf_convention",
        "fps_source": "option" if fps is not None else "cmu_default",
        "frames": T,
        "first_frame_number": first,
        "joints": "bone starts, plus <leaf>_end tips",
    }
    rate = float(fps) if fps is not None else CMU_FPS
    canonical = canonical_names(tuple(names), "asf")
    return HumanMotion(amc_path.stem, rate, skeleton, positions, rotations, provenance, canonical=canonical)
