"""Prediction speed and memory of both models on a fixed set of 2,000 sentences.

    python benchmarks/predict_speed.py [--baseline runs/baseline] [--transformer runs/transformer]
                                       [--out benchmarks/results/predict_speed.json]

Not a test: it measures. Each configuration runs in a fresh subprocess, so its peak resident
memory (ru_maxrss) is its own. Configurations:

* baseline at several batch sizes;
* transformer "plain": the reference — padded batches of 32 in input order (unsorted),
  fp32, ``torch.no_grad`` — the way a first implementation would run it;
* transformer "torch": stancelab's PyTorch path (length-sorted batches, dynamic padding,
  ``torch.inference_mode``, threads = cores);
* transformer "onnx-fp32" (predict's default) and "onnx-int8": ONNX Runtime on the exported
  network (``stancelab.models.transformer.onnx``), each with its label agreement against the fp32
  PyTorch
  model on the 169 corpus sentences and on all 2,000, and the largest change of a
  calibrated score.

Also: streaming runs of ``stancelab predict --input`` over generated files of 2,000 and
20,000 lines, each with its own peak memory (flat memory: the two agree). The cold start (a
fresh ``python -c`` to the first prediction) is ``benchmarks/cold_start.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fixed_sentences(n: int = 2000) -> list[str]:
    """The corpus gold sentences, then the augmentation set, then joined corpus pairs."""
    sys.path.insert(0, str(ROOT))
    from stancelab.data.labelled import load_augmentation, load_labelled

    gold = load_labelled(ROOT / "labels" / "gold.jsonl").texts
    texts = gold + load_augmentation(ROOT / "labels" / "augment").texts
    pairs = [f"{a} {b}" for a, b in zip(gold[::2], gold[1::2], strict=False)]
    return (texts + pairs)[:n]


def child(args: argparse.Namespace) -> None:
    """Run one configuration and print a JSON line with its figures."""
    import numpy as np

    from stancelab.models.registry import load_model

    texts = fixed_sentences()
    started = time.perf_counter()
    model = load_model(args.model_dir)
    load_s = time.perf_counter() - started
    result: dict = {"config": args.config, "batch": args.batch, "load_s": round(load_s, 2)}
    if model.kind == "baseline":

        def run(batch):
            return np.vstack(
                [
                    model.predict_proba(batch[i : i + args.batch])
                    for i in range(0, len(batch), args.batch)
                ]
            )
    elif args.config == "plain":
        run = plain_runner(model)
    else:
        if args.config.startswith("onnx"):
            model.use_backend("onnx", precision=args.config.split("-", 1)[1])
        else:  # a loaded model's default is ONNX Runtime; "torch" measures PyTorch
            model.use_backend("torch")

        def run(batch):
            return np.vstack(
                [
                    model.predict_proba(batch[i : i + args.batch])
                    for i in range(0, len(batch), args.batch)
                ]
            )

    run(texts[:64])  # warm-up (and the one-off ONNX export, outside the timing)
    started = time.perf_counter()
    proba = run(texts)
    seconds = time.perf_counter() - started
    result.update(
        sentences=len(texts), seconds=round(seconds, 2), per_second=round(len(texts) / seconds, 1)
    )
    if model.kind == "transformer":
        cut = np.asarray(model.thresholds_)
        model.use_backend("torch")
        # Against fp32 PyTorch: labels on the 169 corpus sentences and on all 2,000, and the
        # largest change of a calibrated score.
        ref = model.predict_proba(texts)
        same = same_labels(proba, ref, cut)
        result["corpus_label_agreement"] = float(same[:169].mean())
        result["label_agreement_2000"] = float(same.mean())
        result["max_score_diff"] = float(np.abs(proba - ref).max())
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def same_labels(proba, ref, cut):
    """Per row: does thresholding ``proba`` give the same label set as ``ref``?"""
    return ((proba >= cut) == (ref >= cut)).all(axis=1)


def plain_runner(model):
    """The reference: unsorted batches of 32, padded to the batch's longest, fp32, no_grad."""
    import numpy as np
    import torch

    def run(texts):
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 32):
                batch = model.tokenizer_(
                    texts[i : i + 32],
                    padding=True,
                    truncation=True,
                    max_length=model.params.max_length,
                    return_tensors="pt",
                )
                logits = model.net_(batch["input_ids"], batch["attention_mask"])
                out.append(logits.float().numpy())
        return model.calibration_.transform(np.vstack(out))

    return run


