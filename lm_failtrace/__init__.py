"""lm-failtrace: failure recoverability from the rollouts LLM evaluations throw away.

Pipeline, one subpackage per stage:

- ``record``   lm-eval tasks support and model backends that keep every rollout
- ``profiles`` rollouts -> per-failure-unit profile tables (features, rescue rates)
- ``analysis`` regimes, routing rules and routers, honest cross-validated evaluation
- ``report``   tables, figures and the HTML report
- ``tracking`` MLflow logging, registry links, promotion
"""

__version__ = "0.1.0"
