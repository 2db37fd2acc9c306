"""Stable-Baselines3 on MANN-RL: SB3's continuous-action agents as the memory-net.

``SB3VecEnv`` gives a ``MannRLVectorEnv`` SB3's VecEnv interface (SB3 does not take a
Gymnasium VectorEnv): the same B slots and the one shared action network. A pass over the data
is one episode; at its end every slot reports ``done`` with ``TimeLimit.truncated`` and its
``terminal_observation``, and the next pass starts at once. The single env works with SB3's
own ``make_vec_env`` unchanged.

``SB3MemoryAgent`` wraps a trained SB3 model in the memory-agent interface
(``mannrl_gym.protocols.MemoryAgent``), so the trainer's
evaluation reports the same metrics for it as for the paper's agent.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from mannrl_gym.envs.vector_env import MannRLVectorEnv


def slot_infos(info: dict[str, Any], slots: int) -> list[dict[str, Any]]:
    """The env's ``info`` arrays (each (B,)) as SB3's one dict a slot, of Python scalars:
    ``[{"loss": ..., "correct": ..., "valid": ..., ...}, ...]`` (a callback's accuracy reads
    ``correct`` where ``valid``)."""
    keys = [key for key, value in info.items() if np.shape(value) == (slots,)]
    columns = [np.asarray(info[key]).tolist() for key in keys]
    return [dict(zip(keys, row)) for row in zip(*columns)] if keys else [{} for _ in range(slots)]


class SB3VecEnv(VecEnv):
    """SB3 VecEnv view of a MannRLVectorEnv (observations (B, D), actions (B, M) in [0, 1])."""

    def __init__(self, env: MannRLVectorEnv) -> None:
        """``env``: a ``MannRLVectorEnv`` or a ``ReplicatedVectorEnv`` (K * B slots)."""
        from mannrl_gym.envs.replicated_env import ReplicatedVectorEnv  # (imports the agents)

        if not isinstance(getattr(env, "unwrapped", env), (MannRLVectorEnv, ReplicatedVectorEnv)):
            raise TypeError(f"SB3VecEnv takes a MANN-RL vector env, gymnasium.make_vec(id, "
                            f"num_envs=B) (vectorization_mode 'vector_entry_point', the "
                            f"default), got {type(env).__name__}; a single env from "
                            f"gymnasium.make goes through SB3's own make_vec_env")
        self.env = env  # first: VecEnv.__init__ reads render_mode through get_attr
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self._next_seed: int | None = None

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        self._next_seed = seed
        return [seed] * self.num_envs

    def reset(self) -> np.ndarray:
        observation, _ = self.env.reset(seed=self._next_seed)
        self._next_seed = None
        return observation

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32)

    def step_wait(self):
        observation, reward, terminated, truncated, info = self.env.step(self._actions)
        dones = terminated | truncated
        infos = slot_infos(info, self.num_envs)
        if dones.any():  # end of the pass: report each slot's last state, start the next pass
            for slot in np.nonzero(dones)[0]:
                infos[slot].update({"terminal_observation": observation[slot],
                                    "TimeLimit.truncated": bool(truncated[slot])})
            observation, _ = self.env.reset()
        return observation, reward, dones, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self.env, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)


class SB3MemoryAgent:
    """An SB3 model as a memory agent: ``act`` is its deterministic action."""

    def __init__(self, model) -> None:
        self.model = model

    def act(self, observation: np.ndarray) -> np.ndarray:
        """(B, D) -> (B, M): the model's deterministic action, clipped to [0, 1]."""
        action, _ = self.model.predict(observation, deterministic=True)
        return np.clip(action, 0.0, 1.0).astype(np.float32)

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """SB3 trains the model itself (``model.learn``); here it only acts."""
        return self.act(observation)

    def observe(self, observation, reward, info) -> None:
        return None

    def start_epoch(self, epoch: int) -> None:
        """SB3's own schedules apply inside ``model.learn``."""

    def state_dict(self) -> dict:
        """Empty: save the SB3 model with ``model.save``."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
