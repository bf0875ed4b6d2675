"""Multi-process training, the route several GPUs take (``accelerate launch``, ``torchrun``).

There is no GPU here, so two CPU processes joined over gloo stand in for two GPUs: the same
launcher, the same DistributedDataParallel wrapping and gradient all-reduce, and the same
rule that only the first process checks, locks and writes the run directory. Real
all-MiniLM-L6-v2 weights with the default recipe (bottom layers cached, bf16 steps where
native), the tiny fixture, two epochs.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.data_loader import BatchSamplerShard
from conftest import TINY

from stancelab.labels import LABELS
from stancelab.models.registry import load_model
from stancelab.models.transformer.batches import LengthGroupedBatches

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def launch(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2`` with the tiny gold set, offline."""
    gold = tmp / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"id": f"s{i}", "text": t, "labels": labels}) + "\n"
            for i, (t, labels) in enumerate(TINY)
        )
    )
    env = {
        **os.environ,
        "STANCELAB_HOME": str(tmp / "home"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TMPDIR": str(tmp),  # torchrun's own scratch folders
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("ACCELERATE_USE_CPU", None)  # the project must find the CPU by itself
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", *args]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def train_args(gold: Path, out: Path) -> list[str]:
    overrides = [
        f"data.gold={gold}",
        "data.augment=false",
        "params.max_length=32",
        "params.batch_size=8",
        "params.epochs=2",  # early stopping decides once per epoch, together
        "params.cache_layers=4",  # the default recipe: cached bottom layers, bf16 steps
        "params.mixed_precision=auto",
        "params.progress=false",
    ]
    argv = ["-m", "training.train", "configs/transformer_small.yaml", "--out", str(out)]
    return argv + [arg for o in overrides for arg in ("--set", o)]


@pytest.mark.parametrize("size", [2, 3, 8, 16])
def test_length_grouped_batches_hold_every_row_once_and_no_batch_of_one(size: int) -> None:
    for n in range(2, 80):
        sampler = LengthGroupedBatches([(i * 7) % 13 + 1 for i in range(n)], size, seed=n)
        sampler.set_epoch(2)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(n)), (n, size)
        assert min(len(b) for b in batches) >= 2 and len(sampler) == len(batches)


def test_two_processes_share_the_batches_and_together_see_every_row() -> None:
    """accelerate's sharding of the sampler, as ``accelerator.prepare`` applies it: the
    batches vary in size, so none may be dropped as "incomplete"."""
    for n in (21, 33, 49, 100):
        sampler = LengthGroupedBatches([(i * 5) % 11 + 1 for i in range(n)], 8, seed=3)
        shards = [list(BatchSamplerShard(sampler, 2, rank)) for rank in (0, 1)]
        assert len(shards[0]) == len(shards[1]) == len(BatchSamplerShard(sampler, 2, 0))
        seen = {i for shard in shards for b in shard for i in b}
        assert seen == set(range(n)), n
        assert all(len(b) >= 2 for shard in shards for b in shard)


def each_process(tmp: Path, body: str) -> list[str]:
    """Run ``body`` in two launched processes; each one's ``result``, and whether it was
    still in the process group after ``end_processes()``."""
    script = tmp / "script.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "import torch.distributed as dist\n"
        "from stancelab.models.base import end_processes\n"
        "from stancelab.models.transformer.network import make_accelerator, mean_loss\n"
        "a = make_accelerator()\n"
        f"{body}\n"
        "end_processes()\n"
        "Path(sys.argv[1], f'rank{a.process_index}').write_text(\n"
        "    f'{result} {dist.is_initialized()}')\n"
    )
    result = launch(tmp, str(script), str(tmp))
    assert result.returncode == 0, result.stderr[-2000:]
    return [(tmp / f"rank{rank}").read_text() for rank in (0, 1)]


def test_two_cpu_processes_are_joined_into_one_distributed_training(tmp_path: Path) -> None:
    body = "result = f'{a.distributed_type} {a.num_processes} {a.device.type}'"
    joined = each_process(tmp_path, body)
    # Joined over gloo, and both left the group before exiting.
    assert joined == ["DistributedType.MULTI_CPU 2 cpu False"] * 2


def test_the_epoch_loss_is_the_mean_over_every_process_batches(tmp_path: Path) -> None:
    """Each process sees its own share of the batches: the logged loss must cover both."""
    body = (
        "mine = [[1.0, 2.0], [6.0]][a.process_index]\n"
        "result = f'{mean_loss(a, mine)} {mean_loss(a, [])}'"
    )
    # (1 + 2 + 6) / 3 in both, not the first process's own 1.5
    assert each_process(tmp_path, body) == ["3.0 None False"] * 2


