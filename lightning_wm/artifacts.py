"""File names inside a run folder, in one place: the library writes them (training, diagnostics)
and the benchmark runner, results loader and report read them, so a rename cannot split the two.

A run folder (``<root>/<suite>/<profile>/runs/<run_id>/``, see :mod:`benchmarks.results`)::

    record.json        the run record
    spec.json          the run spec a worker process executes
    curve.csv          env_steps,return (evaluation curve)
    task_curves.csv    env_steps,<task>,... (multi-task runs)
    embedding.npz      EmbeddingAgreement's embeddings (the inverse-maze figure)
    reconstruction.npz Reconstruction's frames (the reconstruction figure)
    checkpoints/       last.ckpt (resume state, removed on completion), last.prev.ckpt (the one
                       before, a fallback), model.ckpt (final weights); each beside its sha256
                       sidecar <name>.sha256.json; <name>.bad: a file that failed its check
                       (see :mod:`lightning_wm.checkpoints`)
    logs/              Lightning logger output
"""
from __future__ import annotations

RECORD = "record.json"
SPEC = "spec.json"
CURVE = "curve.csv"
TASK_CURVES = "task_curves.csv"
EMBEDDING = "embedding.npz"
RECONSTRUCTION = "reconstruction.npz"
CHECKPOINTS = "checkpoints"
LAST = "last.ckpt"
MODEL = "model.ckpt"
LOGS = "logs"
