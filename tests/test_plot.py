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
