"""The evaluation protocol: folds, cross-validation, metrics, comparison, error analysis,
held-out scoring, report, tables and plots."""
