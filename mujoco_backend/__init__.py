"""The native MuJoCo physics backend of Humanoid-GPT: batched C MuJoCo worlds, the tracking env PPO and DAgger
train in, and the evaluation harness the sim2sim validation step runs."""
