"""How fast the transformer's predict path could be on this machine, and at what cost in labels.

    python benchmarks/predict_ceiling.py [--transformer runs/transformer]
                                         [--out benchmarks/results/predict_ceiling.json]

Not a test: it measures, on the same 2,000 sentences as ``predict_speed.py``, the three
things that bound issue #9's target (3x the plain reference, with labels that agree with
fp32 on at least 99% of the 169 corpus sentences):

1. **The fp32 ceiling.** The machine's fp32 matrix-multiply rate at the model's own shapes,
   the arithmetic the plain reference does (unsorted batches of 32, padded to the longest)
   and the arithmetic a length-sorted path needs. A path that does the same fp32 arithmetic
   cannot beat ``plain time / (sorted arithmetic / peak rate)``.
2. **Where int8 loses labels.** The torch network with int8 simulated in one place at a time
   (weights per output channel; activations per batch, as ONNX Runtime's dynamic
   quantisation does; activations per token), against fp32: labels changed and the largest
   logit change. Also how many corpus sentences lie within 0.005/0.01/0.02 of a threshold.
3. **int8 with an fp32 recheck.** ONNX int8 on everything, then ONNX fp32 on the rows whose
   int8 score lies within a margin of a threshold: measured time, rows rechecked, agreement.
   And how much an int8 score moves when its sentence is scored alone instead of in a batch.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_speed import ROOT, fixed_sentences, plain_runner, same_labels  # noqa: E402

CORPUS = 169  # the first rows of fixed_sentences() are the corpus gold sentences
MARGINS = (0.02, 0.05, 0.1)


def linear_flops(cfg) -> int:
    """Multiply-add FLOPs of the encoder's dense layers per token."""
    h, f = cfg.hidden_size, cfg.intermediate_size
    return cfg.num_hidden_layers * 2 * (4 * h * h + 2 * h * f)


def batch_flops(batches: list[tuple[int, int]], cfg) -> float:
    """FLOPs of (rows, width) batches: dense layers per padded token plus attention."""
    attention = 4 * cfg.hidden_size * cfg.num_hidden_layers  # QK^T and AV, per token pair
    return float(sum(n * w * linear_flops(cfg) + n * w * w * attention for n, w in batches))


def plain_batches(lengths: list[int]) -> list[tuple[int, int]]:
    return [
        (len(lengths[i : i + 32]), max(lengths[i : i + 32])) for i in range(0, len(lengths), 32)
    ]


def sorted_batches(lengths: list[int], size: int) -> list[tuple[int, int]]:
    ordered = sorted(lengths)
    return [
        (len(ordered[i : i + size]), ordered[i : i + size][-1])
        for i in range(0, len(ordered), size)
    ]


def gemm_rate(cfg, rows: int = 2048, repeat: int = 50) -> float:
    """Best fp32 GFLOP/s of torch's matmul at the FFN's shape (rows x hidden x intermediate)."""
    import torch

    x = torch.randn(rows, cfg.hidden_size)
    w = torch.randn(cfg.intermediate_size, cfg.hidden_size)
    best = float("inf")
    for _ in range(5):
        x @ w.T
        started = time.perf_counter()
        for _ in range(repeat):
            x @ w.T
        best = min(best, (time.perf_counter() - started) / repeat)
    return 2 * rows * cfg.hidden_size * cfg.intermediate_size / best / 1e9


def best_time(run, repeat: int = 2) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def simulated(net, weights: bool, activations: str | None):
    """A copy of the network with int8 simulated in its encoder's dense layers."""
    import torch

    net = copy.deepcopy(net)
    dense = [m for n, m in net.named_modules() if isinstance(m, torch.nn.Linear) and "encoder" in n]
    for layer in dense:
        if weights:  # symmetric int8 per output channel, as quantize_dynamic(per_channel=True)
            w = layer.weight.data
            scale = w.abs().amax(1, keepdim=True).clamp(min=1e-12) / 127
            layer.weight.data = (w / scale).round().clamp(-127, 127) * scale
        if activations == "batch":  # asymmetric uint8 over the whole batch tensor
            layer.register_forward_pre_hook(lambda _m, inp: (_uint8_per_tensor(inp[0]),))
        elif activations == "token":  # symmetric int8 per token
            layer.register_forward_pre_hook(lambda _m, inp: (_int8_per_row(inp[0]),))
    return net


def _uint8_per_tensor(x):
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255 or 1.0
    zero = round(-low / scale)
    return ((x / scale).round() + zero).clamp(0, 255).sub(zero).mul(scale)


def _int8_per_row(x):
    scale = x.abs().amax(-1, keepdim=True).clamp(min=1e-12) / 127
    return (x / scale).round().clamp(-127, 127).mul(scale)


