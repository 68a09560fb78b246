"""A Ray Tune searcher that hands out the planner's grid points, in order.

Ray's grid_search cannot skip points, and the study must not train points that break its
constraints; so the planner expands the grid, drops the infeasible points, and this searcher
feeds the rest to Ray one by one (drawing any sampled dimensions with a seeded RNG). Its position
is saved with the experiment, so a resumed stage neither repeats nor skips a point.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Domain


def plain(value: Any) -> Any:
    """numpy scalars from Domain.sample as Python numbers (JSON, HParams, study.json)."""
    return value.item() if isinstance(value, np.generic) else value


class PlannedSearcher(Searcher):
    def __init__(
        self,
        points: list[dict[str, Any]],
        sampled: dict[str, Domain],
        seed: int = 0,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.points = points
        self.sampled = sampled
        self.position = 0
        self.rng = np.random.RandomState(seed)

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        if self.position >= len(self.points):
            return Searcher.FINISHED
        config = dict(self.points[self.position])
        self.position += 1
        for key, domain in self.sampled.items():
            config[key] = plain(domain.sample(random_state=self.rng))
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Nothing to learn: the points were fixed by the plan."""

    def get_state(self) -> dict[str, Any]:
        return {"position": self.position, "rng": self.rng.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.position = state["position"]
        self.rng.set_state(state["rng"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))
