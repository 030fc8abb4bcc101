"""How collection feeds updates: the one training-config type of the library and the suite schema."""
from __future__ import annotations

from dataclasses import asdict, dataclass

#: how a multi-task run picks the task of its next episode: in turn, or drawn uniformly
TASK_SAMPLING = ("round_robin", "uniform")
#: fields that count something a run needs at least one of, and fields where none is a choice
POSITIVE = ("collect_every", "batch_size", "eval_every", "eval_episodes", "checkpoint_every",
            "replay_capacity", "num_envs")
NON_NEGATIVE = ("updates_per_collect", "prefill", "env_workers", "segment_steps")
#: the most env steps a run's budget may be (the suite schema bounds budgets the same way)
MAX_STEPS = 10 ** 9
#: upper bounds: a typo of a few digits must fail at validation, not allocate terabytes (a batch
#: is ``batch_size`` sequences, several MB each with pixels) or start a run that never ends.
#: Step counts and the replay (it grows as episodes arrive) are bounded by the longest budget;
#: the rest are 60-130x the largest value a committed suite uses.
UPPER = {"collect_every": MAX_STEPS, "prefill": MAX_STEPS, "eval_every": MAX_STEPS,
         "checkpoint_every": MAX_STEPS, "replay_capacity": MAX_STEPS, "segment_steps": MAX_STEPS,
         "updates_per_collect": 100_000, "batch_size": 4096, "eval_episodes": 10_000,
         "num_envs": 1024, "env_workers": 256}


@dataclass(frozen=True)
class TrainingConfig:
    """Plain values of the experience pipeline (a suite profile's ``training`` block binds here).

    The update-to-data ratio is ``updates_per_collect / collect_every``: every collection phase of
    ``collect_every`` env steps (per rank) is followed by ``updates_per_collect`` updates.
    """
    collect_every: int = 100    # env steps per collection phase
    updates_per_collect: int = 10
    prefill: int = 100          # env steps of uniform random actions before the first update
    batch_size: int = 32
    eval_every: int = 500
    eval_episodes: int = 5
    eval_epsilon: float = 0.0   # random-action probability at evaluation
    checkpoint_every: int = 1000
    replay_capacity: int = 100_000
    num_envs: int = 1
    task_sampling: str = "round_robin"  # a multi-task run's next episode: TASK_SAMPLING
    reward_fraction: float = 0.0  # of each batch, from sequences that end on a positive reward
    env_workers: int = 0   # processes stepping the slots' envs in parallel (0: in this process)
    # replay-based agents: an episode in play is stored every this many steps (0: when it ends)
    segment_steps: int = 0

    def __post_init__(self) -> None:
        # the suite schema binds a profile's ``training`` block to this type, so a bad value is
        # reported when the suite is validated, not when a run reaches it
        values = asdict(self)
        problems = [f"{name} must be > 0, got {values[name]!r}"
                    for name in POSITIVE if not values[name] > 0]
        problems += [f"{name} must be >= 0, got {values[name]!r}"
                     for name in NON_NEGATIVE if not values[name] >= 0]
        # the value is not echoed: a mistyped one may have thousands of digits
        problems += [f"{name} must be <= {bound:,}"
                     for name, bound in UPPER.items() if values[name] > bound]
        if not 0 <= self.eval_epsilon <= 1:
            problems.append(f"eval_epsilon is a probability in [0, 1], got {self.eval_epsilon!r}")
        if not 0 <= self.reward_fraction < 1:
            problems.append(f"reward_fraction must be in [0, 1), got {self.reward_fraction!r}")
        if self.task_sampling not in TASK_SAMPLING:
            problems.append(f"task_sampling must be one of {list(TASK_SAMPLING)}, "
                            f"got {self.task_sampling!r}")
        if problems:
            raise ValueError("; ".join(problems))
