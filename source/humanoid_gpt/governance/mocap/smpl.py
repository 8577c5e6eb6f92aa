"""SMPL / SMPL-H / SMPL-X body-model parameter files (AMASS ``.npz``) read through the ``smplx`` package.

An AMASS file holds body-model parameters, not joints: ``poses`` (T, 72 SMPL | 156 SMPL-H | 165 SMPL-X; axis-angle
per joint, root first), ``trans`` (T, 3), ``betas`` (10 or 16), ``gender`` and ``mocap_framerate`` (or
``mocap_frame_rate``); SMPL-X files also split the pose into ``root_orient``, ``pose_body``, ``pose_hand`` and name
their ``surface_model_type``. The reader runs the body model for the joints and keeps the 22 body joints
(``smpl22`` preset of :mod:`.names`; the hand joints are dropped):

- positions: the body model's ``joints`` (first 22) plus ``trans``, metres. AMASS is Z up already (``up_axis='z'``);
  ``up_axis='y'`` turns a Y-up file Z up as the other readers do (:mod:`.conventions`).
- rotations: global joint orientations (w, x, y, z), the axis-angle local rotations chained along SMPL's kinematic
  tree, R_j = R_parent @ exp(pose_j); identity is SMPL's rest pose (T-pose).
- skeleton: the rest joints of this performer's shape (``betas``), so that forward kinematics with the rotations
  reproduces the positions.

Body-model files are licensed and never shipped. ``body_models=`` or the environment variable ``HGPT_BODY_MODELS``
names a folder in smplx's layout (``smpl/SMPL_NEUTRAL.npz``, ``smplh/SMPLH_MALE.pkl``, ``smplx/SMPLX_FEMALE.npz``
...; ``.npz`` or ``.pkl``) or AMASS's (``smplh/male/model.npz``); see :data:`LAYOUT_HELP`. They are read without running
code from them (docs/security.md): ``.npz`` without pickled objects, ``.pkl`` through the motion-pickle reader.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from humanoid_gpt.governance.mocap._math import matrix_to_quat
from humanoid_gpt.governance.mocap.conventions import MocapWarning, parse_up_axis, z_up_matrix
from humanoid_gpt.governance.mocap.names import PRESETS
from humanoid_gpt.governance.mocap.skeleton import HumanMotion, MocapFormatError, Skeleton, mocap_error

BODY_MODELS_ENV = "HGPT_BODY_MODELS"
#: Pose vector width (root + joints, 3 each) of each body model.
POSE_WIDTHS: dict[str, int] = {"smpl": 72, "smplh": 156, "smplx": 165}
MODEL_TYPES = tuple(POSE_WIDTHS)
FPS_KEYS = ("mocap_framerate", "mocap_frame_rate", "fps")
NUM_BODY_JOINTS = 22
_PRESET = PRESETS["smpl22"]
_FILE_PREFIX = {"smpl": "SMPL", "smplh": "SMPLH", "smplx": "SMPLX"}
_CHUNK = 256  # frames per body-model call (bounds memory: SMPL-X has 10475 vertices)

LAYOUT_HELP = (
    "put the body-model files in a folder laid out as smplx expects, <folder>/smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz "
    "(or .pkl), <folder>/smplh/SMPLH_{MALE,FEMALE}.npz|.pkl, <folder>/smplx/SMPLX_{NEUTRAL,MALE,FEMALE}.npz|.pkl "
    "(AMASS's <folder>/smplh/<gender>/model.npz works too), and pass body_models=<folder> or set "
    f"{BODY_MODELS_ENV}=<folder>. The files are licensed and not shipped: register and download them from "
    "https://smpl.is.tue.mpg.de (SMPL; rename e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl to SMPL_NEUTRAL.pkl), "
    "https://mano.is.tue.mpg.de (SMPL-H, 'Extended SMPL+H model') or https://smpl-x.is.tue.mpg.de (SMPL-X)"
)


def is_smpl_params(keys) -> bool:
    """Whether an ``.npz``'s keys are body-model parameters (AMASS) rather than joint positions."""
    keys = set(keys)
    return {"poses", "trans", "betas"} <= keys or {"root_orient", "pose_body", "trans"} <= keys


