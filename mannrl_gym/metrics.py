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


def exact_sequences(correct: torch.Tensor, answer: torch.Tensor, sequence: torch.Tensor,
                    kind: torch.Tensor, num_kinds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence category: (sequences with every answer step correct, sequences with an
    answer step), both (num_kinds,) int64. Arguments are (N,) per step; ``sequence`` ids >= 0."""
    size = int(sequence.max()) + 1 if sequence.numel() else 0
    wrong = torch.zeros(size, dtype=torch.int64).index_add_(0, sequence, (answer & ~correct).long())
    answers = torch.zeros(size, dtype=torch.int64).index_add_(0, sequence, answer.long())
    kind_of = torch.zeros(size, dtype=torch.int64).scatter_(0, sequence, kind)  # one per sequence
    has_answer = answers > 0
    exact = torch.bincount(kind_of[has_answer & (wrong == 0)], minlength=num_kinds)
    return exact, torch.bincount(kind_of[has_answer], minlength=num_kinds)


def summarize(prediction: torch.Tensor, target: torch.Tensor, answer: torch.Tensor,
              long_range: torch.Tensor, kind: torch.Tensor, loss: torch.Tensor,
              num_classes: int, kind_names: tuple[str, ...],
              sequence: torch.Tensor | None = None) -> dict[str, float]:
    """Metrics over N valid steps (all arguments (N,)).

    f1: weighted F1 over every step (the paper's metric); accuracy: over every step;
    answer_acc: over answer steps only; long_range_acc: answer steps deciding > 10 steps back;
    answer_exact (given ``sequence``, the id of each step's sequence): share of sequences whose
    answer steps are all right (for sentences: reproduced exactly);
    answer_acc_<kind>, long_range_acc_<kind>, answer_exact_<kind>: the same per sequence
    category; loss: mean CE.
    """
    correct = prediction == target
    metrics = {"f1": weighted_f1(prediction, target, num_classes),
               "accuracy": float(correct.double().mean()) if correct.numel() else float("nan"),
               "answer_acc": _share(correct, answer),
               "long_range_acc": _share(correct, long_range),
               "loss": float(loss.double().mean()) if loss.numel() else float("nan")}
    exact = total = None
    if sequence is not None:
        exact, total = exact_sequences(correct, answer, sequence, kind, len(kind_names))
        counted = int(total.sum())  # shares of counts in double, as answer_acc's
        metrics["answer_exact"] = int(exact.sum()) / counted if counted else float("nan")
    if len(kind_names) > 1:
        for index, name in enumerate(kind_names):
            metrics[f"answer_acc_{name}"] = _share(correct, answer & (kind == index))
            metrics[f"long_range_acc_{name}"] = _share(correct, long_range & (kind == index))
            if total is not None:
                metrics[f"answer_exact_{name}"] = (int(exact[index]) / int(total[index])
                                                   if total[index] else float("nan"))
    return metrics


def summarize_set(prediction: torch.Tensor, loss: torch.Tensor, data, num_classes: int
                  ) -> dict[str, float]:
    """``summarize`` for predictions and losses (T,) over every token of a SequenceSet, in order."""
    kind = torch.repeat_interleave(data.kind, data.lengths)
    sequence = torch.repeat_interleave(torch.arange(len(data)), data.lengths)
    return summarize(prediction, data.targets, data.answer, data.long_range, kind, loss,
                     num_classes, data.kind_names, sequence)
