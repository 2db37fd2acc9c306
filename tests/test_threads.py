"""Thread counts per piece (mannrl_gym.threads): with num_threads=2, torch's pool gets two
threads (f's update), NumPy's BLAS one, A's step one; the numbers match one thread's."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import mannrl_gym.agents.mannrl_agent as mannrl_agent
import mannrl_gym.supervised as supervised
from mannrl_gym.agents import make_agent
from mannrl_gym.envs import MannRLVectorEnv
from mannrl_gym.tasks import build_task
from mannrl_gym.threads import limit_threads, one_thread

from conftest import small_config

# a small sentence config whose f-update products (256 rows x 288 x 256) torch splits
SENTENCE = {"task": "sentence", "data": "sample", "num_sentences": 40, "memory_size": 256,
            "embed_size": 16, "hidden_layers": 2, "hidden_size": 32, "history": 9,
            "settle": 1, "memory_samples": 8, "min_char_count": 1}


@pytest.fixture
def restore_threads():
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


def pool_threads() -> dict[str, int]:
    return {pool["user_api"]: pool["num_threads"] for pool in threadpool_info()}


def test_limit_threads_gives_torch_the_count_and_numpy_blas_one(restore_threads):
    with limit_threads(2):
        assert torch.get_num_threads() == 2
        assert pool_threads() == {"openmp": 2, "blas": 1}
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert set(pool_threads().values()) == {1}


def record_threads(monkeypatch, module, name: str) -> list[int]:
    """Wrap ``module.name`` to record torch's thread count at each call."""
    seen, original = [], getattr(module, name)

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, recording)
    return seen


def run_steps(steps: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``steps`` batched steps of the sentence env and the mannrl agent (f updated every 10):
    (A's loss per step, f's body weight at the end)."""
    config = small_config(**SENTENCE)
    env = MannRLVectorEnv(build_task(config), config, num_envs=16)
    agent = make_agent(config, env.layout, 16)
    observation, losses = env.reset(seed=0)[0], []
    for _ in range(steps):
        observation, reward, _, _, info = env.step(agent.act(observation))
        agent.observe(observation, reward, info)
        losses.append(info["loss"].copy())
    assert agent.updates == steps // 10  # f's updates ran
    return losses, agent.net.body[0].weight.detach().numpy().copy()


def test_two_threads_run_a_on_one_and_f_update_on_two(monkeypatch, restore_threads):
    a_step = record_threads(monkeypatch, supervised, "adam_rows")
    f_update = record_threads(monkeypatch, mannrl_agent, "forward_torch")
    with limit_threads(2):
        run_steps(13)
        assert torch.get_num_threads() == 2  # restored after each A step
    assert a_step and set(a_step) == {1}
    assert f_update and set(f_update) == {2}


def test_two_threads_train_the_same_numbers_as_one(restore_threads):
    with limit_threads(1):
        losses_1, weight_1 = run_steps(25)
    with limit_threads(2):
        losses_2, weight_2 = run_steps(25)
    np.testing.assert_allclose(np.concatenate(losses_2), np.concatenate(losses_1), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(weight_2, weight_1, rtol=1e-4, atol=1e-7)
    assert not np.array_equal(weight_1, run_steps(1)[1])  # the updates moved f
