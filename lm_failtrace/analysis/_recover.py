"""Can a label (the regime, the model) be recovered from the features? Cross-validated accuracy.

Classifier: standardized features -> multinomial logistic regression (scikit-learn defaults,
``max_iter=1000``). Folds: repeated stratified K-fold when every class has at least K members,
otherwise repeated plain K-fold; accuracy is reported as mean +- std over all ``repeats x folds``
held-out folds, next to the majority-class rate (the accuracy of always guessing the commonest
label), which is the bar any claim of recoverability must clear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lm_failtrace.analysis._config import AnalysisConfig


def cv_accuracy(X: np.ndarray, labels: np.ndarray, config: AnalysisConfig) -> dict:
    """Held-out accuracy of predicting ``labels`` from ``X`` (see the module docstring)."""
    counts = pd.Series(labels, dtype=object).value_counts()
    n = len(labels)
    base = {
        "majority_class": str(counts.index[0]) if n else None,
        "majority_rate": float(counts.iloc[0] / n) if n else None,
        "n_classes": len(counts),
        "classifier": "standardize + logistic regression",
    }
    if len(counts) < 2:
        return {**base, "skipped": "a single class: nothing to predict"}
    n_splits = min(config.n_folds, n)
    if counts.iloc[-1] >= n_splits:
        cv = RepeatedStratifiedKFold(
            n_splits=n_splits, n_repeats=config.n_repeats, random_state=config.random_state
        )
    else:
        cv = RepeatedKFold(
            n_splits=n_splits, n_repeats=config.n_repeats, random_state=config.random_state
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_score(model, X, labels.astype(str), cv=cv, scoring="accuracy")
    return {
        **base,
        "accuracy_mean": float(scores.mean()),
        "accuracy_std": float(scores.std()),
        "n_folds": n_splits,
        "n_repeats": config.n_repeats,
        "stratified": isinstance(cv, RepeatedStratifiedKFold),
    }
