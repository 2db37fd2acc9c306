"""Thread counts per piece (mannrl_gym.threads): with num_threads=2, NumPy's BLAS has one
thread, A's step and f's update run torch on one, and f's act and update products go in two
halves (the caller and a helper thread); the numbers match one thread's."""

import os
import select
import signal
import threading

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import mannrl_gym.agents.mannrl_agent as mannrl_agent
import mannrl_gym.supervised as supervised
import mannrl_gym.threads as threads
from mannrl_gym.agents import make_agent
from mannrl_gym.envs import MannRLVectorEnv
from mannrl_gym.tasks import build_task
from mannrl_gym.threads import (SPLIT_MACS, cores, limit_threads, one_thread, split_bmm,
                                split_matmul)

from conftest import small_config

# a small sentence config whose f-update products (256 rows x 544 x 512) torch splits and
# whose act product (16 x 544 x 512) reaches SPLIT_MACS
SENTENCE = {"task": "sentence", "data": "sample", "num_sentences": 40, "memory_size": 512,
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
    torch.set_num_threads(3)
    with limit_threads(2):
        assert torch.get_num_threads() == 2 and cores() == 2
        assert pool_threads() == {"openmp": 2, "blas": 1}
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 3 and cores() == 1  # restored
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


def test_two_threads_split_f_and_keep_torch_on_one(monkeypatch, restore_threads):
    a_step = record_threads(monkeypatch, supervised, "adam_rows")
    f_update = record_threads(monkeypatch, mannrl_agent, "forward_torch")
    jobs = threads.helper().jobs
    with limit_threads(1):
        run_steps(3)
    assert threads.helper().jobs == jobs  # one thread: nothing split
    with limit_threads(2):
        run_steps(9)
        acts = threads.helper().jobs - jobs
        run_steps(11)  # one update of f, 6 products (3 layers forward, 2 weight gradients
        updates = threads.helper().jobs - jobs - acts - 12  # of the larger, 1 input gradient)
        assert torch.get_num_threads() == 2  # restored after each piece
    assert a_step and set(a_step) == {1}
    assert f_update and set(f_update) == {1}
    assert acts == 1 + 9  # f's fold (512 x 544 in halves) and its act's product at every step
    assert updates >= 3 + 1 + 1  # f's update its larger products, its RMSprop and its refold


def test_split_matmul_equals_numpy_and_splits_only_large_products(restore_threads):
    rng = np.random.default_rng(0)
    rows, inputs, columns = 16, 600, SPLIT_MACS // (16 * 600) + 1
    for lead in [(), (3,)]:  # one agent; K agents stacked
        x = rng.random(lead + (rows, inputs), dtype=np.float32)
        w = rng.random(lead + (inputs, columns), dtype=np.float32)
        for count in (1, 2):
            with limit_threads(count):
                jobs = threads.helper().jobs
                np.testing.assert_allclose(split_matmul(x, w), np.matmul(x, w), rtol=1e-6)
                assert threads.helper().jobs == jobs + (count - 1)
    with limit_threads(2):
        jobs = threads.helper().jobs
        split_matmul(x[0], w[0, :, :columns // 2])  # below SPLIT_MACS
        assert threads.helper().jobs == jobs


def test_split_matmul_by_a_weight_stored_transposed_goes_through_torch(restore_threads):
    """f's folded body (``fold_batch_norm``: an (I, O) view of an (O, I) array): torch's
    product, the same numbers on one thread and in halves on two."""
    rng = np.random.default_rng(1)
    inputs, columns = 600, SPLIT_MACS // (16 * 600) + 2
    x = rng.random((16, inputs), dtype=np.float32)
    stored = rng.random((columns, inputs), dtype=np.float32)  # (O, I)
    w = stored.T
    results = []
    for count in (1, 2):
        with limit_threads(count):
            jobs = threads.helper().jobs
            results.append(split_matmul(x, w))
            assert threads.helper().jobs == jobs + (count - 1)
            assert torch.get_num_threads() == count  # one_thread restored the count
    np.testing.assert_allclose(results[0], x @ np.ascontiguousarray(w), rtol=1e-5)
    assert np.array_equal(results[0], torch.mm(torch.from_numpy(x),
                                               torch.from_numpy(stored).t()).numpy())
    assert np.array_equal(results[0], results[1])


def test_split_bmm_equals_torch_with_and_without_bias(restore_threads):
    rows, inner = 600, 96
    size = SPLIT_MACS // (rows * inner) + 1
    a, b, bias = torch.rand(2, rows, inner), torch.rand(2, inner, size), torch.rand(2, 1, size)
    c = torch.rand(2, rows, size)
    with limit_threads(2):
        jobs = threads.helper().jobs
        torch.testing.assert_close(split_bmm(a, b, bias), torch.baddbmm(bias, a, b))
        # a transposed view, as the weight gradient's (O, 2R) @ (2R, I)
        torch.testing.assert_close(split_bmm(a.transpose(1, 2), c),
                                   torch.bmm(a.transpose(1, 2), c))
        assert threads.helper().jobs == jobs + 2


def test_the_helper_thread_runs_torch_on_one_thread_and_leaves_the_callers(restore_threads):
    with limit_threads(2):
        thread, seen = threads.HelperThread(), []
        thread.submit(lambda: seen.append(torch.get_num_threads()))
        thread.join()
        assert seen == [1] and torch.get_num_threads() == 2


def test_the_helper_thread_hands_on_its_jobs_error():
    thread = threads.HelperThread()
    thread.submit(lambda: np.matmul(np.ones((2, 3)), np.ones((2, 3))))
    with pytest.raises(ValueError):
        thread.join()
    thread.submit(lambda: None)
    thread.join()  # and serves the next job
    assert thread.jobs == 2


def test_a_forked_child_starts_its_own_helper(restore_threads):
    threads.helper()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a split product must not wait on the parent's thread
        with limit_threads(2):
            x, w = np.ones((16, 600), np.float32), np.ones((600, 512), np.float32)
            ok = bool((split_matmul(x, w) == 600).all())
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    answered = select.select([read], [], [], 60)[0]
    if not answered:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert answered and os.read(read, 1) == b"1"
