"""Isaac Lab tasks for Humanoid-GPT (registered gymnasium ids)."""
