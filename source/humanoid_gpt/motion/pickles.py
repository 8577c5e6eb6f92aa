"""G1 motion pickles other projects publish, read without running code from the file.

Two layouts (README "Motion files"):

- GMR's robot motion (General Motion Retargeting; used by TWIST and video2robot): a dict with ``fps``, ``root_pos``
  (N, 3), ``root_rot`` (N, 4) quaternion **x, y, z, w**, ``dof_pos`` (N, 29) in the G1 order, and optionally
  ``local_body_pos`` and ``link_body_list`` (not needed: forward kinematics gives the bodies).
- The PHC motion-library dict (PHC, ASAP, HumanoidVerse, PBHC): ``{motion name: {"root_trans_offset" (N, 3),
  "root_rot" (N, 4) x, y, z, w, "dof" (N, 29), "fps", "pose_aa", ...}}``, or the inner dict alone. A file holding
  several motions is refused with their names: :func:`read_phc_motions` returns them all.

A pickle can make its reader run any code. These files are read with an unpickler that builds only numpy arrays,
numpy scalars, dicts, lists, tuples, strings and numbers, and refuses a file that asks for anything else, naming it
(:func:`load_pickle`; the SMPL body-model reader uses it too, with stand-ins for the sparse matrices those hold).
Files saved with ``joblib.dump`` keep their arrays outside the pickle stream and need joblib's own (unrestricted)
loader: they are refused with the fix (re-save with ``pickle.dump``, or convert them yourself in Python).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from humanoid_gpt.errors import HGPTError, MotionFormatError
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.file_checks import check_shape, require_keys
from humanoid_gpt.motion.rates import infer_provenance, npz_rate
from humanoid_gpt.robot.g1 import G1_JOINT_NAMES

# What numpy arrays and scalars unpickle through under pickle protocols 0-5 (numpy 1 and 2 module names; protocols
# 0-2 carry bytes through codecs.encode, protocol 5 arrays through _frombuffer), and nothing that can run code.
_ALLOWED = {
    (f"numpy.{core}.{module}", name)
    for core in ("core", "_core")
    for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("collections", "OrderedDict")}
GMR_KEYS = ("fps", "root_pos", "root_rot", "dof_pos")
PHC_KEYS = ("root_trans_offset", "root_rot", "dof")


class _ArraysOnly(pickle.Unpickler):
    def __init__(self, file, path: Path, error: type[HGPTError], stand_ins: Mapping, fix: str, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.path, self.error, self.stand_ins, self.fix = path, error, stand_ins, fix

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if (module, name) in self.stand_ins:
            return self.stand_ins[module, name]
        if module.startswith("joblib"):
            raise self.error(
                f"{self.path}: saved with joblib.dump (its arrays live outside the pickle stream, and joblib's "
                "loader may run code from the file). Fix: load it yourself where you trust it (joblib.load) and "
                "re-save the dict with pickle.dump, or save each motion with humanoid_gpt.motion.save_clip"
            )
        if module.startswith("torch"):
            raise self.error(
                f"{self.path}: holds torch objects ({module}.{name}); save the arrays as numpy (tensor.numpy())"
            )
        raise self.error(
            f"{self.path}: the pickle asks for {module}.{name}; this reader builds only numpy arrays, dicts, lists and "
            f"numbers, so it is refused rather than run. Fix: {self.fix}"
        )


def load_pickle(
    path: str | Path,
    error: type[HGPTError] = MotionFormatError,
    stand_ins: Mapping[tuple[str, str], type] | None = None,
    fix: str = "re-save the motion as plain arrays",
    encoding: str = "ASCII",
) -> object:
    """The object a pickle file holds, built only from arrays, containers and numbers (see the module docstring).
    Other readers of pickles reuse it: ``stand_ins`` maps further (module, name) pairs to classes of theirs built in
    their place (holding the pickled state, running nothing of the file); anything else raises ``error`` naming the
    file and ``fix``. ``encoding`` decodes Python 2 strings (``"latin1"`` for files pickled by Python 2)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _ArraysOnly(f, path, error, stand_ins or {}, fix, encoding).load()
    except error:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        raise error(f"{path}: not a readable pickle ({type(e).__name__}: {e}); corrupt or truncated") from e


