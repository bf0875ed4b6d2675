"""MLflow tracking (``stancelab.tracking``): off by default without importing mlflow, and on a
real local sqlite store, one run per training and one per evaluated config."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY

from stancelab.labels import LABELS
from stancelab.tracking import enabled, flatten

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"id": f"s{i}", "doc_id": f"d{i % 3}", "text": t, "labels": lab}) + "\n"
            for i, (t, lab) in enumerate(TINY)
        ),
        encoding="utf-8",
    )
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"model: baseline\nname: tinybase\ndata: {{gold: {gold}, augment: false}}\n"
        "params: {inner_folds: 2, char_ngrams: [3, 4]}\n",
        encoding="utf-8",
    )
    return config


def test_tracking_is_on_with_the_variable_or_the_flag(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert not enabled() and enabled(track=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "  ")
    assert not enabled()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert enabled()


def test_config_is_flattened_into_params():
    config = {"name": "b", "data": {"augment": True}, "params": {"C": 4.0, "ngrams": [1, 2]}}
    assert flatten(config) == {
        "name": "b",
        "data.augment": "true",
        "params.C": "4.0",
        "params.ngrams": "[1, 2]",
    }


def test_without_the_variable_nothing_is_tracked_and_mlflow_is_not_imported(tmp_path, tiny_config):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    code = (
        "import sys\n"
        "from training.train import main as train\n"
        "from training.evaluate import main as evaluate\n"
        f"assert train([{str(tiny_config)!r}, '--out', 'run']) == 0\n"
        f"assert evaluate([{str(tiny_config)!r}, '--out', 'report', '--n-boot', '100',"
        " '--quiet']) == 0\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tracked:" not in done.stdout
    assert (tmp_path / "run" / "run.json").exists() and (tmp_path / "report" / "report.md").exists()
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


def test_train_and_evaluate_record_runs_in_a_local_store(tmp_path, tiny_config, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from training.evaluate import main as evaluate
    from training.train import main as train

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    assert train([str(tiny_config), "--out", "run", "--experiment", "tests"]) == 0
    args = [str(tiny_config), "--out", "report", "--n-boot", "100", "--quiet"]
    assert evaluate([*args, "--experiment", "tests"]) == 0
    gold = str(tiny_config.parent / "gold.jsonl")
    held_out = ["--model", "run", "--data", gold, "--out", "scored", "--n-boot", "100"]
    assert evaluate([*held_out, "--quiet", "--experiment", "tests"]) == 0

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tests")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [r.data.tags["stancelab.stage"] for r in runs] == ["train", "evaluate", "evaluate"]
    trained, evaluated, scored = runs

    # Training: the resolved config, the held-out figures of run.json, time, the run directory.
    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert trained.info.run_name == "tinybase"
    params = trained.data.params
    assert params["model"] == "baseline" and params["params.inner_folds"] == "2"
    assert params["params.C"] == "4.0"  # a default, resolved into the recorded config
    m = trained.data.metrics
    assert m["heldout.macro_f1"] == pytest.approx(run_json["metrics"]["macro_f1"])
    assert m["train_seconds"] == pytest.approx(run_json["train_seconds"])
    assert {f"heldout.f1.{n}" for n in LABELS} | {"heldout.ece"} <= set(m)
    assert trained.data.tags["stancelab.data_sha256"] == run_json["data"]["checksum_sha256"]
    files = {a.path for a in client.list_artifacts(trained.info.run_id, "run")}
    assert {"run/run.json", "run/config.yaml", "run/README.md"} <= files

    # Evaluation: figures with interval bounds per scheme, per-label F1, ECE, the report.
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    kfold = metrics["results"]["kfold"]["tinybase"]["corpus"]["overall"]
    m = evaluated.data.metrics
    assert m["kfold.macro_f1"] == pytest.approx(kfold["macro_f1"]["value"])
    assert [m["kfold.macro_f1.ci_low"], m["kfold.macro_f1.ci_high"]] == pytest.approx(
        kfold["macro_f1"]["ci"]
    )
    assert m["kfold.ece"] == pytest.approx(kfold["ece"]["value"])
    assert {f"kfold.f1.{n}" for n in LABELS} | {"kfold.micro_f1", "fit_seconds"} <= set(m)
    assert evaluated.data.params["params.inner_folds"] == "2"
    assert evaluated.data.tags["stancelab.protocol"] == "default"
    files = {a.path for a in client.list_artifacts(evaluated.info.run_id, "report")}
    assert {"report/report.md", "report/metrics.json"} <= files

    # A saved model scored on a file: its run directory's config, the held-out figures.
    assert scored.data.params["params.inner_folds"] == "2"
    assert scored.data.tags["stancelab.protocol"] == "held-out"
    assert {"held-out.macro_f1", "held-out.macro_f1.ci_low", "held-out.ece"} <= set(
        scored.data.metrics
    )

    # Every evaluation run says which code scored which data, as a training run does; a
    # saved model scored on a file says which file, how many of its sentences it was trained
    # on, and the report's verdict with its caution.
    from stancelab.data.labelled import load_labelled

    checksum = load_labelled(gold).checksum()
    for run in (evaluated, scored):
        assert run.data.tags["stancelab.code_version"] == run_json["code_version"]
        assert run.data.tags["stancelab.data_sha256"] == checksum
        assert run.data.tags["stancelab.data_path"] == gold
    report = json.loads((tmp_path / "scored" / "metrics.json").read_text())
    assert scored.data.metrics["seen_in_training"] == len(TINY)  # trained on this very file
    assert scored.data.tags["stancelab.verdict"] == report["verdict"]
    assert (
        f"Caution: {len(TINY)} of these sentences are in run's training data"
        in (scored.data.tags["stancelab.verdict"])
    )


def test_the_pipeline_records_its_training_runs_and_its_evaluation(
    tmp_path, tiny_config, monkeypatch
):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from training.pipeline import main

    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    (tmp_path / "labels" / "exports").mkdir(parents=True)
    shutil.copy(tiny_config.parent / "gold.jsonl", tmp_path / "labels" / "gold.jsonl")
    config = tmp_path / "pipeline.yaml"  # the pipeline's own gold set, which it rebuilds
    text = tiny_config.read_text(encoding="utf-8")
    config.write_text(text.replace(str(tiny_config.parent / "gold.jsonl"), "labels/gold.jsonl"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # --track: ./mlflow.db
    args = ["--configs", str(config), "--quiet", "--skip-active-learning", "--track"]
    assert main(args) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("stancelab")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [r.data.tags["stancelab.stage"] for r in runs] == ["train", "evaluate"]
    assert all(
        r.data.tags["stancelab.command"].startswith("python -m training.pipeline") for r in runs
    )


def the_error(stderr: str) -> str:
    """The one error line a command printed (MLflow logs its own INFO lines on stderr)."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def free_port() -> int:
    """A local TCP port where nothing listens (one the system just handed out, closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unusable_store(kind: str, tmp_path: Path) -> str:
    if kind == "server down":
        return f"http://127.0.0.1:{free_port()}"
    if kind == "not a database":
        (tmp_path / "notes.db").write_text("not a database\n")
        return f"sqlite:///{tmp_path / 'notes.db'}"
    (tmp_path / "a-folder.db").mkdir()  # sqlite cannot open a folder
    return f"sqlite:///{tmp_path / 'a-folder.db'}"


@pytest.mark.parametrize("kind", ["server down", "not a database", "a folder"])
def test_a_store_that_is_not_usable_is_one_line_before_any_work(
    kind, tmp_path, tiny_config, monkeypatch, capsys
):
    """The store is checked before training (and evaluating): one line naming the URI, no
    traceback, and nothing written, so the same command runs once the URI is fixed."""
    pytest.importorskip("mlflow")
    from training.evaluate import main as evaluate
    from training.train import main as train

    uri = unusable_store(kind, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    assert train([str(tiny_config), "--out", "run"]) == 1
    err = the_error(capsys.readouterr().err)
    assert err.startswith(f"error: MLflow tracking at {uri} is not usable: ")
    assert "nothing was run" in err
    assert not (tmp_path / "run").exists()
    assert evaluate([str(tiny_config), "--out", "report", "--n-boot", "100", "--quiet"]) == 1
    err = the_error(capsys.readouterr().err)
    assert err.startswith(f"error: MLflow tracking at {uri} is not usable: ")
    assert not (tmp_path / "report" / "metrics.json").exists()


def test_the_pipeline_checks_the_store_before_its_first_step(
    tmp_path, tiny_config, monkeypatch, capsys
):
    pytest.importorskip("mlflow")
    from training.pipeline import main

    uri = unusable_store("server down", tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # no seeds/ here: a pipeline that started would fail on them
    assert main(["--configs", str(tiny_config), "--quiet", "--skip-active-learning"]) == 1
    err = the_error(capsys.readouterr().err)
    assert err.startswith(f"error: MLflow tracking at {uri} is not usable: ")
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_a_store_that_fails_after_the_work_keeps_it_and_names_the_command_to_record_it(
    tmp_path, tiny_config, monkeypatch, capsys
):
    """The store answers before the work, but the artifacts cannot be written after it
    (./mlruns is a file): one line that says the run is saved and how to record it, and
    ``training.track`` then records the run directory and the report as the scripts would."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from training.evaluate import main as evaluate
    from training.track import main as track
    from training.train import main as train

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").write_text("")  # MLflow's artifact folder, blocked by a file
    assert train([str(tiny_config), "--out", "run", "--experiment", "tests"]) == 1
    err = the_error(capsys.readouterr().err)
    assert err.startswith(f"error: MLflow tracking at {uri} failed: ")
    assert err.endswith(
        "run saved but not recorded: record later with "
        "`python -m training.track run --experiment tests`"
    )
    assert (tmp_path / "run" / "run.json").is_file()
    args = [str(tiny_config), "--out", "report", "--n-boot", "100", "--quiet"]
    assert evaluate([*args, "--experiment", "tests"]) == 1
    err = the_error(capsys.readouterr().err)
    assert err.endswith(
        "report saved but not recorded: record later with "
        "`python -m training.track report --experiment tests`"
    )
    assert (tmp_path / "report" / "metrics.json").is_file()

    (tmp_path / "mlruns").unlink()
    assert track(["run", "report", "--experiment", "tests"]) == 0
    assert f"tracked: MLflow experiment 'tests', 2 runs at {uri} " in capsys.readouterr().out
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tests")
    done = client.search_runs(
        [experiment.experiment_id], "attributes.status = 'FINISHED'", order_by=["start_time"]
    )
    assert [r.data.tags["stancelab.stage"] for r in done] == ["train", "evaluate"]
    assert done[1].data.tags["stancelab.command"].startswith("python -m training.evaluate")
    files = {a.path for a in client.list_artifacts(done[0].info.run_id, "run")}
    assert "run/run.json" in files

    # Recording the same files again adds nothing (a rerun after a store failed partway
    # records only what is missing), and says so.
    def finished() -> list[str]:
        runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
        return sorted(r.info.run_id for r in runs)

    ids = finished()
    assert track(["run", "report", "--experiment", "tests"]) == 0
    out = capsys.readouterr().out
    assert "(recorded before from the same files: nothing recorded again)" in out
    assert finished() == ids
    client.delete_run(done[1].info.run_id)  # the evaluation's run is gone from the experiment
    assert track(["run", "report", "--experiment", "tests"]) == 0
    assert "2 runs (1 of them recorded before from the same files, not again)" in (
        capsys.readouterr().out
    )
    again = finished()
    assert len(again) == 2 and done[0].info.run_id in again and done[1].info.run_id not in again
    assert track(["nowhere"]) == 1
    assert the_error(capsys.readouterr().err).startswith("error: nowhere: neither a training run")


