"""The evaluator owns the learning curve: greedy evaluation episodes at fixed env-step points.

Points are every ``every`` env steps, at 0 and at the budget; each point's score is the mean over
the run's tasks of the mean return of ``episodes`` episodes (seeded by the point's index, so a
resumed run evaluates exactly as an uninterrupted one would).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from lightning_wm.data.collector import Collector


class AgentPolicy:
    """Batched numpy policy over an agent; keeps its recurrent state per slot."""

    def __init__(self, agent, explore: bool) -> None:
        self.agent, self.explore, self.state = agent, explore, None

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        device = self.agent.device
        if self.state is None or is_first.all():
            self.state = self.agent.initial_state(len(obs))
        else:
            self.state = self.agent.reset_state(self.state, torch.as_tensor(is_first, device=device))
        action, self.state = self.agent.act(torch.as_tensor(obs, device=device), self.state, self.explore)
        return action.float().cpu().numpy()


class Evaluator:
    def __init__(self, tasks: list[int], every: int, episodes: int, epsilon: float = 0.0) -> None:
        self.tasks, self.every, self.episodes, self.epsilon = list(tasks), every, episodes, epsilon
        self.curve: list[tuple[int, float]] = []
        self.task_curve: list[tuple[float, ...]] = []  # per-task scores behind each curve point
        self.next_eval = 0

    def due(self, steps: int, final: bool) -> bool:
        if final:
            return not (self.curve and self.curve[-1][0] == steps)
        return steps >= self.next_eval

    def evaluate(self, agent, collector: Collector, steps: int,
                 log: Callable[[dict[str, float], int], None] | None = None) -> float:
        """Score the agent's greedy policy at ``steps``; append it to the curve."""
        was_training = agent.training
        agent.eval()
        index = len(self.curve)
        per_task = tuple(
            collector.evaluate(AgentPolicy(agent, explore=False), task, self.episodes, index,
                               self.epsilon)
            for task in self.tasks)
        agent.train(was_training)
        score = float(np.mean(per_task))
        self.curve.append((steps, score))
        self.task_curve.append(per_task)
        if log is not None:
            log({"eval/return": score, "eval/env_steps": steps}, steps)
        while self.next_eval <= steps:
            self.next_eval += self.every
        return score

    def state_dict(self) -> dict[str, Any]:
        # plain numbers only, so a weights-only load reads them
        return {"curve": [(int(s), float(x)) for s, x in self.curve],
                "task_curve": [tuple(float(x) for x in row) for row in self.task_curve],
                "next_eval": int(self.next_eval)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.curve = [tuple(x) for x in state["curve"]]
        self.task_curve = [tuple(x) for x in state["task_curve"]]
        self.next_eval = int(state["next_eval"])