def _text(value) -> str:
    """A string stored in an npz (0-d str or bytes array) as str."""
    value = np.asarray(value).reshape(-1)[0] if np.asarray(value).size else ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _poses(data, keys: list[str], path: Path) -> tuple[np.ndarray, str]:
    if "poses" in keys:
        return np.asarray(data["poses"]), "poses"
    # SMPL-X AMASS files without 'poses': root_orient (T, 3), pose_body (T, 63), pose_hand (T, 90), pose_jaw,
    # pose_eye; rebuilt in SMPL-X's full-pose order (root, body, jaw, eyes, left hand, right hand).
    root, body = np.asarray(data["root_orient"]), np.asarray(data["pose_body"])
    T = root.shape[0]
    parts = {k: np.asarray(data[k]) if k in keys else np.zeros((T, n)) for k, n in
             (("pose_jaw", 3), ("pose_eye", 6), ("pose_hand", 90))}  # fmt: skip
    try:
        poses = np.concatenate([root, body, parts["pose_jaw"], parts["pose_eye"], parts["pose_hand"]], axis=1)
    except ValueError as e:
        raise mocap_error(
            path, "root_orient/pose_body", f"pose parts do not fit together ({e})", "fix the file"
        ) from None
    return poses, "root_orient+pose_body"


def _model_type(width: int, declared: str | None, option: str | None, path: Path, key: str) -> str:
    by_width = next((t for t, w in POSE_WIDTHS.items() if w == width), None)
    if option is not None and option.lower() not in POSE_WIDTHS:
        raise ValueError(f"{path}: unknown model_type {option!r}; use one of {', '.join(MODEL_TYPES)}")
    if by_width is None:
        widths = ", ".join(f"{w} ({t})" for t, w in POSE_WIDTHS.items())
        raise mocap_error(
            path,
            key,
            f"{width} pose values per frame fit no body model ({widths})",
            "store the full axis-angle pose (root first) of an SMPL, SMPL-H or SMPL-X model",
        )
    chosen = (option or declared or by_width).lower()
    if chosen != by_width:
        source = "model_type=" if option else "surface_model_type"
        raise mocap_error(
            path,
            key,
            f"{source} says {chosen} ({POSE_WIDTHS.get(chosen, '?')} pose values) but the poses have {width}",
            f"pass model_type='{by_width}' or fix the file",
        )
    return chosen


def _body_model_file(root: Path, model_type: str, gender: str, path: Path) -> Path:
    prefix = _FILE_PREFIX[model_type]
    folder = root / model_type
    candidates = [folder / f"{prefix}_{gender.upper()}.{ext}" for ext in ("npz", "pkl")]
    candidates.append(folder / gender / "model.npz")
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise mocap_error(
            path,
            "body model",
            f"an AMASS-style SMPL parameter file ({model_type}, {gender}): reading it runs the body model through the "
            f"smplx package and needs the {model_type} {gender} body model, not found (looked for "
            + ", ".join(str(c) for c in candidates)
            + ")",
            LAYOUT_HELP,
        )
    return found


# What smplx reads of each body model (SMPL-H adds the hand PCA, SMPL-X its face landmarks).
_MODEL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_HAND_KEYS = ("hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr")
_NEEDED_KEYS: dict[str, tuple[str, ...]] = {
    "smpl": _MODEL_KEYS,
    "smplh": _MODEL_KEYS + _HAND_KEYS,
    "smplx": _MODEL_KEYS + _HAND_KEYS + ("lmk_faces_idx", "lmk_bary_coords"),
}
_PKL_FIX = (
    "convert the model to .npz once, in a Python where you trust the file (with chumpy and scipy installed): "
    "import pickle, numpy as np; d = pickle.load(open('MODEL.pkl', 'rb'), encoding='latin1'); "
    "np.savez('MODEL.npz', **{k: np.asarray(v.r if hasattr(v, 'r') else v.toarray() if hasattr(v, 'toarray') else v) "
    "for k, v in d.items() if not isinstance(v, dict)}); keep MODEL.npz beside the .pkl, with its name (the .npz is "
    "read first)"
)


class _SparseState:
    """Stands in for a pickled scipy.sparse matrix (official SMPL .pkl files hold their joint regressors as CSC
    matrices): unpickling fills its ``__dict__`` with the matrix's arrays and runs nothing of the file."""

    def dense(self, file: Path, key: str) -> np.ndarray:
        import scipy.sparse

        state = vars(self)
        try:
            arrays = (state["data"], state["indices"], state["indptr"])
            return scipy.sparse.csc_matrix(arrays, shape=state.get("_shape", state.get("shape"))).toarray()
        except (KeyError, TypeError, ValueError) as e:
            raise MocapFormatError(f"{file}: '{key}' is not a readable sparse matrix ({e}). Fix: {_PKL_FIX}") from None


