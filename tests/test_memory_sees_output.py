"""``memory_sees_output=false``: the output block of every observation is zero (single,
vector and replicated envs), the rest is what the default env gives, and A still trains."""

import gymnasium
import numpy as np
import pytest

import mannrl_gym  # noqa: F401  (registers the ids)


def _steps(sees: bool, replicas: int | None = None, steps: int = 300):
    kwargs = {"replicas": replicas} if replicas else {}
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=16, num_sequences=200,
                             memory_sees_output=sees, **kwargs)
    observation, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    seen, losses = [observation], []
    for _ in range(steps):
        memory = rng.random((observation.shape[0], env.layout.memory_size), dtype=np.float32)
        observation, _, _, _, info = env.step(memory)
        seen.append(observation)
        losses.append(info["loss"])
    return env.layout, np.stack(seen), np.stack(losses)


@pytest.mark.parametrize("replicas", [None, 2])
def test_output_block_is_zero_and_the_rest_unchanged(replicas):
    layout, hidden, hidden_loss = _steps(False, replicas)
    _, shown, shown_loss = _steps(True, replicas)
    assert not hidden[:, :, layout.output].any()
    assert shown[:, :, layout.output].max() > 0.0  # the default shows A's probabilities
    for block in (layout.memory, layout.input):
        np.testing.assert_array_equal(hidden[:, :, block], shown[:, :, block])
    np.testing.assert_array_equal(hidden_loss, shown_loss)  # A itself is untouched


def test_single_env_hides_the_output_too():
    env = gymnasium.make("MannRL-Logic-v0", num_sequences=50, memory_sees_output=False)
    observation, _ = env.reset(seed=0)
    layout = env.unwrapped.layout
    for _ in range(5):
        observation, *_ = env.step(np.full(layout.memory_size, 0.5, np.float32))
        assert not observation[layout.output].any()
