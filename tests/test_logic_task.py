import pytest
import torch

from mannrl_gym.stream import layout
from mannrl_gym.tasks import logic

ID = {s: i for i, s in enumerate(logic.SYMBOLS)}


def decode(ids):
    return [logic.SYMBOLS[i] for i in ids.tolist()]


def all_sequences(data):
    for i in range(len(data)):
        a, b = int(data.offsets[i]), int(data.offsets[i + 1])
        yield decode(data.inputs[a:b]), decode(data.targets[a:b]), data.answer[a:b], data.long_range[a:b]


def test_paper_example_and_echo_rule():
    inputs, targets, deciding = logic._sequence(1, [1, 0])
    assert inputs == list("or10=|") and targets == list(".or101")
    assert deciding == 2


def test_generator_follows_the_paper_distribution():
    data, keys = logic.generate(6000, torch.Generator().manual_seed(0))
    kinds = torch.bincount(data.kind, minlength=3).float() / 6000
    assert torch.all((kinds - 1 / 3).abs() < 0.03)
    assert keys.unique().numel() <= 460
    for inputs, targets, answer, _ in all_sequences(data):
        operator = "".join(inputs[:3]) if inputs[0] != "o" else "or"
        operands = [int(s) for s in inputs[len(operator):-2]]
        assert inputs[-2:] == ["=", "|"] and targets[0] == "."
        assert targets[1:-1] == inputs[:-2]  # echo of the previous input
        assert 2 <= len(operands) <= 20
        if operator == "and":
            assert operands.count(0) <= 1
            expected = int(all(operands))
        elif operator == "or":
            assert operands.count(1) <= 1
            expected = int(any(operands))
        else:
            assert len(operands) == 2
            expected = operands[0] ^ operands[1]
        assert targets[-1] == str(expected)
        assert answer.tolist() == [False] * (len(inputs) - 1) + [True]


def test_exactly_460_distinct_sequences_exist():
    _, keys = logic.generate(40000, torch.Generator().manual_seed(1))
    assert keys.unique().numel() == 460


def test_same_seed_same_data_other_seed_other_data():
    a = logic.make_task(500, seed=3)
    b = logic.make_task(500, seed=3)
    c = logic.make_task(500, seed=4)
    assert torch.equal(a.train.inputs, b.train.inputs)
    assert not torch.equal(a.train.inputs, c.train.inputs)


@pytest.mark.parametrize("count", [0, None])  # by val_fraction (before issue 23); the default
def test_distinct_holdout_shares_no_sequence_with_training(count):
    task = logic.make_task(10000, seed=0, holdout="distinct", holdout_distinct=count)
    train = {tuple(s[0]) for s in all_sequences(task.train)}
    val = [tuple(s[0]) for s in all_sequences(task.validation)]
    if count == 0:
        assert 0.03 < len(val) / 10000 < 0.08
    else:
        assert len(val) == len(set(val)) == 100
    assert not train.intersection(val)
    random = logic.make_task(10000, seed=0, holdout="random")
    random_train = {tuple(s[0]) for s in all_sequences(random.train)}
    overlap = sum(tuple(s[0]) in random_train for s in all_sequences(random.validation))
    assert overlap / len(random.validation) > 0.9  # why the distinct holdout exists


def test_holdout_distinct_validates_on_that_many_distinct_sequences_once_each():
    by_fraction = logic.make_task(10000, seed=0, holdout_distinct=0)
    fraction_val = [tuple(s[0]) for s in all_sequences(by_fraction.validation)]
    assert len(set(fraction_val)) < 40  # by val_fraction: a few frequent sequences, many copies
    task = logic.make_task(10000, seed=0, holdout_distinct=100)
    train = {tuple(s[0]) for s in all_sequences(task.train)}
    val = [tuple(s[0]) for s in all_sequences(task.validation)]
    assert len(val) == len(set(val)) == 100
    assert not train.intersection(val)
    assert len(task.train) + 100 < 10000  # the other copies left training too
    with pytest.raises(ValueError, match="'holdout_distinct' is 460"):
        logic.make_task(10000, seed=0, holdout_distinct=460)


def test_stream_layout_reads_every_token_once_in_order():
    task = logic.make_task(200, seed=0)
    data = task.train
    stream = layout(data, 16, torch.Generator().manual_seed(0))
    assert int(stream.valid.sum()) == data.num_tokens
    assert int(stream.start.sum()) == len(data)
    assert int(stream.answer.sum()) == int(data.answer.sum())
    # per slot: valid steps form a prefix, and each sequence ends with its answer step
    for slot in range(16):
        valid = stream.valid[:, slot]
        n = int(valid.sum())
        assert valid[:n].all() and not valid[n:].any()
        starts = torch.nonzero(stream.start[:n, slot]).squeeze(1).tolist() + [n]
        for a, b in zip(starts, starts[1:]):
            assert stream.answer[b - 1, slot] and not stream.answer[a:b - 1, slot].any()


def test_holdout_distinct_beyond_the_distinct_sequences_is_a_clear_error(tmp_path, capsys):
    from mannrl_gym import cli

    from conftest import ROOT

    code = cli.main(["train", str(ROOT / "configs" / "logic.yaml"), "num_sequences=500", "holdout_distinct=300",
                     f"out_dir={tmp_path}", "epochs=1", "wandb_mode=disabled"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "logic.yaml" in err and "key 'holdout_distinct'" in err and "179" in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_holdout_distinct_without_the_distinct_logic_holdout_is_refused():
    from mannrl_gym.config import ConfigError, from_mapping

    with pytest.raises(ConfigError, match="key 'holdout_distinct'.*holdout: distinct"):
        from_mapping({"holdout": "random", "holdout_distinct": 100})
    with pytest.raises(ConfigError, match="key 'holdout_distinct'.*logic"):
        from_mapping({"task": "sentence", "holdout_distinct": 100})
