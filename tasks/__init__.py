"""Isaac Lab tasks for Humanoid-GPT: one tracking task per motion cluster, play variants and ``HGPT-Distill``.

Importing this package sets up the local asset stand-ins (before Isaac Lab reads its asset root) and registers the
gym ids; building an env needs Isaac Lab (kit-less on Newton works without Isaac Sim).
"""

from humanoid_gpt_tasks.assets import ensure_local_assets

ensure_local_assets()

from humanoid_gpt_tasks.registration import register_tasks  # noqa: E402

TASK_IDS = register_tasks()
