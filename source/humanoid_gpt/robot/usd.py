"""The G1 as USD for Isaac Lab, converted from the MJCF with ``mujoco-usd-converter`` and cached by content hash.

Isaac Lab's bundled G1 assets live on NVIDIA's asset server; converting the same MJCF the MuJoCo backend uses keeps
both backends on one robot. Armature, gains and limits are set by the Isaac Lab actuator config, not baked in here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from humanoid_gpt import settings
from humanoid_gpt.errors import AssetError
from humanoid_gpt.robot.g1 import G1


def model_content_hash(xml: Path) -> str:
    """sha256 over the MJCF and every file beside it (meshes), so any asset change makes a new conversion."""
    h = hashlib.sha256()
    for f in sorted(p for p in xml.parent.rglob("*") if p.is_file()):
        h.update(f.relative_to(xml.parent).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def register_usd_schemas() -> None:
    """Register the MuJoCo and Newton USD schema plugins the G1 conversion applies (``MjcSceneAPI``,
    ``NewtonSceneAPI``). OpenUSD reads its plugins once, when the first stage is made: a process that makes any stage
    before these are registered (the ground stand-in on a fresh cache) can never convert the G1 afterwards, so call
    this before the first ``pxr`` stage."""
    try:
        import mujoco_usd_converter  # noqa: F401  (registers its MjcPhysics plugin on import)
        import newton_usd_schemas  # noqa: F401  (registers the Newton plugin on import)
    except ImportError as e:
        raise AssetError("converting the G1 to USD needs mujoco-usd-converter: run scripts/setup_env.sh") from e


def g1_usd(g1: G1, cache: Path | None = None) -> Path:
    """Path of the G1's USD (converted on first use, then reused while the model files are unchanged)."""
    register_usd_schemas()
    import mujoco_usd_converter

    key = f"{model_content_hash(g1.xml_path)[:16]}-{mujoco_usd_converter.__version__}"
    out = (cache or settings.cache_dir() / "usd") / f"{g1.xml_path.stem}-{key}"
    if (out / ".complete").is_file():
        return Path((out / ".complete").read_text().strip())
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".usd-", dir=out.parent))
    stage.chmod(0o755)
    try:
        asset = mujoco_usd_converter.Converter().convert(str(g1.xml_path), str(stage))
        produced = Path(asset.path)
        rel = produced.relative_to(stage) if produced.is_absolute() else produced
        (stage / ".complete").write_text(str(out / rel))
        os.replace(stage, out)  # publish in one rename: a crash never leaves a half conversion that looks done
    except FileExistsError:
        pass  # another process published it first
    except OSError as e:
        if not (out / ".complete").is_file():
            raise AssetError(f"could not publish the USD conversion into {out}: {e}") from e
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Path((out / ".complete").read_text().strip())
