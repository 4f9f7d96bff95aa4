"""Refuse to train when the launcher asked for N processes but accelerate sees fewer.

Two ways this happened silently before (measured with accelerate 1.15 on CPU):

* ``torchrun --nproc_per_node 2`` without ``ACCELERATE_USE_CPU=1``: each process gets
  WORLD_SIZE=2 and RANK 0/1, but accelerate finds no GPU and runs each one alone, so two
  separate runs read the same data and both write ``log.jsonl`` and ``final/``.
* ``accelerate launch --cpu --num_processes 2``: the launcher starts ONE process (its CPU
  multi-process mode needs ``--mpirun_hostfile``); it only leaves MASTER_ADDR behind.

The command that runs N CPU processes (gloo) is::

    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N -m cofrida train ...

and on GPUs ``accelerate launch --multi_gpu --num_processes N -m cofrida train ...``.
"""

from __future__ import annotations

import os

CPU_COMMAND = "ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N -m cofrida train ..."


def _launched_world() -> int | None:
    """The number of processes the launcher says it started (None: no launcher said)."""
    for key in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return None


def check_world(accelerator) -> None:
    """Raise ValueError when the launcher's world and accelerate's disagree (see module doc)."""
    launched = _launched_world()
    running = accelerator.num_processes
    if launched is not None and launched != running:
        raise ValueError(
            f"launched as one of {launched} processes, but accelerate runs {running}: the "
            f"processes would train separately on the same data and overwrite each other's "
            f"log and final/. On CPU run: {CPU_COMMAND}"
        )
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if launched is None and running == 1 and cpu and "MASTER_ADDR" in os.environ:
        raise ValueError(
            "`accelerate launch --cpu --num_processes N` starts a single process (its CPU "
            f"multi-process mode needs --mpirun_hostfile). To run N CPU processes: {CPU_COMMAND}"
        )


def exit_worker(code: int) -> int:
    """End a process of a multi-process run now, skipping interpreter teardown; else return.

    At interpreter exit a gloo process could hang for ever in ``~ProcessGroupGloo`` (joining a
    gloo thread while the DDP reducer is freed after the other process had exited: seen in 2
    of 3 full test runs on a loaded 2-core machine; an explicit barrier + destroy moved the hang
    to a mutex in the same destructor). Every collective of the run has finished when this is
    called and rank 0 has written ``final/``; so the process flushes its output and leaves with
    ``os._exit``, which runs no destructor. Single-process runs (no process group) return
    ``code`` unchanged so callers and in-process tests see it.
    """
    import sys

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
