"""How far cleanlab's ranking of likely label errors moves from the hand-written one it replaced.

    python benchmarks/label_review_overlap.py [--config configs/baseline.yaml | --predictions FILE]
        [--folds 5] [--seed 0] [--top 20] [--before 7d0fd61]
        [--out benchmarks/results/label_review_overlap.json]

Not a test. It computes the out-of-fold probabilities exactly as ``stancelab label review``
does with the same options (cross-validating the config on ``labels/gold.jsonl``, or reading an
evaluation's ``predictions.jsonl``), then ranks the gold sentences twice:

* **now**: ``stancelab.active.label_errors.find_suspects``, cleanlab's multi-label method;
* **before**: the hand-written confident learning that ``stancelab/labelerrors.py`` held at
  commit ``--before`` (the last one before cleanlab), read from git and run as it was, so none
  of it stays in the code.

It prints both top-N lists and their overlap, and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEFORE = "7d0fd61"  # main before cleanlab replaced the hand-written scoring
OLD_NAMES = ("Suspect", "confident_thresholds", "flags", "find_suspects")


def old_find_suspects(commit: str):
    """``find_suspects`` as it was at ``commit``: its source read from git, run unchanged."""
    from stancelab.labels import LABELS

    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:stancelab/labelerrors.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tree = ast.parse(source)
    parts = [
        ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in OLD_NAMES
    ]
    # Class decorators are not part of a node's segment: Suspect is a dataclass.
    code = "from __future__ import annotations\n" + "\n\n".join(
        "@dataclass\n" + p if p.startswith("class Suspect") else p for p in parts
    )
    namespace = {"np": np, "LABELS": LABELS, "dataclass": dataclass, "field": field}
    exec(compile(code, f"{commit}:stancelab/labelerrors.py", "exec"), namespace)
    return namespace["find_suspects"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "baseline.yaml")
    parser.add_argument("--predictions", type=Path, help="an evaluation's predictions.jsonl")
    parser.add_argument("--gold", type=Path, default=ROOT / "labels" / "gold.jsonl")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--before", default=BEFORE, help=f"commit of the old code ({BEFORE})")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "label_review_overlap.json"
    )
    args = parser.parse_args()

    from stancelab.active.assist import load_sources
    from stancelab.active.label_errors import covered, find_suspects
    from stancelab.data.labelled import load_labelled
    from stancelab.labels import display

    gold = load_labelled(args.gold, default_source="corpus")
    sources, notes = load_sources(
        gold,
        predictions=args.predictions,
        config_path=args.config,
        folds=args.folds,
        seed=args.seed,
        log=lambda m: print(m, file=sys.stderr),
    )
    rows = np.flatnonzero(covered(sources))
    subset = [type(s)(s.name, s.proba[rows], s.pred[rows]) for s in sources]
    y = gold.y[rows]
    rankings = {
        "now (cleanlab)": find_suspects(y, subset),
        f"before ({args.before}, hand-written)": old_find_suspects(args.before)(y, subset),
    }
    ids = {k: [gold.ids[rows[s.index]] for s in v] for k, v in rankings.items()}
    (now, new), (before, old) = ids.items()
    top_new, top_old = new[: args.top], old[: args.top]
    shared = [i for i in top_new if i in top_old]
    index = {sid: i for i, sid in enumerate(gold.ids)}
    result = {
        "command": " ".join(["python benchmarks/label_review_overlap.py", *sys.argv[1:]]),
        "sources": [s.name for s in sources],
        "notes": notes,
        "gold_sentences": int(len(rows)),
        "flagged": {k: len(v) for k, v in ids.items()},
        "top": args.top,
        "overlap": len(shared),
        "flagged_by_both": len(set(new) & set(old)),
        "ranks": {
            k: [
                {
                    "rank": r,
                    "id": sid,
                    "rank_in_other": (old if k == now else new).index(sid) + 1
                    if sid in (old if k == now else new)
                    else None,
                    "gold": display(gold.labels[index[sid]]),
                    "text": gold.texts[index[sid]],
                }
                for r, sid in enumerate(v[: args.top], start=1)
            ]
            for k, v in ids.items()
        },
    }
    for name, ranked in result["ranks"].items():
        print(f"\n{name}: {result['flagged'][name]} flagged; top {args.top}:")
        for row in ranked:
            other = row["rank_in_other"] or "-"
            print(f"{row['rank']:>3} (other: {other:>3}) [{row['gold']}] {row['text'][:80]}")
    print(
        f"\noverlap of the top {args.top}: {len(shared)} of {args.top} "
        f"(sources: {', '.join(result['sources'])}; {len(rows)} gold sentences; flagged by "
        f"both: {result['flagged_by_both']}, now {len(new)}, before {len(old)})"
    )
    from stancelab.files import write_json

    write_json(args.out, result)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