_SPARSE_STAND_INS = {
    (f"scipy.sparse.{module}", f"csc_{flavour}"): _SparseState
    for module in ("csc", "_csc")
    for flavour in ("matrix", "array")
}


def _load_model_data(file: Path, model_type: str) -> dict:
    """The arrays of a body-model file, read without running code from it: ``.npz`` without pickled objects, ``.pkl``
    through the motion-pickle reader (numpy arrays, containers, and scipy CSC matrices made dense); a file that
    needs more (chumpy arrays, pickled objects in a key the model needs) is refused with how to convert it."""
    from humanoid_gpt.motion.pickles import load_pickle

    pickled: list[str] = []
    if file.suffix == ".npz":
        try:
            with np.load(file, allow_pickle=False) as archive:
                data = {}
                for key in archive.files:
                    try:
                        data[key] = archive[key]
                    except ValueError as e:  # an object array: left unread, refused below if the model needs it
                        if "allow_pickle" not in str(e):
                            raise
                        pickled.append(key)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise MocapFormatError(f"{file}: cannot load the body model ({e}). Fix: re-download it") from None
    else:
        data = load_pickle(file, MocapFormatError, _SPARSE_STAND_INS, _PKL_FIX, encoding="latin1")
        if not isinstance(data, dict):
            raise MocapFormatError(f"{file}: holds a {type(data).__name__}, not a body model's dict. Fix: {_PKL_FIX}")
        data = {k: v.dense(file, k) if isinstance(v, _SparseState) else v for k, v in data.items()}
    needed = _NEEDED_KEYS[model_type]
    objects = [k for k in needed if k in pickled]
    if objects:
        raise MocapFormatError(
            f"{file}: '{objects[0]}' holds pickled Python objects, which are not read (unpickling could run code from "
            "the file). Fix: in a Python where you trust the file, re-save that key as a plain numeric array: "
            f"d = dict(np.load('{file}', allow_pickle=True)); d['{objects[0]}'] = np.asarray(<the array it holds>); "
            f"np.savez('{file}', **d)"
        )
    missing = [k for k in needed if k not in data]
    if missing:
        raise MocapFormatError(
            f"{file}: not a {model_type} body-model file (no {', '.join(missing)}). Fix: re-download it"
        )
    odd = [k for k in needed if not (isinstance(data[k], np.ndarray) and data[k].dtype.kind in "biuf")]
    if odd:
        raise MocapFormatError(
            f"{file}: '{odd[0]}' is a {type(data[odd[0]]).__name__} of {getattr(data[odd[0]], 'dtype', 'objects')}, "
            "not a numeric array. Fix: re-download the body model"
        )
    return data


def _joints_only(torch):
    class JointsOnly(torch.nn.Module):
        """Stands in for smplx's vertex-joint selector: the extra vertex keypoints (nose, toes, finger tips) are not
        needed for the body joints, and skipping them lets any vertex count through."""

        def forward(self, vertices, joints):
            return joints

    return JointsOnly


