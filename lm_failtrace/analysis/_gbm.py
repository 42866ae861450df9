"""Gradient-boosted trees as plain data: read out of scikit-learn, predicted in numpy.

:class:`~lm_failtrace.analysis._policies.GradientBoostedRouter` fits one scikit-learn
``HistGradientBoostingRegressor`` per operator, then keeps only plain numbers: the baseline
prediction and every tree's nodes (feature index, threshold, children, leaf flag, value, where a
missing value goes). :func:`tree_nodes` reads them out of a fitted model; :func:`predict_trees`
predicts from them with a vectorised traversal, adding the trees to the baseline in the order
scikit-learn does, so a router loaded from JSON predicts what the fitted model predicted.
Numeric features only (the router never declares categorical ones).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

#: Node columns kept per tree node (all trees of all operators concatenated, children global).
NODE_FIELDS: tuple[str, ...] = (
    "node_feature_",
    "node_threshold_",
    "node_left_",
    "node_right_",
    "node_is_leaf_",
    "node_value_",
    "node_missing_left_",
)

#: Rows predicted at once (bounds the rows x trees index matrix of the traversal).
_CHUNK = 32_768


def tree_nodes(model: HistGradientBoostingRegressor, offset: int) -> tuple[float, list[dict]]:
    """Baseline and trees of a fitted regressor as plain data, node ids shifted by ``offset``.

    Returns:
        ``(baseline, trees)``: each tree a dict of the :data:`NODE_FIELDS` lists plus ``root``
        (the global id of its first node); ``offset`` grows by each tree's size in turn.
    """
    baseline = float(np.asarray(model._baseline_prediction, dtype=float).ravel()[0])
    trees = []
    for (predictor,) in model._predictors:  # one tree per iteration for a regressor
        nodes = predictor.nodes
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits are not supported")
        leaf = nodes["is_leaf"].astype(bool)
        children = np.where(leaf, 0, offset)  # leaves' children are unused: keep them 0
        trees.append(
            {
                "root": offset,
                "node_feature_": nodes["feature_idx"].astype(int).tolist(),
                "node_threshold_": nodes["num_threshold"].astype(float).tolist(),
                "node_left_": (nodes["left"].astype(int) + children).tolist(),
                "node_right_": (nodes["right"].astype(int) + children).tolist(),
                "node_is_leaf_": leaf.tolist(),
                "node_value_": nodes["value"].astype(float).tolist(),
                "node_missing_left_": nodes["missing_go_to_left"].astype(bool).tolist(),
            }
        )
        offset += len(nodes)
    return baseline, trees


def _leaf_values(matrix: np.ndarray, roots: np.ndarray, nodes: dict[str, np.ndarray]) -> np.ndarray:
    """Value of the leaf each row reaches in each tree, shape (n_rows, n_trees)."""
    idx = np.tile(roots, (len(matrix), 1))
    active = ~nodes["is_leaf"][idx]
    while active.any():
        rows = np.nonzero(active)[0]
        node = idx[active]
        x = matrix[rows, nodes["feature"][node]]
        go_left = np.where(np.isnan(x), nodes["missing_left"][node], x <= nodes["threshold"][node])
        idx[active] = np.where(go_left, nodes["left"][node], nodes["right"][node])
        active = ~nodes["is_leaf"][idx]
    return nodes["value"][idx]


def predict_trees(
    matrix: np.ndarray, baseline: np.ndarray, trees: np.ndarray, nodes: dict[str, np.ndarray]
) -> np.ndarray:
    """Predicted target per row and operator, shape (n_rows, n_operators).

    Args:
        matrix: float features, one row per unit.
        baseline: baseline prediction per operator.
        trees: int (n_trees, 2) of (root node, operator), each operator's trees in boosting order.
        nodes: arrays ``feature``, ``threshold``, ``left``, ``right``, ``is_leaf``, ``value``,
            ``missing_left`` over all nodes.
    """
    out = np.tile(np.asarray(baseline, dtype=float), (len(matrix), 1))
    if not len(trees):
        return out
    for start in range(0, len(matrix), _CHUNK):
        part = slice(start, start + _CHUNK)
        values = _leaf_values(matrix[part], trees[:, 0], nodes)
        for t, operator in enumerate(trees[:, 1]):  # sequential sums, as scikit-learn adds
            out[part, operator] += values[:, t]
    return out


def node_arrays(state: dict[str, object]) -> dict[str, np.ndarray]:
    """Typed node arrays from the stored :data:`NODE_FIELDS` (lists or arrays, JSON nulls ok).

    A threshold stored as JSON ``null`` was +inf (scikit-learn's split on missing values only).
    """
    threshold = np.asarray(state["node_threshold_"], dtype=float)
    return {
        "feature": np.asarray(state["node_feature_"], dtype=np.intp),
        "threshold": np.where(np.isnan(threshold), np.inf, threshold),
        "left": np.asarray(state["node_left_"], dtype=np.intp),
        "right": np.asarray(state["node_right_"], dtype=np.intp),
        "is_leaf": np.asarray(state["node_is_leaf_"], dtype=bool),
        "value": np.asarray(state["node_value_"], dtype=float),
        "missing_left": np.asarray(state["node_missing_left_"], dtype=bool),
    }