def _array(data: Mapping, key: str, path: Path, width: int) -> np.ndarray:
    try:
        arr = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MotionFormatError(f"{path}: '{key}' is not a numeric array ({e})") from e
    if key in ("dof_pos", "dof") and arr.ndim == 2 and arr.shape[1] == 23:
        raise MotionFormatError(
            f"{path}: '{key}' has shape {arr.shape}, expected (N, {width}); 23 joints is the G1 23-DoF variant (no "
            "wrist joints, locked waist), not the 29-DoF G1 this project drives: retarget the source motion to the "
            "29-DoF G1"
        )
    check_shape(arr, path, key, (None, width))
    return arr


def _clip(path: Path, name: str, data: Mapping, keys: tuple[str, str, str], fps: float | None, fmt: str) -> MotionClip:
    pos_key, rot_key, dof_key = keys
    require_keys(data, path, keys, f"a {fmt} motion pickle")
    root_pos = _array(data, pos_key, path, 3)
    xyzw = _array(data, rot_key, path, 4)
    joints = _array(data, dof_key, path, len(G1_JOINT_NAMES))
    if not len(root_pos) == len(xyzw) == len(joints):
        lengths = {k: len(a) for k, a in zip(keys, (root_pos, xyzw, joints), strict=True)}
        raise MotionFormatError(f"{path}: {fmt} arrays disagree in length {lengths}; the file is inconsistent")
    rate = npz_rate(data, path, fps)
    prov = {
        **infer_provenance(path),
        "source_format": fmt,
        "joint_order": f"G1 order ('{dof_key}' stores no names)",
        "quaternion_stored": "xyzw",
        **rate.provenance(),
    }
    return MotionClip(name, rate.fps, root_pos, xyzw[:, [3, 0, 1, 2]], joints, prov)


def _phc_entries(data: Mapping, path: Path) -> dict[str, Mapping]:
    if all(k in data for k in PHC_KEYS):
        return {path.stem: data}
    return {str(k): v for k, v in data.items() if isinstance(v, Mapping) and all(x in v for x in PHC_KEYS)}


def read_phc_motions(path: str | Path, fps: float | None = None) -> list[MotionClip]:
    """Every motion of a PHC motion-library pickle, in file order (not validated)."""
    path = Path(path)
    data = load_pickle(path)
    entries = _phc_entries(data, path) if isinstance(data, Mapping) else {}
    if not entries:
        raise MotionFormatError(f"{path}: no PHC motion (a dict with {list(PHC_KEYS)}) in this pickle")
    return [_clip(path, name, m, PHC_KEYS, fps, "phc") for name, m in entries.items()]


def read_motion_pickle(path: str | Path, fps: float | None = None) -> MotionClip:
    """A GMR or single-motion PHC pickle as a clip (not validated; :func:`humanoid_gpt.motion.load_clip` validates,
    which also catches a quaternion stored w first)."""
    path = Path(path)
    data = load_pickle(path)
    if not isinstance(data, Mapping):
        raise MotionFormatError(f"{path}: the pickle holds a {type(data).__name__}, not a motion dict")
    if "dof_pos" in data or "root_pos" in data:
        return _clip(path, path.stem, data, ("root_pos", "root_rot", "dof_pos"), fps, "gmr")
    entries = _phc_entries(data, path)
    if len(entries) == 1:
        (name, motion), *_ = entries.items()
        return _clip(path, name, motion, PHC_KEYS, fps, "phc")
    if len(entries) > 1:
        names = list(entries)
        raise MotionFormatError(
            f"{path}: a PHC motion library of {len(names)} motions ({', '.join(names[:3])}, ...); a clip is one "
            "motion. Fix: humanoid_gpt.motion.pickles.read_phc_motions(path) returns them all (save each with "
            "save_clip)"
        )
    raise MotionFormatError(
        f"{path}: unknown motion pickle with keys {sorted(map(str, data))[:8]}; expected GMR's ({list(GMR_KEYS)}) "
        f"or a PHC motion library ({list(PHC_KEYS)} per motion)"
    )