def test_a_two_process_training_writes_one_loadable_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = launch(tmp_path, *train_args(tmp_path / "gold.jsonl", out))
    assert result.returncode == 0, result.stderr[-2000:]
    # One summary: the second process trains but neither writes nor prints.
    assert result.stdout.count(f"trained transformer on {len(TINY)} sentences") == 1
    run = json.loads((out / "run.json").read_text())
    assert run["kind"] == "transformer" and run["processes"] == 2
    assert ", over 2 processes." in (out / "README.md").read_text()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".saving-")]
    model = load_model(out)
    assert model.predict_proba([t for t, _ in TINY[:3]]).shape == (3, len(LABELS))
    assert [row["epoch"] for row in model.history_] == [1, 2]
    assert all(0 < row["train_loss"] < 10 for row in model.history_)


def test_a_two_process_training_refuses_an_existing_run_and_leaves_it_alone(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = launch(tmp_path, *train_args(tmp_path / "gold.jsonl", out))
    assert result.returncode != 0
    assert "holds no stancelab run, so it is not replaced" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def launched_errors(result: subprocess.CompletedProcess) -> list[str]:
    """The ``error:`` lines of a launch run with ``--tee 3``, each after its process's
    ``[default<rank>]:``."""
    return [line for line in result.stderr.splitlines() if "]:error: " in line]


def test_a_bad_config_or_data_is_one_error_line_from_the_first_process(tmp_path: Path) -> None:
    """Every process meets the same bad config or data: one line, the first process's (each
    printed its own before); the other one is stopped by the launcher, silently."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\n")
    gold = tmp_path / "bad-gold.jsonl"
    gold.write_text('{"id": "s1", "text": "We will strike.", "labels": ["nope"]}\n')
    for args, message in (
        ([str(bad)], f"{bad}: 'model' must be one of baseline, transformer, got None"),
        (
            ["configs/baseline.yaml", "--set", f"data.gold={gold}", "--set", "data.augment=false"],
            f"unknown label(s) 'nope' in {gold}:1; expected any of",
        ),
    ):
        out = tmp_path / "run"
        result = launch(tmp_path, "--tee", "3", "-m", "training.train", *args, "--out", str(out))
        assert result.returncode == 1
        errors = launched_errors(result)
        assert len(errors) == 1 and errors[0].startswith(f"[default0]:error: {message}")
        assert not out.exists()


def test_an_error_met_by_another_process_alone_is_printed_naming_its_rank(
    tmp_path: Path,
) -> None:
    """The first process did not fail, so it says nothing: the other one's line, after its
    wait (``errors.LAUNCHED_ERROR_WAIT``), names its rank."""
    script = tmp_path / "script.py"
    script.write_text(
        "import os, sys\n"
        "from stancelab.errors import InputError, print_error\n"
        "if os.environ['RANK'] == '1':\n"
        "    sys.exit(print_error(InputError('disk of rank 1: full')))\n"
    )
    result = launch(tmp_path, "--tee", "3", str(script))
    assert result.returncode == 1
    assert launched_errors(result) == ["[default1]:error: rank 1: disk of rank 1: full"]


@pytest.mark.parametrize("module", ["training.train", "training.evaluate"])
def test_a_usage_error_is_printed_once_by_a_launch(module: str, tmp_path: Path) -> None:
    """Every process parses the same command line: argparse's error comes from the first
    process alone, as ``print_error``'s lines do."""
    result = launch(tmp_path, "--tee", "3", "-m", module, "--no-such-option")
    assert result.returncode == 1  # the launcher's status when a process failed
    errors = [line for line in result.stderr.splitlines() if f"{module}: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("[default0]:"), result.stderr[-2000:]


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("training.evaluate", ["configs/baseline.yaml"]),
        ("training.pipeline", []),
        ("training.active_learning", []),
    ],
)
def test_entry_points_that_run_in_one_process_refuse_a_launch(
    module: str, args: list[str], tmp_path: Path, monkeypatch, capsys
) -> None:
    """Under torchrun each process would do all the work and write the same report."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    out = tmp_path / "report"
    assert importlib.import_module(module).main([*args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error: {module} runs in one process, but was launched as 2" in err
    assert not out.exists()


def test_a_stray_world_size_without_a_launcher_is_one_clear_error(
    tiny_gold: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from training.train import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    out = tmp_path / "run"
    argv = ["configs/transformer_small.yaml", "--out", str(out), "--set", f"data.gold={tiny_gold}"]
    assert main([*argv, "--set", "data.augment=false"]) == 1
    err = capsys.readouterr().err
    assert "WORLD_SIZE is 2 but no launcher started this process" in err
    assert "Traceback" not in err and not out.exists()


def test_a_world_size_that_is_not_a_number_is_one_clear_error(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from training.evaluate import main

    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["configs/baseline.yaml", "--out", str(tmp_path / "report")]) == 1
    assert "error: WORLD_SIZE must be a whole number of processes, got 'two'" in (
        capsys.readouterr().err
    )