def _build_model(model_type: str, file: Path, gender: str, num_betas: int, batch: int):
    try:
        import smplx
        import torch
        from smplx.utils import Struct
    except ImportError as e:
        raise MocapFormatError(
            f"reading SMPL parameter files needs the smplx package ({e}). Fix: pip install smplx==0.1.28"
        ) from None
    data = _load_model_data(file, model_type)
    common = dict(
        gender=gender,
        num_betas=num_betas,
        batch_size=batch,
        dtype=torch.float64,
        create_transl=False,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-component shape spaces
        if model_type == "smpl":
            model = smplx.SMPL(str(file), data_struct=Struct(**data), **common)
        elif model_type == "smplh":
            model = smplx.SMPLH(
                str(file), data_struct=Struct(**data), use_pca=False, flat_hand_mean=True, ext=file.suffix[1:], **common
            )
        else:  # smplx's SMPLX reads its file itself, pickles allowed: it gets a copy of only the arrays read here
            with tempfile.TemporaryDirectory() as tmp:
                plain = Path(tmp) / f"SMPLX_{gender.upper()}.npz"
                np.savez(
                    plain, **{k: v for k, v in data.items() if isinstance(v, np.ndarray) and not v.dtype.hasobject}
                )
                model = smplx.SMPLX(str(plain), use_pca=False, flat_hand_mean=True, ext="npz", **common)
    model.vertex_joint_selector = _joints_only(torch)()
    model.eval()
    return model, torch


def _run_model(model, torch, model_type: str, poses: np.ndarray, betas: np.ndarray, batch: int) -> np.ndarray:
    """(T, 22, 3) body joints without translation."""
    T = poses.shape[0]
    out = np.empty((T, NUM_BODY_JOINTS, 3))
    with torch.no_grad():
        for start in range(0, T, batch):
            chunk = poses[start : start + batch]
            n = chunk.shape[0]
            if n < batch:  # SMPL-X needs the batch size it was built with
                chunk = np.concatenate([chunk, np.zeros((batch - n, chunk.shape[1]))])
            p = torch.as_tensor(chunk, dtype=torch.float64)
            b = torch.as_tensor(np.broadcast_to(betas, (batch, betas.size)).copy(), dtype=torch.float64)
            kw = {"betas": b, "global_orient": p[:, :3]}
            if model_type == "smpl":
                kw["body_pose"] = p[:, 3:72]
            elif model_type == "smplh":
                kw.update(body_pose=p[:, 3:66], left_hand_pose=p[:, 66:111], right_hand_pose=p[:, 111:156])
            else:
                kw.update(
                    body_pose=p[:, 3:66],
                    jaw_pose=p[:, 66:69],
                    leye_pose=p[:, 69:72],
                    reye_pose=p[:, 72:75],
                    left_hand_pose=p[:, 75:120],
                    right_hand_pose=p[:, 120:165],
                    expression=torch.zeros((batch, model.num_expression_coeffs), dtype=torch.float64),
                )
            joints = model(**kw, return_verts=False).joints
            out[start : start + n] = joints[:n, :NUM_BODY_JOINTS].cpu().numpy()
    return out


def global_rotations(poses: np.ndarray, parents) -> np.ndarray:
    """(T, J, 3, 3) global rotations from axis-angle local rotations (T, >= 3J) chained along ``parents``."""
    from scipy.spatial.transform import Rotation

    J = len(parents)
    T = poses.shape[0]
    local = Rotation.from_rotvec(poses[:, : 3 * J].reshape(-1, 3)).as_matrix().reshape(T, J, 3, 3)
    glob = np.empty_like(local)
    for j, p in enumerate(parents):
        glob[:, j] = local[:, j] if p < 0 else glob[:, p] @ local[:, j]
    return glob


def _file_fps(data, keys: list[str], path: Path) -> float | None:
    for k in FPS_KEYS:
        if k in keys:
            value = float(np.asarray(data[k]).reshape(-1)[0])
            if not (np.isfinite(value) and value > 0):
                raise mocap_error(path, k, f"frame rate {value} is not positive", "pass fps=")
            return value
    return None


def read_smpl(
    path: str | Path,
    *,
    body_models: str | Path | None = None,
    model_type: str | None = None,
    gender: str | None = None,
    fps: float | None = None,
    up_axis: str = "z",
) -> HumanMotion:
    """Read an AMASS-style SMPL / SMPL-H / SMPL-X parameter ``.npz`` into a :class:`HumanMotion` of the 22 SMPL
    body joints (metres, Z up, global rotations (w, x, y, z) relative to the T-pose), running the body model found
    in ``body_models`` (else ``$HGPT_BODY_MODELS``). ``model_type`` ('smpl', 'smplh', 'smplx') and ``gender``
    override the file's; ``fps`` overrides ``mocap_framerate``."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise mocap_error(path, "file", f"not a readable .npz ({e})", "save the parameters with numpy.savez") from None
    with archive as data:
        keys = list(data.keys())
        if not is_smpl_params(keys):
            raise mocap_error(
                path, "keys", f"no body-model parameters (has {', '.join(keys)})", "store poses, trans and betas"
            )
        poses, pose_key = _poses(data, keys, path)
        trans = np.asarray(data["trans"]) if "trans" in keys else None
        betas = np.asarray(data["betas"]).reshape(-1) if "betas" in keys else np.zeros(10)
        file_gender = _text(data["gender"]) if "gender" in keys else None
        declared = _text(data["surface_model_type"]).lower() if "surface_model_type" in keys else None
        file_fps = _file_fps(data, keys, path)

    if poses.ndim != 2 or poses.shape[0] == 0:
        raise mocap_error(path, pose_key, f"shape {poses.shape}, expected (T, pose values) with T > 0", "fix the file")
    T = poses.shape[0]
    if trans is None or trans.shape != (T, 3):
        shape = None if trans is None else trans.shape
        raise mocap_error(path, "trans", f"shape {shape}, expected ({T}, 3)", "store one translation per frame")
    if declared is not None and declared not in POSE_WIDTHS:
        declared = None  # e.g. 'smplx_locked_head' or 'mano': let the pose width decide
    kind = _model_type(poses.shape[1], declared, model_type, path, pose_key)
    poses = poses.astype(np.float64)
    trans = trans.astype(np.float64)
    betas = betas.astype(np.float64)
    for name, arr in (("poses", poses), ("trans", trans), ("betas", betas)):
        if not np.isfinite(arr).all():
            raise mocap_error(path, name, "NaN or inf values", "fill the gaps before reading")

    sex = (gender or file_gender or "neutral").strip().lower()
    if sex not in ("neutral", "male", "female"):
        raise mocap_error(path, "gender", f"unknown gender {sex!r}", "pass gender='neutral', 'male' or 'female'")
    root = body_models if body_models is not None else os.environ.get(BODY_MODELS_ENV)
    if not root:
        raise mocap_error(
            path,
            "body models",
            "an AMASS-style SMPL parameter file: reading it runs the body model through the smplx package and needs "
            f"the licensed body-model files; no folder given (body_models= or {BODY_MODELS_ENV})",
            LAYOUT_HELP,
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise mocap_error(path, "body models", f"the body-model folder {root} does not exist", LAYOUT_HELP)
    model_file = _body_model_file(root, kind, sex, path)

    batch = min(_CHUNK, T)
    model, torch = _build_model(kind, model_file, sex, betas.size, batch)
    used_betas = betas[: model.num_betas]
    if model.num_betas < betas.size and np.abs(betas[model.num_betas :]).max() > 0:
        warnings.warn(
            f"{path}: {betas.size} shape coefficients but the {kind} model has {model.num_betas}; the rest are dropped",
            MocapWarning,
            stacklevel=2,
        )
    if used_betas.size < model.num_betas:
        used_betas = np.concatenate([used_betas, np.zeros(model.num_betas - used_betas.size)])
    joints = _run_model(model, torch, kind, poses, used_betas, batch)
    rest = _run_model(model, torch, kind, np.zeros((1, poses.shape[1])), used_betas, batch)[0]

    parents = np.array(_PRESET.parents)
    rot = global_rotations(poses, parents)
    positions = joints + trans[:, None, :]
    axis = parse_up_axis(up_axis, str(path))
    C = z_up_matrix(axis)
    positions = positions @ C.T
    rot = C @ rot @ C.T
    rest = rest @ C.T
    offsets = np.where(parents[:, None] < 0, rest, rest - rest[np.maximum(parents, 0)])

    if fps is not None:
        if not fps > 0:
            raise ValueError(f"{path}: fps must be positive, got {fps}")
        if file_fps is not None and abs(file_fps - fps) > 1e-6 * fps:
            warnings.warn(f"{path}: file says {file_fps} fps; using fps={fps} as passed", MocapWarning, stacklevel=2)
        rate, fps_source = float(fps), "option"
    elif file_fps is not None:
        rate, fps_source = file_fps, "file"
    else:
        raise mocap_error(
            path, "fps", f"no frame rate in the file (keys {', '.join(FPS_KEYS)}) and none given", "pass fps="
        )
    provenance = {
        "path": str(path),
        "format": "smpl",
        "model_type": kind,
        "model_type_source": "option" if model_type else ("file" if declared else "pose width"),
        "gender": sex,
        "gender_source": "option" if gender else ("file" if file_gender else "default"),
        "body_model": str(model_file),
        "num_betas": int(model.num_betas),
        "pose_key": pose_key,
        "unit": "m",
        "scale_to_m": 1.0,
        "unit_source": "format",
        "up_axis": axis,
        "up_axis_source": "option" if up_axis != "z" else "format",
        "fps_source": fps_source,
        "frames": T,
    }
    skeleton = Skeleton(_PRESET.joints, parents, offsets)
    return HumanMotion(
        path.stem, rate, skeleton, positions, matrix_to_quat(rot), provenance, canonical=_PRESET.canonical
    )
