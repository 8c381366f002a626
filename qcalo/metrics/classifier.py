"""Classifier two-sample test: can a small MLP tell the candidate from the reference?

As in the CaloChallenge evaluation, the answer is the ROC AUC on held-out events: 0.5 means the
two samples are indistinguishable to this classifier, 1.0 that they are perfectly separated.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties counted half)."""
    from scipy.stats import rankdata

    labels = np.asarray(labels, bool)
    ranks = rankdata(scores)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return 0.5
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def null_auc_sigma(n_test_pos: int, n_test_neg: int) -> float:
    """Standard deviation of the AUC when both classes come from one distribution."""
    return float(np.sqrt((n_test_pos + n_test_neg + 1) / (12.0 * n_test_pos * n_test_neg)))


def classifier_auc(
    reference: np.ndarray,
    candidate: np.ndarray,
    seed: int = 0,
    hidden: int = 64,
    epochs: int = 40,
    patience: int = 5,
    batch_size: int = 256,
) -> tuple[float, float]:
    """Held-out ROC AUC of an MLP trained to separate candidate (1) from reference (0), and the
    AUC's standard deviation for two identical samples of the same test size.

    Both samples are cut to the same size; 60 % train, 20 % validation (early stopping on its
    loss), 20 % test. Features are standardised with the training set's statistics.
    """
    rng = np.random.default_rng(seed)
    n = min(len(reference), len(candidate))
    x = np.concatenate(
        [reference[rng.permutation(len(reference))[:n]], candidate[rng.permutation(len(candidate))[:n]]]
    ).astype(np.float32)
    y = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
    order = rng.permutation(2 * n)
    x, y = x[order], y[order]
    n_tr, n_va = int(0.6 * 2 * n), int(0.2 * 2 * n)
    mu, sd = x[:n_tr].mean(axis=0), x[:n_tr].std(axis=0)
    x = (x - mu) / np.where(sd > 0, sd, 1.0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    with torch.random.fork_rng():  # reproducible, and the caller's torch RNG is left alone
        torch.manual_seed(seed)
        scores = _train_and_score(xt, yt, n_tr, n_va, hidden, epochs, patience, batch_size)
    y_test = y[n_tr + n_va :].astype(bool)
    return roc_auc(y_test, scores), null_auc_sigma(int(y_test.sum()), int((~y_test).sum()))


def _train_and_score(
    xt: torch.Tensor,
    yt: torch.Tensor,
    n_tr: int,
    n_va: int,
    hidden: int,
    epochs: int,
    patience: int,
    batch_size: int,
) -> np.ndarray:
    model = nn.Sequential(
        nn.Linear(xt.shape[1], hidden),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    best, best_state, stale = np.inf, None, 0
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(n_tr).split(batch_size):
            opt.zero_grad()
            loss_fn(model(xt[idx]).squeeze(1), yt[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = loss_fn(model(xt[n_tr : n_tr + n_va]).squeeze(1), yt[n_tr : n_tr + n_va]).item()
        if val < best - 1e-4:
            best, best_state, stale = val, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        return model(xt[n_tr + n_va :]).squeeze(1).numpy()
