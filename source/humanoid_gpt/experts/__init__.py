"""Cluster experts: PPO training on either backend, checkpoints and resume, evaluation, retention, registry."""
