"""Throughput and memory of ``stancelab predict --input``: the local path against Ray Data.

    python benchmarks/predict_ray.py [--transformer runs/transformer] [--lines 20000]
                                     [--out benchmarks/results/predict_ray.json]

Not a test: it measures. The input is the 20,000 lines of ``predict_speed.py``'s streaming
run (corpus sentences, augmentation set, joined pairs, repeated). Each configuration is one
fresh ``stancelab predict`` command, timed from launch to exit, so Ray's start-up (a local
instance: GCS, raylet, workers), shipping the model through the object store and loading
it in every actor are all in the figure:

* ``local``: ``predict --input big.txt --output out.jsonl`` (ONNX Runtime, threads = cores);
* ``ray-1``: ``--engine ray --workers 1`` (one actor holding one CPU, one ONNX thread);
* ``ray-2``: ``--engine ray --workers 2``.

Memory: the peak, sampled every 0.2 s, of the summed proportional set size (PSS: a shared
page counted once over all its users) of the command and every process it starts (Ray's
GCS, raylet and workers; the object store's shared memory is in the PSS of the processes
that map it). For the local run, also its own peak RSS from ``wait4``. Ray's session files
go to a temporary directory (``RAY_TMPDIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from predict_speed import fixed_sentences  # noqa: E402

CONFIGS = {
    "local": [],
    "ray-1": ["--engine", "ray", "--workers", "1"],
    "ray-2": ["--engine", "ray", "--workers", "2"],
}


def tree_pss(pid: int) -> int:
    """Summed PSS in bytes of ``pid`` and its descendants (0 once it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            continue
    return total


def run(name: str, model_dir: Path, source: Path, tmp: Path) -> dict:
    out = tmp / f"{name}.jsonl"
    cmd = [sys.executable, "-m", "stancelab.cli", "predict", "--model", str(model_dir)]
    cmd += ["--input", str(source), "--output", str(out), "--no-progress", *CONFIGS[name]]
    env = {**os.environ, "RAY_TMPDIR": str(tmp / "ray")}
    (tmp / "ray").mkdir(exist_ok=True)
    peak = {"pss": 0}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def sample() -> None:
        while proc.poll() is None:
            peak["pss"] = max(peak["pss"], tree_pss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.join()
    stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {stderr[-3000:]}")
    files = sorted(out.glob("*.jsonl")) if out.is_dir() else [out]
    rows = [json.loads(line) for f in files for line in f.open(encoding="utf-8")]
    labels = {row["line"]: row.get("labels") for row in rows}
    return {
        "name": name,
        "rows": len(rows),
        "distinct_lines": len(labels),
        "seconds": round(seconds, 1),
        "rows_per_second": round(len(rows) / seconds, 1),
        "peak_pss_mb": round(peak["pss"] / 2**20, 1),
        "command_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "summary": stdout.strip().splitlines()[-1] if stdout.strip() else "",
        "labels": labels,
    }


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    import ray

    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "load_average_at_start": [round(x, 2) for x in load],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transformer", type=Path, default=ROOT / "runs" / "transformer")
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/predict_ray.json")
    args = parser.parse_args()
    report = {"machine": machine(), "lines": args.lines, "model": str(args.transformer)}
    texts = fixed_sentences()
    with tempfile.TemporaryDirectory(prefix="predict-ray-") as name:
        tmp = Path(name)
        source = tmp / "big.txt"
        with source.open("w", encoding="utf-8") as handle:
            for i in range(args.lines):
                handle.write(texts[i % len(texts)].replace("\n", " ") + "\n")
        # The ONNX export is made (and cached) before any timed run.
        warm = [sys.executable, "-m", "stancelab.cli", "predict", "--model", str(args.transformer)]
        subprocess.run([*warm, "Warm-up."], cwd=ROOT, check=True, capture_output=True)
        runs = [run(config, args.transformer, source, tmp) for config in CONFIGS]
    local = runs[0]["labels"]
    for r in runs:
        r["same_labels_as_local"] = sum(r["labels"].get(k) == v for k, v in local.items())
        r["speed_vs_local"] = round(r["rows_per_second"] / runs[0]["rows_per_second"], 2)
        del r["labels"]
        print(
            f"{r['name']:>6}: {r['rows']:,} rows ({r['distinct_lines']:,} distinct lines) in "
            f"{r['seconds']} s = {r['rows_per_second']} rows/s ({r['speed_vs_local']}x local); "
            f"peak PSS {r['peak_pss_mb']} MB; labels as local {r['same_labels_as_local']:,}"
        )
    report["runs"] = runs
    print(json.dumps(report["machine"]))
    from stancelab.files import write_json

    write_json(args.out, report)


if __name__ == "__main__":
    main()
