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
