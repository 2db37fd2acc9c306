import pytest

from mannrl_gym import cli
from mannrl_gym.plotting import memory_trace
from mannrl_gym.trainer import train

from conftest import small_config


def test_plot_writes_curves_and_memory_heat_map(tmp_path, capsys):
    runs = [train(small_config(out_dir=str(tmp_path), run_name=agent, agent=agent, epochs=2))
            for agent in ("mannrl", "no_memory")]
    assert cli.main(["plot", *map(str, runs), "--out", str(tmp_path / "png")]) == 0
    for name in ("curves.png", "memory.png"):
        data = (tmp_path / "png" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    memory, inputs, outputs, targets = memory_trace(runs[0])
    assert memory.shape == (len(inputs), 48) and len(outputs) == len(targets) == len(inputs)
    assert inputs[-2:] == ["=", "|"] and ((memory >= 0) & (memory <= 1)).all()
    assert (memory[0] == 0).all()  # the pass starts with an empty memory


def test_plot_names_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_plot_of_a_replicated_run_names_its_replicas(tmp_path, capsys):
    parent = tmp_path / "run"
    assert cli.main(["train", "configs/logic.yaml", "seeds=0-1", "epochs=1", "num_sequences=300",
                     "eval_batch_size=64", "wandb_mode=disabled", f"out_dir={tmp_path}",
                     "run_name=run"]) == 0
    capsys.readouterr()
    assert cli.main(["plot", str(parent)]) == 2
    assert f"a replicated run (replicas.yaml); plot its replicas' run directories: mannrl plot " \
           f"{parent}/*/" in capsys.readouterr().err
    assert cli.main(["plot", str(parent / "seed0"), str(parent / "seed1")]) == 0
    assert (parent / "seed0" / "curves.png").is_file()


def test_one_epoch_runs_are_drawn_with_markers(tmp_path):
    from mannrl_gym.plotting import curves_figure

    run = train(small_config(out_dir=str(tmp_path), run_name="one", epochs=1))
    fig = curves_figure([run])
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 4 and all(line.get_marker() not in (None, "None", "") for line in lines)
    assert all(len(line.get_xdata()) == 1 for line in lines)  # one point: only a marker shows
    ticks = fig.axes[2].get_xticks()  # whole epochs, not 0.945 ... 1.050
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


def test_a_run_given_twice_is_drawn_once(tmp_path, monkeypatch):
    from mannrl_gym import plotting

    run = train(small_config(out_dir=str(tmp_path), run_name="one", epochs=1))
    drawn = []
    monkeypatch.setattr(plotting, "curves_figure", lambda dirs: drawn.append(dirs) or
                        plotting.pyplot().figure())
    plotting.plot([run, tmp_path / "." / "one", run], out_dir=tmp_path / "png")
    assert drawn == [[run]]


def test_a_long_sequence_heat_map_stays_readable():
    import numpy as np

    from mannrl_gym.plotting import MAX_WIDTH_INCHES, memory_figure

    steps = 400  # a sentence read and written back: hundreds of steps
    inputs = [chr(97 + i % 26) for i in range(steps)]
    fig = memory_figure(np.random.default_rng(0).random((steps, 64)), inputs, inputs, inputs)
    fig.canvas.draw()
    width_px = fig.get_figwidth() * 110
    assert fig.get_figwidth() <= MAX_WIDTH_INCHES and width_px <= 2000
    title = fig.axes[0].title.get_window_extent()
    assert title.x0 >= 0 and title.x1 <= fig.bbox.width  # not clipped
    assert len(fig.axes[0].get_xticks()) <= 80


def test_sequence_out_of_range_is_a_clear_error(tmp_path, capsys):
    run = train(small_config(out_dir=str(tmp_path), run_name="r", epochs=1))
    assert cli.main(["plot", str(run), "--sequence", "100000"]) == 2
    err = capsys.readouterr().err
    assert "--sequence 100000" in err and "numbered 0 to" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stopped:  # argparse refuses a negative number
        cli.main(["plot", str(run), "--sequence", "-1"])
    assert stopped.value.code == 2 and "must be >= 0" in capsys.readouterr().err


def test_runs_that_differ_only_in_seed_or_name_get_distinct_legend_labels(tmp_path):
    from mannrl_gym.plotting import curves_figure

    runs = [train(small_config(out_dir=str(tmp_path), run_name=f"s{seed}", seed=seed, epochs=1))
            for seed in (0, 1)]
    runs.append(train(small_config(out_dir=str(tmp_path), run_name="again", seed=1, epochs=1)))
    labels = [line.get_label() for line in curves_figure(runs).axes[0].get_lines()]
    assert len(labels) == len(set(labels)) == 3, labels
    assert "seed=0" in labels[0] and "again" in labels[2]


def test_a_key_a_resume_changed_is_in_the_legend(tmp_path):
    """config.yaml holds the last lr only: the label says what the resume changed, and when
    (a resume that only adds epochs is not mentioned)."""
    from mannrl_gym.plotting import curves_figure
    from mannrl_gym.trainer import resume_config

    run = train(small_config(out_dir=str(tmp_path), run_name="r", epochs=1))
    for more in ({"epochs": 2}, {"epochs": 3, "lr": 3e-4}):
        train(resume_config(run, more), run_dir=run, resume=True)
    label = curves_figure([run]).axes[0].get_lines()[0].get_label()
    assert label == "mannrl; lr 0.0001→0.0003 at epoch 2", label


def test_curves_need_no_data_file_and_memory_png_says_why_it_is_missing(tmp_path, capsys):
    """A run whose data file has moved still plots its curves (metrics.jsonl alone); the heat
    map, which replays the data, is skipped with the reason, or is an error when asked for
    with --sequence. A run without a checkpoint says why it has no heat map either."""
    from test_sentence_env import ENGLISH, sentence_config

    english = tmp_path / "tiny.en"
    english.write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")
    run = train(sentence_config((str(english),), tmp_path, epochs=1, run_name="moved"))
    english.write_text("\n".join(ENGLISH[::-1]) + "\n", encoding="utf-8")  # edited
    capsys.readouterr()
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "e")]) == 0
    said = capsys.readouterr().out
    assert "memory.png not drawn" in said and "has changed since the run read it" in said
    assert (tmp_path / "e" / "curves.png").is_file()
    english.rename(tmp_path / "elsewhere.en")
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "a")]) == 0
    said = capsys.readouterr().out
    assert f"wrote {tmp_path / 'a' / 'curves.png'}" in said
    assert "memory.png not drawn" in said and "tiny.en" in said
    assert not (tmp_path / "a" / "memory.png").exists()
    assert cli.main(["plot", str(run), "--sequence", "0", "--out", str(tmp_path / "b")]) == 2
    assert "tiny.en" in capsys.readouterr().err
    (run / "checkpoint.pt").unlink()
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "c")]) == 0
    assert "it has none" in capsys.readouterr().out


