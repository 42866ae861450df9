"""Recording: lm-eval task support and model backends that keep every rollout."""