def spawn(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def streaming(model_dir: Path, lines: int) -> dict:
    """``stancelab predict --input`` over a generated file; time and that process's peak RSS.

    The peak is read with ``os.wait4`` for this one child, so runs of different sizes can be
    compared: flat memory means the 20,000-line peak stays near the 2,000-line one.
    """
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "big.txt"
        texts = fixed_sentences()
        with source.open("w", encoding="utf-8") as handle:
            for i in range(lines):
                handle.write(texts[i % len(texts)].replace("\n", " ") + "\n")
        out = Path(tmp) / "out.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "stancelab.cli",
            "predict",
            "--model",
            str(model_dir),
            "--input",
            str(source),
            "--output",
            str(out),
            "--no-progress",
        ]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"streaming run failed: {proc.stderr.read().decode()[-2000:]}")
        proc.stderr.close()
        rows = sum(1 for _ in out.open(encoding="utf-8"))
    return {
        "lines": lines,
        "rows": rows,
        "seconds": round(seconds, 1),
        "lines_per_second": round(lines / seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, default=ROOT / "runs" / "baseline")
    parser.add_argument("--transformer", type=Path, default=ROOT / "runs" / "transformer")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "predict_speed.json"
    )
    parser.add_argument(
        "--transformer-only",
        action="store_true",
        help="only the reference, PyTorch, ONNX fp32 and int8 rows of the transformer "
        "(batch 256): no baseline, cold start or streaming runs",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", default="", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for batch in () if args.transformer_only else (1, 32, 256):
        rows.append(
            {
                "model": "baseline",
                **spawn(
                    "--model-dir", str(args.baseline), "--config", "baseline", "--batch", str(batch)
                ),
            }
        )
    runs = [
        ("plain", 32),
        ("torch", 32),
        ("torch", 256),
        ("onnx-fp32", 1),
        ("onnx-fp32", 32),
        ("onnx-fp32", 256),
        ("onnx-int8", 256),
    ]
    if args.transformer_only:
        runs = [r for r in runs if r in {("plain", 32), ("torch", 256)} or r[1] == 256]
    for config, batch in runs:
        rows.append(
            {
                "model": "transformer",
                **spawn(
                    "--model-dir", str(args.transformer), "--config", config, "--batch", str(batch)
                ),
            }
        )
    plain = next(r for r in rows if r["config"] == "plain")["per_second"]
    for r in rows:
        if r["model"] == "transformer":
            r["speedup_vs_plain"] = round(r["per_second"] / plain, 2)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.python_version()}",
        "rows": rows,
    }
    if not args.transformer_only:
        report["streaming_transformer"] = [streaming(args.transformer, n) for n in (2000, 20000)]
    from stancelab.files import write_json

    write_json(args.out, report)
    print(f"machine: {report['machine']}")
    columns = (
        ("batch", "batch", "{}"),
        ("sent/s", "per_second", "{}"),
        ("speedup", "speedup_vs_plain", "{}"),
        ("agree169", "corpus_label_agreement", "{:.3f}"),
        ("agree2k", "label_agreement_2000", "{:.4f}"),
        ("maxΔp", "max_score_diff", "{:.3f}"),
        ("peak MB", "peak_rss_mb", "{}"),
    )
    print(f"{'model':<12}{'config':<19}" + "".join(f"{h:>10}" for h, _, _ in columns))
    for r in rows:
        cells = "".join(
            f"{'' if r.get(key) is None else fmt.format(r[key]):>10}" for _, key, fmt in columns
        )
        print(f"{r['model']:<12}{r['config']:<19}{cells}")
    for run in report.get("streaming_transformer", []):
        print(f"streaming {run['lines']:,} lines (transformer): {run}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
