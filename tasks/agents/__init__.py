"""rsl_rl agent configs beside the tasks (the Isaac Lab convention)."""
