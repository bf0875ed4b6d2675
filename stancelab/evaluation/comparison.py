"""From out-of-fold predictions to every figure of the evaluation (``metrics.json``).

``build_metrics(result)`` takes an ``EvaluationResult`` (cross-validation or held-out) and
returns plain JSON-ready data: per model and training variant the figures with intervals,
the paired comparisons between models, the effect of the augmentation set, the spread across
repeats, the learning curve, leave-one-article-out per article, reliability tables, label
co-occurrence and the one-sentence verdict. ``stancelab.evaluation.report`` renders it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import combinations

import numpy as np

from stancelab.data.labelled import LabelledSet
from stancelab.evaluation.metrics import (
    figures,
    mcnemar,
    paired_bootstrap,
    repeat_spread,
    summarize,
)
from stancelab.evaluation.protocol import AUGMENTED, CORPUS
from stancelab.evaluation.results import EvaluationResult, Run
from stancelab.labels import LABELS, NONE
from stancelab.models.calibration import reliability_table

SCHEMES = ("kfold", "logo", "dyads", "held-out")
ALPHA = 0.05


def _arrays(result: EvaluationResult, run: Run, mask: np.ndarray, repeats: int | None = None):
    reps = slice(None) if repeats is None else slice(0, repeats)
    return result.data.y[mask], run.proba[reps][:, mask], run.pred[reps][:, mask]


def resampling(result: EvaluationResult, run: Run, mask: np.ndarray) -> dict:
    """How the bootstrap draws a run's sentences: leaving dyads out claims figures for
    conflicts never seen, and the sentences of one conflict are not independent draws, so
    its intervals resample whole dyads; the other schemes resample sentences."""
    if run.scheme != "dyads":
        return {}
    return {
        "groups": [d for d, m in zip(result.data.dyads, mask, strict=True) if m],
        "unit": "dyads",
    }


def summarize_run(result: EvaluationResult, run: Run, repeats: int | None = None) -> dict:
    p = result.protocol
    mask = run.scored
    y, proba, pred = _arrays(result, run, mask, repeats)
    out = summarize(y, proba, pred, n_boot=p.n_boot, seed=p.seed, **resampling(result, run, mask))
    out["unscored"] = int((~mask).sum())
    return out


def compare(result: EvaluationResult, a: Run, b: Run, *, with_mcnemar: bool = True) -> dict:
    """Paired comparison of two runs on the sentences both scored (a − b)."""
    p = result.protocol
    mask = a.scored & b.scored
    y, pa, ha = _arrays(result, a, mask)
    _, pb, hb = _arrays(result, b, mask)
    out = {
        "a": a.config,
        "variant_a": a.variant,
        "b": b.config,
        "variant_b": b.variant,
        "sentences": int(mask.sum()),
        **{
            m: paired_bootstrap(
                y,
                (pa, ha),
                (pb, hb),
                metric=m,
                n_boot=p.n_boot,
                seed=p.seed,
                **resampling(result, a, mask),
            )
            for m in ("macro_f1", "micro_f1")
        },
    }
    if with_mcnemar:  # one prediction per sentence and model: the first repeat
        out["mcnemar"] = {"repeat": 0, "per_label": mcnemar(y, ha[0], hb[0])}
    return out


def build_metrics(result: EvaluationResult) -> dict:
    names = list(result.models)
    schemes = [s for s in SCHEMES if any(r.scheme == s for r in result.runs)]
    data_name = "held-out data" if schemes == ["held-out"] else "corpus gold set"
    from stancelab.models.runs import code_version

    out: dict = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code_version": code_version(),
        "protocol": result.protocol.to_dict(),
        "data": data_summary(result),
        "folds_sha256": result.folds_sha256,
        "models": result.models,
        "results": {},
        "comparisons": {},
        "augmentation_effect": {},
        "seed_variance": {},
        "learning_curve": {},
        "per_article": {},
        "reliability": {},
        "label_cooccurrence": {
            "labels": [*LABELS, NONE],
            "sets": [cooccurrence(result.data, data_name)],
        },
        "notes": list(result.notes),
        "timing": timing(result),
    }
    if result.augmentation is not None:
        out["label_cooccurrence"]["sets"].append(
            cooccurrence(result.augmentation, "augmentation set")
        )
    for scheme in schemes:
        runs = [r for r in result.runs if r.scheme == scheme]
        out["results"][scheme] = {
            name: {r.variant: summarize_run(result, r) for r in runs if r.config == name}
            for name in names
        }
        primaries = [r for name in names if (r := result.primary(name, scheme)) is not None]
        out["comparisons"][scheme] = [compare(result, a, b) for a, b in combinations(primaries, 2)]
        effect = {}
        for name in names:
            with_aug = result.run(name, AUGMENTED.label, scheme)
            without = result.run(name, CORPUS.label, scheme)
            if with_aug and without:
                effect[name] = compare(result, with_aug, without, with_mcnemar=False)
        out["augmentation_effect"][scheme] = effect
    if result.dyads is not None:
        _add_dyads(out, build_metrics(result.dyads))
    main = schemes[0] if schemes else None
    for name in names:
        run = result.primary(name, main) if main else None
        if run is not None:
            y, proba, _ = _arrays(result, run, run.scored)
            out["reliability"][name] = reliability_table(
                np.tile(y, (len(proba), 1)), proba.reshape(-1, len(LABELS))
            )
            per_repeat = out["results"][main][name][run.variant]["per_repeat"]["macro_f1"]
            out["seed_variance"][name] = repeat_spread(per_repeat)
        out["learning_curve"][name] = learning_curve(result, name)
        logo = result.primary(name, "logo")
        if logo is not None:
            out["per_article"][name] = per_article(result, logo)
    out["verdict"] = verdict(out, result)
    return out


def _add_dyads(out: dict, dyads: dict) -> None:
    """Leave-dyads-out scores another set (the augmentation set): its figures join as a scheme."""
    for key in ("results", "comparisons"):
        if "dyads" in dyads[key]:
            out[key]["dyads"] = dyads[key]["dyads"]
    out["data"]["dyads"] = {
        **{k: dyads["data"][k] for k in ("path", "sentences", "per_label", "none")},
        "dyads": dyads["data"]["dyads_count"],
        "folds": dyads["protocol"]["leave_dyads_out"],
    }
    out["verdict_dyads"] = dyads["verdict"]
    out["notes"] += dyads["notes"]


def learning_curve(result: EvaluationResult, name: str) -> list[dict]:
    """Macro-F1 against training sentences, on the first k-fold repeat of every mix run."""
    points = []
    for run in (r for r in result.runs if r.config == name and r.scheme == "kfold"):
        sizes = [n for fold, n in run.train_sizes.items() if fold.startswith("r0")]
        if not sizes:
            continue
        summary = summarize_run(result, run, repeats=1)
        points.append(
            {
                "variant": run.variant,
                "train_sentences": float(np.mean(sizes)),
                "macro_f1": summary["overall"]["macro_f1"],
            }
        )
    return sorted(points, key=lambda p: p["train_sentences"])


def per_article(result: EvaluationResult, run: Run) -> dict:
    """Point figures for each held-out article (too few sentences each for intervals), and
    the labels of which it has no gold example (its macro-F1 counts each as 0)."""
    docs = sorted(set(result.data.doc_ids))
    mask = run.scored
    weights = np.array([[d == doc for d in result.data.doc_ids] for doc in docs], float)[:, mask]
    y, proba, pred = _arrays(result, run, mask)
    fig = figures(y, proba, pred, weights)
    support = weights @ y
    return {
        doc: {
            "sentences": int(weights[k].sum()),
            **{m: _num(fig[m][k]) for m in ("macro_f1", "micro_f1", "exact_match")},
            "labels_without_examples": [n for j, n in enumerate(LABELS) if support[k, j] == 0],
        }
        for k, doc in enumerate(docs)
    }


def cooccurrence(data: LabelledSet, name: str) -> dict:
    """Sentences carrying both labels (diagonal: carrying the label); last row/column: none."""
    y = data.y
    full = np.hstack([y, (y.sum(axis=1) == 0)[:, None]])
    return {"name": name, "sentences": len(data), "counts": (full.T @ full).astype(int).tolist()}


def data_summary(result: EvaluationResult) -> dict:
    data = result.data
    out = {
        "path": result.data_path,
        "checksum_sha256": data.checksum(),
        "sentences": len(data),
        "articles": len({d for d in data.doc_ids if d}),
        "per_label": dict(zip(LABELS, data.y.sum(axis=0).astype(int).tolist(), strict=True)),
        "none": int((data.y.sum(axis=1) == 0).sum()),
        "dyads_count": len({d for d in data.dyads if d}),
    }
    if result.augmentation is not None:
        out["augmentation_sentences"] = len(result.augmentation)
        out["augmentation_sha256"] = result.augmentation.checksum()
    return out


def timing(result: EvaluationResult) -> dict:
    parts = [result] if result.dyads is None else [result, result.dyads]  # every scheme's fits
    per_model = {}
    for name in result.models:
        seconds = [
            s for part in parts for r in part.runs if r.config == name for s in r.seconds.values()
        ]
        per_model[name] = {
            "fits": sum(part.models.get(name, {}).get("fits", 0) for part in parts),
            "seconds": round(float(np.sum(seconds)), 1),
        }
    return {"evaluation_seconds": round(result.seconds, 1), "per_model": per_model}


def describe_scheme(metrics: dict, scheme: str) -> str:
    p, d = metrics["protocol"], metrics["data"]
    if scheme == "kfold":
        return (
            f"{p['folds']}-fold cross-validation × {p['repeats']} repeat(s) over "
            f"{d['sentences']} corpus sentences"
        )
    if scheme == "logo":
        return f"leave-one-article-out over {d['articles']} articles"
    if scheme == "dyads":
        dy = d.get("dyads") or {**d, "dyads": d["dyads_count"], "folds": p["leave_dyads_out"]}
        return (
            f"leave dyads out: {dy['sentences']} authored sentences of {dy['dyads']} conflicts "
            f"in {dy['folds']} folds of whole dyads, each trained on the corpus and the others"
        )
    return f"the {d['sentences']} sentences of {d['path']}"


def fmt_p(p: float, n_boot: int | None = None) -> str:
    """``= p``, or a bound. A bootstrap p-value of ``n_boot`` resamples none of which was as
    extreme as the observed difference is 1/(n_boot + 1) (``paired_bootstrap``): the p-value
    is only known to be below 1/n_boot, so it is shown as that bound, never as a value."""
    if p < 0.001:
        return "< 0.001"
    if n_boot and p * (n_boot + 1) <= 1 + 1e-9:
        return f"< {1 / n_boot:.3g}"
    return f"= {p:.3f}"


def bootstrap_p(test: dict) -> str:
    """``fmt_p`` of a ``paired_bootstrap`` result, at the floor of the resamples it used;
    results written before it recorded them have only ``n_boot``."""
    return fmt_p(test["p_value"], test.get("resamples", test["n_boot"]))


def significant(test: dict) -> bool:
    """Both the interval and the p-value must say so (they can disagree at the margin)."""
    lo, hi = test["ci"]
    return test["p_value"] < ALPHA and lo is not None and (lo > 0 or hi < 0)


def verdict(metrics: dict, result: EvaluationResult) -> str:
    """The sentence (or one per compared pair) the numbers support, on the main scheme, a note
    on labels the scored sentences have no example of, and a caution for a model scored on
    sentences it was trained on."""
    cautions = [
        f"Caution: {seen} of these sentences are in {name}'s training data, so its figures "
        "on them are not held-out."
        for name, info in result.models.items()
        if (seen := info.get("seen_in_training"))
    ]
    scheme = next((s for s in SCHEMES if s in metrics["results"]), None)
    missing = labels_without_examples(metrics, scheme) if scheme else []
    return " ".join([_verdict(metrics, result), *missing, *cautions])


def labels_without_examples(metrics: dict, scheme: str) -> list[str]:
    """One sentence per set of labels with no gold example among the sentences each model
    (its primary variant) was scored on in ``scheme``. Macro-F1 counts each such label as 0
    (``label_f1``), which caps the figure of a file of few labels, so the sentence gives the
    macro-F1 over the labels with examples too."""
    results = metrics["results"][scheme]
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, variants in results.items():
        summary = variants.get(metrics["models"][name]["primary"])
        if summary and summary.get("labels_without_examples"):
            groups.setdefault(tuple(summary["labels_without_examples"]), []).append(name)
    sentences = []
    for absent, names in groups.items():
        if len(absent) == len(LABELS):
            sentences.append(
                "Note: these sentences have no example of any label, so macro-F1 is 0 whatever "
                "the model predicts."
            )
            continue
        with_examples = [
            results[name][metrics["models"][name]["primary"]]["macro_f1_labels_with_examples"]
            for name in names
        ]
        figures = [
            f"{_f(m['value'])} (95% CI {_f(m['ci'][0])}–{_f(m['ci'][1])}) for {name}"
            for name, m in zip(names, with_examples, strict=True)
        ]
        sentences.append(
            f"Note: these sentences have no example of {_join(absent, 'or')}, and macro-F1 "
            f"counts each such label as 0; over the labels that have examples "
            f"({', '.join(with_examples[0]['labels'])}), macro-F1 is {_join(figures, 'and')}."
        )
    return sentences


def _join(items: Sequence[str], last: str) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _verdict(metrics: dict, result: EvaluationResult) -> str:
    scheme = next((s for s in SCHEMES if s in metrics["results"]), None)
    if scheme is None:
        return "Nothing was scored."
    where = describe_scheme(metrics, scheme)
    results = metrics["results"][scheme]

    def score(name: str, variant: str) -> str:
        m = results[name][variant]["overall"]["macro_f1"]
        return f"{_f(m['value'])} (95% CI {_f(m['ci'][0])}–{_f(m['ci'][1])})"

    comparisons = metrics["comparisons"][scheme]
    if not comparisons:
        name = next(iter(results))
        return (
            f"On {where}, {name} reaches macro-F1 {score(name, result.models[name]['primary'])}; "
            "there is no second model to compare it with."
        )
    sentences = []
    for c in comparisons:
        test = c["macro_f1"]
        d, (lo, hi) = test["difference"], test["ci"]
        p = bootstrap_p(test)
        sa, sb = score(c["a"], c["variant_a"]), score(c["b"], c["variant_b"])
        here = where
        scored = {results[c[m]][c[f"variant_{m}"]]["sentences"] for m in ("a", "b")}
        if scored != {c["sentences"]}:
            # A fold one of them could not score: the difference is on the sentences both
            # were scored on, so both figures quoted beside it are too.
            here = f"{where}, on the {c['sentences']} sentences both models were scored on"
            sa, sb = _f(test["a"]), _f(test["b"])
        if significant(test):
            win, lose, sw, sl = (c["a"], c["b"], sa, sb) if d > 0 else (c["b"], c["a"], sb, sa)
            sentences.append(
                f"On {here}, {win} has a higher macro-F1 than {lose}: {sw} against {sl}, a "
                f"difference of {abs(d):.3f} (95% CI {_f(min(abs(lo), abs(hi)))}–"
                f"{_f(max(abs(lo), abs(hi)))}, paired bootstrap p {p})."
            )
        else:
            sentences.append(
                f"On {here}, there is no significant difference in macro-F1 between {c['a']}, "
                f"{sa}, and {c['b']}, {sb}: the difference ({c['a']} − {c['b']}) is "
                f"{d:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}, paired bootstrap p "
                f"{p})."
            )
    return " ".join(sentences)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
