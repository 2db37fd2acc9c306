"""The README's and docs' promises: their code runs, their links lead somewhere, the config
reference matches ``Config``.

Every ```python block of README.md and docs/*.md runs here (fast: the README's blocks take
seconds). A block that trains for minutes or needs a file the repository does not hold is
marked with ``<!-- skip-test: why -->`` on the line before its opening fence.
"""

import re

import numpy as np
import pytest

from conftest import ROOT
from mannrl_gym import agent_registry
from mannrl_gym.config_docs import render, undocumented

README = (ROOT / "README.md").read_text()
PAGES = {"README.md": README, **{f"docs/{p.name}": p.read_text()
                                  for p in sorted((ROOT / "docs").glob("*.md"))}}
BLOCK = re.compile(r"(<!-- skip-test: [^>]*-->\n)?```python\n(.*?)```", re.S)
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
LATER = {"docs/replicas.md"}  # written beside this page by another change; may land after it


def python_blocks():
    for page, text in PAGES.items():
        for number, match in enumerate(BLOCK.finditer(text), 1):
            marks = [pytest.mark.skip(reason=match.group(1).strip())] if match.group(1) else []
            yield pytest.param(page, match.group(2), id=f"{page}#{number}", marks=marks)


def test_readme_opens_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == [
        "python3 bootstrap.py train", "python3 bootstrap.py test"]
    assert "python3 bootstrap.py test" in (ROOT / ".ci/run").read_text()


def test_readme_stays_short_and_defines_metrics_before_results():
    assert len(README.splitlines()) <= 200
    assert README.index("## Metrics") < README.index("## Results")
    for jargon in ("Core issue", "DESIGN.md", "issue 1"):
        assert jargon not in README


@pytest.mark.parametrize("page, code", list(python_blocks()))
def test_every_python_block_runs(page, code, capsys):
    before = set(agent_registry.REGISTRY)
    try:
        exec(compile(code, page, "exec"), {"__name__": "__docs__"})
    finally:
        for name in set(agent_registry.REGISTRY) - before:  # a block may register an agent
            agent_registry.REGISTRY.pop(name)


def test_custom_agent_example_runs_and_learns_a_memory(capsys):
    code = re.search(r"<!-- example: custom-agent -->\n```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    accuracy = float(capsys.readouterr().out.split(":")[-1])
    assert 0.0 <= accuracy <= 1.0
    assert np.isfinite(namespace["W"]).all()


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_lead_to_files(page):
    base = ROOT / page
    missing = []
    for target, _ in LINK.findall(PAGES[page]):
        if "://" in target:
            continue
        path = (base.parent / target).resolve()
        if not path.exists() and str(path.relative_to(ROOT)) not in LATER:
            missing.append(target)
    assert not missing, f"{page}: links to missing files {missing}"


def test_config_reference_is_generated_from_config():
    assert undocumented() == [], "document these keys in mannrl_gym/config_docs.py"
    assert (ROOT / "docs/config.md").read_text() == render(), (
        "docs/config.md is stale: python -m mannrl_gym.config_docs > docs/config.md")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_pointers_to_a_readme_section_name_one_that_exists(page):
    headings = {h.strip().lower() for h in re.findall(r"^#+ (.+)$", README, re.M)}
    named = re.findall(r"the README's \[?([A-Z][\w-]*)", PAGES[page])
    assert [name for name in named if name.lower() not in headings] == [], page