def agreement(proba: np.ndarray, ref: np.ndarray, cut: np.ndarray) -> dict:
    same = same_labels(proba, ref, cut)
    return {
        "corpus_changed": int((~same[:CORPUS]).sum()),
        "corpus_agreement": round(float(same[:CORPUS].mean()), 4),
        "agreement_2000": round(float(same.mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transformer", type=Path, default=ROOT / "runs" / "transformer")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "predict_ceiling.json"
    )
    args = parser.parse_args()

    from stancelab.models.registry import load_model
    from stancelab.models.transformer.network import infer

    texts = fixed_sentences()
    model = load_model(args.transformer)
    net, cfg, cut = model.net_, model.net_.backbone.config, np.asarray(model.thresholds_)
    ids = model._token_ids(texts)
    lengths = [len(row) for row in ids]

    # 1. fp32 ceiling
    run_plain = plain_runner(model)
    run_plain(texts[:64])
    plain_s, _ = best_time(lambda: run_plain(texts))
    peak = gemm_rate(cfg)
    plain_flops = batch_flops(plain_batches(lengths), cfg)
    sorted_flops = batch_flops(sorted_batches(lengths, 16), cfg)
    ceiling = {
        "gemm_gflops": round(peak, 1),
        "plain_seconds": round(plain_s, 2),
        "plain_per_second": round(len(texts) / plain_s, 1),
        "plain_gflops_achieved": round(plain_flops / plain_s / 1e9, 1),
        "tokens_real": sum(lengths),
        "tokens_plain_padded": sum(n * w for n, w in plain_batches(lengths)),
        "tokens_sorted16_padded": sum(n * w for n, w in sorted_batches(lengths, 16)),
        "fp32_ceiling_speedup": round(plain_s / (sorted_flops / (peak * 1e9)), 2),
    }

    # 2. where int8 loses labels (torch, length-sorted batches of 16 like the ONNX path)
    def logits_of(network):
        return infer(network, ids, model.pad_id_, batch_size=16)

    ref_logits = logits_of(net)
    ref = model.calibration_.transform(ref_logits)
    distance = np.abs(ref[:CORPUS] - cut).min(axis=1)
    near = {f"{m}": int((distance < m).sum()) for m in (0.005, 0.01, 0.02)}
    variants = {
        "weights int8 only": (True, None),
        "activations int8 per batch only": (False, "batch"),
        "activations int8 per token only": (False, "token"),
        "weights + activations per batch (like ORT dynamic)": (True, "batch"),
        "weights + activations per token": (True, "token"),
    }
    sensitivity = []
    for name, (weights, activations) in variants.items():
        logits = logits_of(simulated(net, weights, activations))
        row = {"variant": name, **agreement(model.calibration_.transform(logits), ref, cut)}
        row["max_logit_change"] = round(float(np.abs(logits - ref_logits).max()), 3)
        sensitivity.append(row)

    # 3. ONNX int8, then ONNX fp32 on the rows near a threshold
    model.use_backend("onnx", "int8")
    model.predict_proba(texts[:64])
    int8_s, int8_p = best_time(lambda: model.predict_proba(texts))
    # int8 scales activations per batch: the same sentence scored alone and in its batch
    alone = np.vstack([model.predict_proba([t]) for t in texts[:CORPUS]])
    batch_dependence = {
        "max_score_change": round(float(np.abs(alone - int8_p[:CORPUS]).max()), 4),
        "corpus_labels_changed": int((~same_labels(alone, int8_p[:CORPUS], cut)).sum()),
    }
    model.use_backend("onnx", "fp32")
    model.predict_proba(texts[:64])
    fp32_s, _ = best_time(lambda: model.predict_proba(texts))
    recheck = [
        {
            "margin": None,
            "rechecked": 0.0,
            "per_second": round(len(texts) / int8_s, 1),
            **agreement(int8_p, ref, cut),
        }
    ]
    for margin in MARGINS:
        rows = np.flatnonzero(np.abs(int8_p - cut).min(axis=1) < margin)
        subset = [texts[i] for i in rows]
        seconds, exact = best_time(lambda s=subset: model.predict_proba(s))
        mixed = int8_p.copy()
        mixed[rows] = exact
        recheck.append(
            {
                "margin": margin,
                "rechecked": round(len(rows) / len(texts), 3),
                "per_second": round(len(texts) / (int8_s + seconds), 1),
                **agreement(mixed, ref, cut),
            }
        )
    for row in recheck:
        row["speedup_vs_plain"] = round(row["per_second"] / ceiling["plain_per_second"], 2)

    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.python_version()}",
        "fp32_ceiling": ceiling,
        "onnx_fp32_per_second": round(len(texts) / fp32_s, 1),
        "corpus_sentences_near_a_threshold": near,
        "int8_sensitivity": sensitivity,
        "int8_with_fp32_recheck": recheck,
        "int8_alone_vs_in_batch": batch_dependence,
    }
    from stancelab.files import write_json

    write_json(args.out, report)
    print(f"machine: {report['machine']}")
    print(f"fp32 ceiling: {json.dumps(ceiling)}")
    print(f"ONNX fp32: {report['onnx_fp32_per_second']} sentences/s")
    print(f"corpus sentences within d of a threshold: {near}")
    for row in sensitivity:
        print(f"  {row}")
    for row in recheck:
        print(f"  int8 + fp32 recheck: {row}")
    print(f"int8, a corpus sentence alone vs in its batch: {batch_dependence}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
