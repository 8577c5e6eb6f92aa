"""What the evidence scripts share: the LAFAN1 clusters (training performers and a held-out one) and how a policy
is scored on 10-s windows of clips."""

from __future__ import annotations

from humanoid_gpt.motion.clip import clip_windows
from humanoid_gpt_sim2sim.evaluate import evaluate

CLUSTERS = {
    # Subject 1's walks for training; another performer's walk held out.
    "walk": (["walk1_subject1", "walk2_subject1", "walk3_subject1"], ["walk1_subject5"]),
    "dance": (["dance1_subject1", "dance2_subject1"], ["dance1_subject2"]),
    "fight": (["fight1_subject2", "fightAndSports1_subject1"], ["fight1_subject3"]),
}


def window_set(clips, count: int, seconds: float = 10.0):
    return [w for c in clips for w in clip_windows(c, seconds, count)]


def eval_policy(g1, clips, make_policy, tracking) -> dict:
    """Aggregate sim2sim metrics; ``make_policy(env)`` builds the policy for the evaluation env."""
    return evaluate(g1, clips, make_policy, tracking, num_envs=min(16, len(clips)), progress=False)["aggregate"]
