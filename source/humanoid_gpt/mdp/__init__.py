"""The tracking MDP, written once: observations, rewards, terminations, resets and randomization as batched torch
functions over :class:`~humanoid_gpt.state.KinematicState` tensors. Isaac Lab terms and the MuJoCo harness call
these and nothing else, so both backends train and evaluate on the same maths."""
