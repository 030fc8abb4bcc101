"""Where a result came from: code version, package versions, machine."""
from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("lightning-wm", "torch", "lightning", "torchmetrics", "gymnasium", "numpy", "pybullet",
            "gym-super-mario-bros", "nes-py", "ale-py", "ray")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def python_version() -> str:
    return sys.version.split()[0]


def machine() -> str:
    return f"{platform.system()} {platform.machine()} {platform.node()}"


@lru_cache(maxsize=1)
def cpu() -> str:
    """The processor and the instruction set PyTorch's CPU kernels dispatch to: float32 results
    differ in their last digits between them (AVX2 and AVX-512 kernels round differently), so a
    run reproduces bit for bit only where this matches."""
    model = platform.processor() or "unknown processor"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), model)
    except OSError:
        pass
    import torch  # the runner has it loaded already

    return f"{model} / {torch.backends.cpu.get_cpu_capability()}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
