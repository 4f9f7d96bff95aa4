"""`cofrida train` as N real processes on CPU (gloo), and refusing launches that are not.

The command the README documents: ``ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N -m cofrida
train ...``. Two processes must shard the data, write the log and final/ once, and resume from
their checkpoints exactly; the two launches that used to go wrong silently must refuse to start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")

from cofrida.model import EditModel, tiny
from tests.cofrida.test_train import write_shard

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def data_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("procs")
    write_shard(root / "data", n=10)
    tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16)).save_pretrained(
        root / "model"
    )
    return root / "data", root / "model"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "WORLD_"))}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)
    return env


def _train_args(data, model, out, steps: int, *more: str) -> list[str]:
    return [
        "-m", "cofrida", "train", "--data-dir", str(data), "--init-model", str(model),
        "--output-dir", str(out), "--resolution", "32", "--batch-size", "2",
        "--max-steps", str(steps), "--validation-records", "1", "--validate-every", "0",
        "--log-every", "100", *more,
    ]  # fmt: skip


# A run here takes 10-20 s, so a hang fails within 4 minutes; torchrun and its workers run in
# their own process group, killed whole on a timeout (a hung worker must not outlive the test).
def torchrun(args: list[str], env: dict) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(_free_port())]
    proc = subprocess.Popen(
        cmd + args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not end within 240 s; stderr tail:\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def log_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_two_cpu_processes_shard_the_data_write_once_and_resume(data_and_model, tmp_path):
    data, model = data_and_model
    env = _env(ACCELERATE_USE_CPU="1")
    out = tmp_path / "run"
    first = torchrun(_train_args(data, model, out, 2, "--checkpoint-every", "2"), env)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = torchrun(
        _train_args(data, model, out, 4, "--checkpoint-every", "2", "--resume", "latest"), env
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    log = log_of(out)
    assert [r["step"] for r in log] == [1, 2, 3, 4]  # one writer: no step twice
    # sharded: each step trains on 2 processes x 2 distinct records (4), not the same 2 twice
    assert [r["records"] for r in log] == [4, 4, 4, 4]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    EditModel.from_pretrained(out / "final")  # one complete bundle
    assert not list(out.glob(".final*"))

    straight = tmp_path / "straight"
    run = torchrun(_train_args(data, model, straight, 4, "--checkpoint-every", "0"), env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in log_of(straight)],
                                                     rel=1e-5)  # fmt: skip


def test_launches_that_would_not_run_n_processes_refuse(data_and_model, tmp_path):
    data, model = data_and_model
    out = tmp_path / "bad"
    # torchrun without ACCELERATE_USE_CPU: two separate single-process runs
    bad = torchrun(_train_args(data, model, out, 2), _env())
    assert bad.returncode != 0
    assert "launched as one of 2 processes, but accelerate runs 1" in bad.stderr
    assert "ACCELERATE_USE_CPU=1 torchrun" in bad.stderr
    # accelerate launch --cpu --num_processes 2 starts one process only
    launch = [str(BIN / "accelerate"), "launch", "--cpu", "--num_processes", "2",
              "--main_process_port", str(_free_port())]  # fmt: skip
    one = subprocess.run(launch + _train_args(data, model, out, 2), env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=240)  # fmt: skip
    assert one.returncode != 0 and "starts a single process" in one.stderr
    assert not (out / "log.jsonl").exists() and not (out / "final").exists()