def test_two_processes_recording_the_same_run_at_once_record_it_once(
    tmp_path, tiny_config, monkeypatch
):
    """Three ``training.track`` processes on one run directory at the same moment: the
    experiment ends with one run of it. Each process either records it, finds it recorded, or
    is refused with one line while another records it; none records it a second time."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from training.train import main as train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert train([str(tiny_config), "--out", "run"]) == 0
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "STANCELAB_HOME": str(tmp_path / "home")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    MlflowClient(uri).create_experiment("tests")  # so that no process races to create it
    command = [sys.executable, "-m", "training.track", "run", "--experiment", "tests"]
    procs = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            outcomes.append("recorded before" if "recorded before" in out else "recorded")
        else:
            assert proc.returncode == 1, err
            assert the_error(err).startswith(
                "error: another process is recording 'tinybase' in MLflow experiment 'tests'"
            )
            outcomes.append("refused")
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert len(runs) == 1, outcomes
    assert outcomes.count("recorded") == 1, outcomes
    assert not list((tmp_path / "home" / "locks").iterdir())  # released and removed


def test_a_state_directory_that_is_a_file_is_named_before_any_work(
    tmp_path, tiny_config, monkeypatch, capsys
):
    """Before, training ran, then the recording lock failed with "Not a directory" and the
    line said to record later with ``training.track``, which failed the same way."""
    pytest.importorskip("mlflow")
    from stancelab._tracking_lock import recording
    from stancelab.errors import TrackingError
    from training.track import main as track
    from training.train import main as train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    assert train([str(tiny_config), "--out", "run"]) == 0  # recorded: the state dir is a folder
    home = tmp_path / "home"
    home.write_text("", encoding="utf-8")
    said = (
        f"error: STANCELAB_HOME={home} is a file; stancelab keeps its state (caches, locks) in "
        "a folder: set STANCELAB_HOME to a folder (it is created if missing), or unset it to "
        "use ~/.local/share/stancelab; nothing was run"
    )
    monkeypatch.setenv("STANCELAB_HOME", str(home))
    assert train([str(tiny_config), "--out", "again"]) == 1
    assert the_error(capsys.readouterr().err) == said
    assert not (tmp_path / "again").exists()
    assert track(["run"]) == 1
    assert the_error(capsys.readouterr().err) == said
    monkeypatch.setenv("STANCELAB_HOME", str(home / "state"))  # under the file
    under = f"STANCELAB_HOME={home / 'state'} is under {home}, which is a file; "
    with pytest.raises(TrackingError, match=f"^{re.escape(under)}"):
        with recording("sqlite:///mlflow.db", "tests", "0a1b", "run"):
            pass
    # One the system refuses to look at (a name too long): was an UnboundLocalError.
    monkeypatch.setenv("STANCELAB_HOME", str(tmp_path / ("a" * 300)))
    with pytest.raises(TrackingError, match="cannot be used .*File name too long"):
        with recording("sqlite:///mlflow.db", "tests", "0a1b", "run"):
            pass


def test_the_recording_lock_is_keyed_by_the_store_not_by_how_its_uri_is_written(
    tmp_path, monkeypatch
):
    """One store written two ways is one lock: a relative SQLite or file path and its
    absolute form, an HTTP URI with and without its trailing slash."""
    from stancelab._tracking_lock import store_key

    monkeypatch.chdir(tmp_path)
    assert store_key("sqlite:///mlflow.db") == store_key(f"sqlite:///{tmp_path}/mlflow.db")
    assert store_key("mlruns") == store_key(f"file://{tmp_path}/mlruns")
    assert store_key("http://h:5000/") == store_key("http://h:5000")
    assert store_key("http://h:5000") != store_key("http://h:5001")


@pytest.mark.parametrize("module", ["training.track", "training.train", "training.evaluate"])
def test_an_empty_experiment_name_is_a_usage_error_naming_the_option(module, tmp_path):
    """MLflow's refusal of an empty name read as a store that does not answer ("fix
    MLFLOW_TRACKING_URI"): the option is named instead, before anything runs."""
    root = Path(__file__).resolve().parent.parent
    args = ["runs/none"]
    if module != "training.track":  # elsewhere than the repository, should it run
        args = [str(root / "configs/baseline.yaml"), "--out", str(tmp_path / "o")]
    env = {**os.environ, "PYTHONPATH": str(root), "STANCELAB_HOME": str(tmp_path / "home")}
    ran = subprocess.run(
        [sys.executable, "-m", module, *args, "--experiment", " "],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert ran.returncode == 2
    assert ran.stderr.splitlines()[-1] == (
        f"python -m {module}: error: argument --experiment: an MLflow experiment needs a name"
    )
