"""Local stand-ins for the assets Isaac Lab would fetch from NVIDIA's asset server (unreachable on many machines).

Isaac Lab resolves ``ISAACSIM_ASSET_ROOT`` when ``isaaclab.utils.assets`` is first imported, so
:func:`ensure_local_assets` must run before any Isaac Lab import; ``humanoid_gpt_tasks`` calls it on import. It only
sets the variable when the user has not, so machines with the real asset server keep it.
"""

from __future__ import annotations

import os
from pathlib import Path

from humanoid_gpt import settings
from humanoid_gpt.robot.usd import register_usd_schemas

GROUND_REL_PATH = "Isaac/IsaacLab/Environments/Grid/default_ground_plane_checker_v1/default_ground_plane.usda"


def make_ground_usd(path: Path) -> Path:
    """Our own ground-plane USD with the prim layout Isaac Lab's ground spawner expects: a collision ``Plane`` (the
    physics material binds to it; Newton imports it as an infinite plane) and a visual ``Environment/Geometry``
    quad with ``st`` texture coordinates (the spawner rescales and rewrites them)."""
    register_usd_schemas()  # this may be the process's first stage: later the G1 conversion needs those schemas
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, Vt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.usda")
    stage = Usd.Stage.CreateNew(str(tmp))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/GroundPlane")
    stage.SetDefaultPrim(root.GetPrim())
    plane = UsdGeom.Plane.Define(stage, "/GroundPlane/CollisionPlane")
    plane.CreateAxisAttr(UsdGeom.Tokens.z)
    plane.CreateWidthAttr(100.0)
    plane.CreateLengthAttr(100.0)
    plane.CreatePurposeAttr(UsdGeom.Tokens.guide)
    UsdPhysics.CollisionAPI.Apply(plane.GetPrim())
    env = UsdGeom.Xform.Define(stage, "/GroundPlane/Environment")
    env.AddScaleOp().Set(Gf.Vec3f(1.0, 1.0, 1.0))
    mesh = UsdGeom.Mesh.Define(stage, "/GroundPlane/Environment/Geometry")
    h = 50.0
    mesh.CreatePointsAttr(
        Vt.Vec3fArray([Gf.Vec3f(-h, -h, 0), Gf.Vec3f(h, -h, 0), Gf.Vec3f(h, h, 0), Gf.Vec3f(-h, h, 0)])
    )
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray([4]))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray([0, 1, 2, 3]))
    mesh.CreateNormalsAttr(Vt.Vec3fArray([Gf.Vec3f(0, 0, 1)] * 4))
    st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
    st.Set(Vt.Vec2fArray([Gf.Vec2f(0, 0), Gf.Vec2f(1, 0), Gf.Vec2f(1, 1), Gf.Vec2f(0, 1)]))
    stage.GetRootLayer().Save()
    os.replace(tmp, path)
    return path


def ensure_local_assets(root: Path | None = None) -> Path:
    """Create the local asset folder if needed and point ``ISAACSIM_ASSET_ROOT`` at it (unless already set)."""
    if os.environ.get("ISAACSIM_ASSET_ROOT"):
        return Path(os.environ["ISAACSIM_ASSET_ROOT"])
    root = root or settings.cache_dir() / "isaac_assets"
    ground = root / GROUND_REL_PATH
    if not ground.is_file():
        make_ground_usd(ground)
    os.environ["ISAACSIM_ASSET_ROOT"] = str(root)
    return root
