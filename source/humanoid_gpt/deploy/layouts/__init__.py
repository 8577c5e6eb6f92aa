"""Policy layouts of other labs: how to recognise a policy file, simulate the G1 as it expects (gains, default pose,
action scale, physics rate) and build its observation. One module per layout; the harness, the checker and
distillation look a file up here (:func:`identify`), so the next lab's layout is one new module in :data:`LAYOUTS`.

Our own students carry metadata and are not a layout here (``humanoid_gpt.deploy.policies``).
"""

from __future__ import annotations

from pathlib import Path

from humanoid_gpt.deploy.layouts import holosoma, mjlab, release, twist2
from humanoid_gpt.deploy.layouts.base import Layout, LayoutError, LayoutPolicy, OnnxSignature, onnx_signature
from humanoid_gpt.deploy.onnx import ONNX_FORMAT

__all__ = ["Layout", "LayoutError", "LayoutPolicy", "OnnxSignature", "identify", "layout_names", "onnx_signature"]
LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (twist2.LAYOUT, holosoma.LAYOUT, mjlab.LAYOUT, release.LAYOUT)
}
"""Every known layout by name; a new lab's layout is one module and one entry here."""


def layout_names() -> list[str]:
    return sorted(LAYOUTS)


def identify(path: str | Path, name: str | None = None) -> Layout | None:
    """The layout of policy file ``path``: ``name`` when given (checked against the file), else the one layout that
    recognises it; None for files that are not another lab's layout (our own students, checkpoints, TorchScript)."""
    layouts = LAYOUTS
    if name is not None and name not in layouts:
        raise LayoutError(f"--layout {name!r} is not a known layout; known: {', '.join(layouts)}")
    if not str(path).endswith(".onnx"):
        if name is not None:
            raise LayoutError(f"{path}: --layout {name} needs an ONNX file")
        return None
    sig = onnx_signature(path)
    if name is not None:
        if not layouts[name].fits(sig):
            raise LayoutError(
                f"{path} does not fit the {name} layout ({layouts[name].summary}); found {sig.describe()}"
            )
        return layouts[name]
    if sig.metadata.get("format") == ONNX_FORMAT:  # our students: policies.make_policy runs them
        return None
    found = [layout for layout in layouts.values() if layout.recognize(sig)]
    if len(found) == 1:
        return found[0]
    known = "; ".join(f"{lay.name}: {lay.summary}" for lay in layouts.values())
    if not found:
        raise LayoutError(
            f"{path}: no known policy layout fits it ({sig.describe()}). Known layouts: {known}; Humanoid-GPT "
            "students carry metadata (format=humanoid_gpt). If the file was renamed or re-exported, pass --layout"
        )
    raise LayoutError(f"{path} fits several layouts ({', '.join(x.name for x in found)}); pass --layout")
