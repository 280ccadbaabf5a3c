"""Training utilities shared by the recipes: callbacks, checkpoints with resume, schedules. Model-agnostic."""