def test_runs_of_other_tasks_or_data_are_told_apart_in_the_legend(tmp_path):
    from mannrl_gym.plotting import curves_figure

    runs = [train(small_config(out_dir=str(tmp_path), run_name="logic", epochs=1)),
            train(small_config(out_dir=str(tmp_path), run_name="sample", epochs=1,
                               task="sentence", data="sample", num_sentences=20,
                               curriculum_chunk=20, memory_size=16, hidden_size=16))]
    labels = [text.get_text() for text in curves_figure(runs).legends[0].get_texts()]
    assert labels[0].startswith("mannrl, task=logic") and "task=sentence" in labels[1]
    assert "data_path=sentences.en" in labels[1]  # the file's name, not its folders


def test_runs_evaluated_every_kth_epoch_are_drawn_as_lines_through_their_evaluations(tmp_path):
    """eval_every=2: the validation panels join epochs 2 and 4 (a NaN at 1 and 3 would
    break the line into lone dots); train panels likewise hold only the epochs with a value."""
    import math

    from mannrl_gym.plotting import curves_figure

    run = train(small_config(out_dir=str(tmp_path), run_name="every2", epochs=4, eval_every=2))
    fig = curves_figure([run])
    validation = fig.axes[1].get_lines()[0]
    assert list(validation.get_xdata()) == [2, 4]
    assert not any(math.isnan(y) for ax in fig.axes for line in ax.get_lines()
                   for y in line.get_ydata())


def test_plot_of_a_run_without_a_memory_net_says_why_there_is_no_heat_map(tmp_path, capsys):
    run = train(small_config(out_dir=str(tmp_path), run_name="nomem", agent="lstm", epochs=1))
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "p")]) == 0
    said = capsys.readouterr().out
    assert "memory.png not drawn: lstm has no memory-net" in said
    assert not (tmp_path / "p" / "memory.png").exists()
    assert cli.main(["plot", str(run), "--sequence", "0", "--out", str(tmp_path / "q")]) == 2
    assert "--sequence 0:" in capsys.readouterr().err and not (tmp_path / "q").exists()


def test_plot_of_a_run_whose_agent_cannot_be_imported_says_so(tmp_path, capsys):
    # not "has no memory-net": with its folder on PYTHONPATH the same run gets a heat map
    run = train(small_config(out_dir=str(tmp_path), run_name="gone", agent="mannrl", epochs=1))
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("agent: mannrl", "agent: gone_module.half:Half"))
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "p")]) == 0
    said = capsys.readouterr().out
    assert "memory.png not drawn: the run's key 'agent' is 'gone_module.half:Half', but module " \
           "'gone_module.half' cannot be imported" in said and "PYTHONPATH" in said
    assert (tmp_path / "p" / "curves.png").exists() and not (tmp_path / "p" / "memory.png").exists()
