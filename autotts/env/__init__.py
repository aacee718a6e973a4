"""The replay environment: batched functional env, episode protocols, and the reference oracle."""

from autotts._malloc import tune_malloc

tune_malloc()

from autotts.env.batched import reset, step
from autotts.env.episodes import Episodes, random_episodes, reference_episodes, subset_episodes
from autotts.env.rollout import Rollout, rollout
from autotts.env.state import (ACTIVE, FINISH, FINISHED, PRUNED, UNOPENED, Action, EnvState, Hidden, Observation)

__all__ = ["ACTIVE", "FINISH", "FINISHED", "PRUNED", "UNOPENED", "Action", "EnvState", "Episodes", "Hidden",
           "Observation", "Rollout", "random_episodes", "reference_episodes", "reset", "rollout", "step",
           "subset_episodes"]
