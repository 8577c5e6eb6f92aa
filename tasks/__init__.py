"""Isaac Lab tasks for Humanoid-GPT: one tracking task per motion cluster, play variants and ``HGPT-Distill``.

Importing this package sets up the local asset stand-ins (before Isaac Lab reads its asset root) and registers the
gym ids of ``HGPT-Distill`` and of every cluster of the active manifest (``HGPT_CLUSTER_MANIFEST``, else one cluster
per dataset folder under the data root): a manifest that cannot be read stops the import with its reason. Building
an env needs Isaac Lab (kit-less on Newton works without Isaac Sim).
"""

from humanoid_gpt_tasks.assets import ensure_local_assets

ensure_local_assets()

from humanoid_gpt.catalog.manifests import active_manifest  # noqa: E402
from humanoid_gpt_tasks.registration import register_distill, register_tasks  # noqa: E402

TASK_IDS = [*register_tasks(active_manifest()), register_distill()]
"""Gym ids for every cluster of the active manifest (``HGPT-Cluster-042`` and ``HGPT-Cluster-042-Play``) and the
distillation task ``HGPT-Distill``."""
