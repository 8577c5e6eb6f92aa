"""Native MuJoCo harness (sim2sim) for Humanoid-GPT."""
