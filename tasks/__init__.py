"""lm-eval task YAMLs and their helper modules (installed as ``lm_failtrace_tasks``)."""
