"""Per-epoch metrics from one evaluation pass: the paper's weighted F1 and answer accuracy."""

from __future__ import annotations

import torch


def weighted_f1(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Support-weighted mean of per-class F1 (scikit-learn's ``average="weighted"``).

    prediction, target: (N,) int64 class ids. A class never predicted scores F1 = 0.
    """
    if target.numel() == 0:
        return float("nan")
    confusion = torch.bincount(target * num_classes + prediction,
                               minlength=num_classes * num_classes).view(num_classes, num_classes)
    true_positive = confusion.diag().double()
    support = confusion.sum(1).double()
    predicted = confusion.sum(0).double()
    denominator = support + predicted
    f1 = torch.where(denominator > 0, 2 * true_positive / denominator.clamp(min=1), 0.0)
    return float((f1 * support).sum() / support.sum())


def _share(flags: torch.Tensor, within: torch.Tensor) -> float:
    count = int(within.sum())
    return float(flags[within].double().mean()) if count else float("nan")


def summarize(prediction: torch.Tensor, target: torch.Tensor, answer: torch.Tensor,
              long_range: torch.Tensor, kind: torch.Tensor, loss: torch.Tensor,
              num_classes: int, kind_names: tuple[str, ...]) -> dict[str, float]:
    """Metrics over N valid steps (all arguments (N,)).

    f1: weighted F1 over every step (the paper's metric); accuracy: over every step;
    answer_acc: over answer steps only; long_range_acc: answer steps deciding > 10 steps back;
    answer_acc_<kind>, long_range_acc_<kind>: the same per sequence category; loss: mean CE.
    """
    correct = prediction == target
    metrics = {"f1": weighted_f1(prediction, target, num_classes),
               "accuracy": float(correct.double().mean()) if correct.numel() else float("nan"),
               "answer_acc": _share(correct, answer),
               "long_range_acc": _share(correct, long_range),
               "loss": float(loss.double().mean()) if loss.numel() else float("nan")}
    if len(kind_names) > 1:
        for index, name in enumerate(kind_names):
            metrics[f"answer_acc_{name}"] = _share(correct, answer & (kind == index))
            metrics[f"long_range_acc_{name}"] = _share(correct, long_range & (kind == index))
    return metrics


def summarize_set(prediction: torch.Tensor, loss: torch.Tensor, data, num_classes: int
                  ) -> dict[str, float]:
    """``summarize`` for predictions and losses (T,) over every token of a SequenceSet, in order."""
    kind = torch.repeat_interleave(data.kind, data.lengths)
    return summarize(prediction, data.targets, data.answer, data.long_range, kind, loss,
                     num_classes, data.kind_names)
