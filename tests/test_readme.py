"""The README's promises: its example agent runs, its commands exist."""

import re

import numpy as np

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == [
        "python3 bootstrap.py train", "python3 bootstrap.py test"]
    assert "python3 bootstrap.py test" in (ROOT / ".ci/run").read_text()


def test_custom_agent_example_runs_and_learns_a_memory(capsys):
    code = re.search(r"<!-- example: custom-agent -->\n```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    accuracy = float(capsys.readouterr().out.split(":")[-1])
    assert 0.0 <= accuracy <= 1.0
    assert np.isfinite(namespace["W"]).all()
