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
* transformer "onnx-fp32" and "onnx-int8": ONNX Runtime on the exported network
  (``stancelab.fastpath``), with label agreement against the fp32 PyTorch model on the 169
  corpus sentences.

Also: the cold start (a fresh ``python -c`` importing stancelab, loading the model and
labelling one sentence) and a streaming run of ``stancelab predict --input`` over a generated
file of 20,000 lines, with its peak memory (flat memory: compare with the 2,000-sentence run).
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
    from stancelab.data import load_augmentation, load_labelled

    gold = load_labelled(ROOT / "labels" / "gold.jsonl").texts
    texts = gold + load_augmentation(ROOT / "labels" / "augment").texts
    pairs = [f"{a} {b}" for a, b in zip(gold[::2], gold[1::2], strict=False)]
    return (texts + pairs)[:n]


def child(args: argparse.Namespace) -> None:
    """Run one configuration and print a JSON line with its figures."""
    import numpy as np

    from stancelab.model import load_model

    texts = fixed_sentences()
    corpus = texts[:169]
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
            model.use_backend("onnx", precision=args.config.split("-")[1])

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
        mine = proba[:169] >= cut
        model.use_backend("torch")
        ref = model.predict_proba(corpus) >= cut
        result["corpus_label_agreement"] = float(np.mean((mine == ref).all(axis=1)))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


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


def cold_start(model_dir: Path) -> float:
    code = (
        "import time; t=time.perf_counter(); from stancelab import predict; "
        f"predict('We will strike back.', model={str(model_dir)!r}); "
        "print(time.perf_counter()-t)"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)
    return round(time.perf_counter() - started, 2)


def streaming(model_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "big.txt"
        texts = fixed_sentences()
        with source.open("w", encoding="utf-8") as handle:
            for i in range(20000):
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
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rows = sum(1 for _ in out.open(encoding="utf-8"))
    return {
        "lines": 20000,
        "rows": rows,
        "seconds": round(seconds, 1),
        "peak_rss_mb_children_max": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, default=ROOT / "runs" / "baseline")
    parser.add_argument("--transformer", type=Path, default=ROOT / "runs" / "transformer")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "predict_speed.json"
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
    for batch in (1, 32, 256):
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
        "cold_start_s": {
            "baseline": cold_start(args.baseline),
            "transformer": cold_start(args.transformer),
        },
        "streaming_20k_transformer": streaming(args.transformer),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"machine: {report['machine']}")
    header = ("model", "config", "batch", "sent/s", "speedup", "agree", "peak MB")
    print(f"{header[0]:<12}{header[1]:<12}" + "".join(f"{h:>9}" for h in header[2:]))
    for r in rows:
        agree = r.get("corpus_label_agreement")
        print(
            f"{r['model']:<12}{r['config']:<12}{r['batch']:>9}{r['per_second']:>9}"
            f"{r.get('speedup_vs_plain', ''):>9}{'' if agree is None else f'{agree:.3f}':>9}"
            f"{r['peak_rss_mb']:>9}"
        )
    print(f"cold start to first prediction (s): {report['cold_start_s']}")
    print(f"streaming 20,000 lines (transformer): {report['streaming_20k_transformer']}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
