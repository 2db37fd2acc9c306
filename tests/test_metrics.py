import numpy as np
import torch
from sklearn.metrics import f1_score

from mannrl_gym.metrics import summarize, weighted_f1


def test_weighted_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    for classes in (2, 11, 50):
        target = rng.integers(0, classes, 500)
        prediction = np.where(rng.random(500) < 0.7, target, rng.integers(0, classes, 500))
        expected = f1_score(target, prediction, average="weighted")
        got = weighted_f1(torch.from_numpy(prediction), torch.from_numpy(target), classes)
        assert abs(got - expected) < 1e-9


def test_answer_accuracy_counts_only_answer_steps():
    target = torch.tensor([1, 2, 3, 4])
    prediction = torch.tensor([1, 2, 3, 0])  # only the answer step is wrong
    answer = torch.tensor([False, False, False, True])
    metrics = summarize(prediction, target, answer, answer, torch.zeros(4, dtype=torch.int64),
                        torch.zeros(4), 5, ("all",))
    assert metrics["accuracy"] == 0.75
    assert metrics["answer_acc"] == 0.0 and metrics["long_range_acc"] == 0.0
    assert metrics["f1"] < 1.0


def test_answer_exact_is_a_share_of_sequences_in_double():
    """Three sequences of two answer steps each; one is all right: 1/3 in double, as
    answer_acc's shares are (a float32 1/3 differs from it in the 8th digit)."""
    target = torch.arange(6)
    prediction = torch.tensor([0, 1, 2, 0, 0, 5])  # sequence 0 right, 1 and 2 one wrong each
    answer = torch.ones(6, dtype=torch.bool)
    sequence = torch.tensor([0, 0, 1, 1, 2, 2])
    kind = torch.tensor([0, 0, 1, 1, 1, 1])
    metrics = summarize(prediction, target, answer, answer, kind, torch.zeros(6), 6,
                        ("a", "b"), sequence)
    assert metrics["answer_exact"] == 1 / 3 and metrics["answer_acc"] == 4 / 6
    assert metrics["answer_exact_a"] == 1.0 and metrics["answer_exact_b"] == 0.0
