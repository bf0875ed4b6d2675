"""Cold start: from a fresh ``python -c`` to the first prediction, for both models.

    python benchmarks/cold_start.py [--baseline runs/baseline] [--transformer runs/transformer]
                                    [--old-baseline DIR] [--runs 7]
                                    [--out benchmarks/results/cold_start.json]

Not a test: it measures. Each run is a new Python process that executes

    import stancelab; stancelab.predict(["We will strike back."], model=RUN)

(and, as a second entry point, ``stancelab.load_model(RUN).predict([...])``), timed from
process start to exit by the parent, with its CPU time (user + system, from ``os.wait4``)
beside the wall time. Caches are warm: one untimed run of each command goes first (it also
makes the transformer's ONNX export if none is cached). The figure is the median of
``--runs`` runs, with the range; the cases take turns, run by run. Also measured, for
scale: an empty ``python -c pass``, ``import sklearn`` (what loading through scikit-learn
would add) and, with ``--old-baseline``, a run directory in the old skops format.

On a shared machine wall times swing with the load (printed before and after); CPU time
swings much less.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "We will strike back."


def predict_code(run: Path, entry: str) -> str:
    if entry == "load_model":
        return f"import stancelab; stancelab.load_model({str(run)!r}).predict([{TEXT!r}])"
    return f"import stancelab; stancelab.predict([{TEXT!r}], model={str(run)!r})"


def once(code: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh ``python -c code``."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"cold-start run failed: {code}\n{stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def summary(walls: list[float], cpus: list[float]) -> dict:
    return {
        "wall_s": round(statistics.median(walls), 2),
        "wall_range_s": [round(min(walls), 2), round(max(walls), 2)],
        "cpu_s": round(statistics.median(cpus), 2),
        "runs": len(walls),
    }


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, default=ROOT / "runs" / "baseline")
    parser.add_argument("--transformer", type=Path, default=ROOT / "runs" / "transformer")
    parser.add_argument("--old-baseline", type=Path, help="a run directory in the skops format")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "cold_start.json"
    )
    args = parser.parse_args()
    cases = [
        (f"{kind}, {entry}", predict_code(run, entry))
        for kind, run in (("baseline", args.baseline), ("transformer", args.transformer))
        for entry in ("predict", "load_model")
    ]
    if args.old_baseline:
        cases.append(("baseline, old skops format", predict_code(args.old_baseline, "predict")))
    cases += [("python -c pass", "pass"), ("import sklearn", "import sklearn")]
    report = {"machine": machine(), "load_before": os.getloadavg(), "text": TEXT, "rows": []}
    for _, code in cases:
        once(code)  # warm-up: file caches, and the ONNX export if it is missing
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in cases}
    for _ in range(args.runs):  # round-robin, so that a burst of load hits every case alike
        for name, code in cases:
            times[name].append(once(code))
    for name, _ in cases:
        walls, cpus = zip(*times[name], strict=True)
        row = {"case": name, **summary(list(walls), list(cpus))}
        report["rows"].append(row)
        print(
            f"{name:<32} wall {row['wall_s']:>6.2f} s  (range {row['wall_range_s'][0]:.2f}-"
            f"{row['wall_range_s'][1]:.2f})   cpu {row['cpu_s']:>5.2f} s",
            flush=True,
        )
    report["load_after"] = os.getloadavg()
    print(
        f"machine: {report['machine']}; load average before {report['load_before'][0]:.1f}, "
        f"after {report['load_after'][0]:.1f}"
    )
    from stancelab.files import write_json

    write_json(args.out, report)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
