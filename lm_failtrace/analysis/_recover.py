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
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lm_failtrace.analysis._config import AnalysisConfig


class _LogisticOrConstant(ClassifierMixin, BaseEstimator):
    """Standardize + logistic regression; predicts the only class of a one-class training fold.

    Small cells with a rare class get training folds without it (unstratified folds); a plain
    logistic regression would fail there instead of making the obvious prediction.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> _LogisticOrConstant:
        self.classes_ = np.unique(y)
        self.model_ = None
        if len(self.classes_) > 1:
            self.model_ = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            self.model_.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.model_ is None:
            return np.full(len(X), self.classes_[0])
        return self.model_.predict(X)


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
    scores = cross_val_score(
        _LogisticOrConstant(), X, labels.astype(str), cv=cv, scoring="accuracy", error_score="raise"
    )
    return {
        **base,
        "accuracy_mean": float(scores.mean()),
        "accuracy_std": float(scores.std()),
        "n_folds": n_splits,
        "n_repeats": config.n_repeats,
        "stratified": isinstance(cv, RepeatedStratifiedKFold),
    }
