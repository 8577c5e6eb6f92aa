"""PPO for one cluster expert. Values follow BeyondMimic's G1 tracking agent (rsl_rl), which trains single-motion
experts with this network and these hyperparameters; DESIGN.md's CPU run used the same MLP."""

from isaaclab.utils import configclass
from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlOnPolicyRunnerCfg, RslRlPpoAlgorithmCfg


@configclass
class ExpertPPORunnerCfg(RslRlOnPolicyRunnerCfg):
    seed = 42
    device = "cpu"  # rsl_rl's default is cuda:0; scripts set --device
    num_steps_per_env = 24
    max_iterations = 10000
    save_interval = 500
    experiment_name = "hgpt_expert"
    obs_groups = {"actor": ["policy"], "critic": ["critic"]}
    actor = RslRlMLPModelCfg(
        hidden_dims=[512, 256, 128],
        activation="elu",
        obs_normalization=True,
        distribution_cfg=RslRlMLPModelCfg.GaussianDistributionCfg(init_std=1.0),
    )
    critic = RslRlMLPModelCfg(hidden_dims=[512, 256, 128], activation="elu", obs_normalization=True)
    algorithm = RslRlPpoAlgorithmCfg(
        value_loss_coef=1.0,
        use_clipped_value_loss=True,
        clip_param=0.2,
        entropy_coef=0.005,
        num_learning_epochs=5,
        num_mini_batches=4,
        learning_rate=1.0e-3,
        schedule="adaptive",
        gamma=0.99,
        lam=0.95,
        desired_kl=0.01,
        max_grad_norm=1.0,
    )
