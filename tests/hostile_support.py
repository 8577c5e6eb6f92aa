"""Hostile files the loader tests share: a pickle payload whose unpickling creates a marker file, standing in for a
command an attacker would run. A test reads the file and checks the marker never appears."""

from __future__ import annotations

import pickle
from pathlib import Path


class _Touches:
    """Unpickled, it calls ``Path.touch(marker)``: plain Python a pickle can name, as it can ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def live_payload(marker: Path) -> _Touches:
    """A payload that touches ``marker`` when unpickled, checked to do so once (then the marker is removed): a
    refusal is then the reader's doing, not a dud payload."""
    pickle.loads(pickle.dumps(_Touches(marker)))
    assert marker.exists(), "the payload does not run when unpickled"
    marker.unlink()
    return _Touches(marker)


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A ``.pt`` whose loading with torch's full unpickler would touch ``marker``."""
    import torch

    torch.save({"model": live_payload(marker)}, path)
    return path


def hostile_body_model(folder: Path, marker: Path) -> Path:
    """A body-model folder whose SMPL+H male model is a pickle that would touch ``marker`` when read."""
    path = folder / "smplh" / "SMPLH_MALE.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(live_payload(marker)))
    return folder


def amass_clip(path: Path, frames: int = 30) -> Path:
    """An AMASS-style SMPL+H parameter file (rest pose, standing still): what needs a body model to be read."""
    import numpy as np

    arrays = {"poses": np.zeros((frames, 156)), "trans": np.zeros((frames, 3)), "betas": np.zeros(16)}
    np.savez(path, **arrays, gender=np.array("male"), mocap_framerate=np.array(30.0))
    return path


def onnx_with_external_data(path: Path, location: str) -> Path:
    """A one-node ONNX model whose weight lives in the external file ``location`` (relative to the model), written
    there too: a refusal is then about where the data is, not that it is missing."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "weight")
    data = path.parent / location
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(numpy_helper.to_array(weight).tobytes())
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "weight"], ["action"])],
        "g",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


def registry_file(path: Path, **record) -> Path:
    """An expert registry of one retained expert of cluster 900, its fields replaced by ``record``."""
    import json

    fields = {"cluster": "900", "task": "HGPT-Cluster-900", "checkpoint": "model.pt", "config_hash": "h"}
    fields |= {"metrics": {}, "retained": True, "reasons": [], **record}
    path.write_text(json.dumps({"schema_version": 1, "experts": {"900": fields}}))
    return path


def radians_under_degrees(amc: Path, out: Path) -> Path:
    """A copy of a CMU AMC (and its ASF) whose rotations were converted to radians, its header still :DEGREES."""
    import math
    import shutil

    shutil.copy(next(amc.parent.glob(f"{amc.stem.split('_')[0]}.asf")), out.parent)
    lines = []
    for line in amc.read_text().splitlines():
        words = line.split()
        if len(words) > 1 and not line.startswith((":", "#")):
            first = 4 if words[0] == "root" else 1  # the root's three translations stay
            words[first:] = [f"{math.radians(float(w)):.6f}" for w in words[first:]]
        lines.append(" ".join(words))
    out.write_text("\n".join(lines) + "\n")
    return out
