"""The expert's rsl_rl PPO config for Isaac Lab, built from the core's single source
(:data:`humanoid_gpt.experts.ppo.EXPERT_PPO`, where every value's origin is documented)."""

from isaaclab.utils import configclass
from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlOnPolicyRunnerCfg, RslRlPpoAlgorithmCfg

from humanoid_gpt.experts.ppo import EXPERT_PPO


def _model(d: dict) -> RslRlMLPModelCfg:
    dist = d["distribution_cfg"]
    return RslRlMLPModelCfg(
        hidden_dims=list(d["hidden_dims"]),
        activation=d["activation"],
        obs_normalization=d["obs_normalization"],
        distribution_cfg=RslRlMLPModelCfg.GaussianDistributionCfg(init_std=dist["init_std"]) if dist else None,
    )


@configclass
class ExpertPPORunnerCfg(RslRlOnPolicyRunnerCfg):
    seed = EXPERT_PPO["seed"]
    device = "cpu"  # rsl_rl's default is cuda:0; scripts set --device
    num_steps_per_env = EXPERT_PPO["num_steps_per_env"]
    max_iterations = EXPERT_PPO["max_iterations"]
    save_interval = EXPERT_PPO["save_interval"]
    experiment_name = "hgpt_expert"
    obs_groups = EXPERT_PPO["obs_groups"]
    actor = _model(EXPERT_PPO["actor"])
    critic = _model(EXPERT_PPO["critic"])
    algorithm = RslRlPpoAlgorithmCfg(**{k: v for k, v in EXPERT_PPO["algorithm"].items() if k != "class_name"})
