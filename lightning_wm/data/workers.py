"""Where the collector's env slots live: in this process, or spread over worker processes.

Both backends take the same batch of calls ``(slot, command, args)`` and run each through
:func:`apply`, so stepping in workers gives exactly the results of stepping in-process. A slot
keeps one env per task. :class:`EnvWorkers` sends every worker its share of a batch before
waiting for any reply, so the workers step their slots in parallel.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import signal
import traceback
import weakref
from typing import Any, Callable

import gymnasium as gym

Call = tuple[int, str, tuple]   # (slot, command, args)
EnvFactory = Callable[[int], gym.Env]  # task id -> a fresh env


def apply(envs: dict[int, gym.Env], make_env: EnvFactory, command: str, *args) -> Any:
    """Run one command on a slot's envs (``envs``: task -> env, created on first use)."""
    if command == "reset":
        task, seed = args
        if task not in envs:
            envs[task] = make_env(task)
        obs, _ = envs[task].reset(seed=seed)
        return obs, envs[task].action_space
    if command == "step":
        task, action = args
        obs, reward, terminated, truncated, _ = envs[task].step(action)
        return obs, float(reward), bool(terminated), bool(truncated)
    if command == "get_state":
        try:
            return pickle.dumps(envs)
        except Exception:  # noqa: BLE001 - an env that can't be pickled: "restart its episodes"
            return None
    if command == "set_state":
        # a blob out of a checkpoint's env state, sent only after the collector checked its
        # signature (lightning_wm.signing)
        _close(envs)
        envs.clear()
        envs.update(pickle.loads(args[0]))
        return {task: env.action_space for task, env in envs.items()}
    raise ValueError(f"unknown env command {command!r}")


def _close(envs: dict[int, gym.Env]) -> None:
    for env in envs.values():
        env.close()


class LocalEnvs:
    """The slots' envs in this process (``env_workers=0``)."""

    def __init__(self, make_env: EnvFactory) -> None:
        self.make_env = make_env
        self.envs: dict[int, dict[int, gym.Env]] = {}

    def call(self, calls: list[Call]) -> list[Any]:
        return [apply(self.envs.setdefault(slot, {}), self.make_env, cmd, *args)
                for slot, cmd, args in calls]

    def close(self) -> None:
        for envs in self.envs.values():
            _close(envs)
        self.envs.clear()


def _serve(conn, payload: bytes) -> None:
    """A worker's loop: batches of calls in, ``("ok", results)`` or ``("error", text)`` out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes us
    make_env, slots = None, {}
    try:
        while True:
            try:
                batch = conn.recv()
            except EOFError:  # the parent is gone
                break
            if batch is None:
                break
            try:
                if make_env is None:  # unpickled here, so a failure reaches the parent as a reply
                    make_env = pickle.loads(payload)
                conn.send(("ok", [apply(slots.setdefault(slot, {}), make_env, cmd, *args)
                                  for slot, cmd, args in batch]))
            except Exception:  # noqa: BLE001 - reported to the parent, which raises it
                conn.send(("error", traceback.format_exc()))
    finally:
        for envs in slots.values():
            _close(envs)
        conn.close()


def _pickle_factory(make_env: EnvFactory, workers: int) -> bytes:
    # cloudpickle (a gymnasium dependency) also takes lambdas and closures, by value
    import cloudpickle
    try:
        return cloudpickle.dumps(make_env)
    except Exception as e:  # noqa: BLE001 - re-raised with the option that needs it
        raise TypeError(f"env_workers={workers} sends the env factory to worker processes, but "
                        f"{make_env!r} cannot be pickled ({e}); use a picklable factory "
                        f"(a top-level function or class) or env_workers=0") from e


class EnvWorkers:
    """The slots' envs in ``workers`` processes; slot ``i`` lives in worker ``i % workers``."""

    def __init__(self, make_env: EnvFactory, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"env_workers must be >= 1 here, not {workers}")
        payload = _pickle_factory(make_env, workers)
        # spawn, not fork: a forked child would inherit torch's threads and PyBullet's state. Like
        # any spawned child, a worker re-imports the main script: keep its imports light, and its
        # work under ``if __name__ == "__main__"``.
        ctx = mp.get_context("spawn")
        # a daemonic parent (e.g. a pool worker) may not have daemonic children
        daemon = not mp.current_process().daemon
        self.conns, self.procs = [], []
        for w in range(workers):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs, payload), name=f"env-worker-{w}",
                               daemon=daemon)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        # closed also when the collector is dropped without close(), so no worker outlives it
        self._finalizer = weakref.finalize(self, _shutdown, self.conns, self.procs)

    def call(self, calls: list[Call]) -> list[Any]:
        k = len(self.conns)
        batches: list[list[Call]] = [[] for _ in range(k)]
        where = []
        for call in calls:
            w = call[0] % k
            where.append((w, len(batches[w])))
            batches[w].append(call)
        busy = [w for w in range(k) if batches[w]]
        replies = {}
        for w in busy:  # all sends first: the workers step at the same time
            try:
                self.conns[w].send(batches[w])
            except OSError:  # the worker is gone
                replies[w] = self._gone(w)
        for w in busy:  # every reply read, so the pipes stay in step
            if w not in replies:
                replies[w] = self._receive(w)
        for w in busy:
            if replies[w][0] != "ok":
                raise RuntimeError(f"env worker {w} failed:\n{replies[w][1]}")
        return [replies[w][1][i] for w, i in where]

    def _receive(self, w: int) -> tuple[str, Any]:
        try:
            return self.conns[w].recv()
        except (EOFError, OSError):
            return self._gone(w)

    def _gone(self, w: int) -> tuple[str, str]:
        self.procs[w].join(timeout=1)
        return "error", f"the process exited (exit code {self.procs[w].exitcode})"

    def close(self) -> None:
        self._finalizer()


def _shutdown(conns, procs) -> None:
    for conn in conns:
        try:
            conn.send(None)
        except OSError:  # already gone
            pass
    for conn, proc in zip(conns, procs):
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
        conn.close()
