"""Progress of a batch of model fits, with an honest estimate of the time left.

Used by the evaluation harness. tqdm's own estimate assumes every step costs the same, but a
fit's cost depends on the model and on the rows it trains on (``fit.rows_fitted``: copies of
corpus sentences counted, ``data.corpus_repeat``): here the time left is the sum, over the
fits still to run, of the model's measured seconds per row (or a hint, e.g. from the training
run, before its first fit) times that fit's rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} fits [{elapsed} elapsed{postfix}]"
)


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class FitProgress:
    """A progress bar over fits; ``start(k, what)`` before fit k, ``done(k, seconds)`` after."""

    def __init__(
        self,
        models: Sequence[str],
        sizes: Sequence[int],
        rate_hints: dict[str, float] | None = None,
        *,
        enabled: bool = True,
    ) -> None:
        from tqdm import tqdm

        self.models, self.sizes = list(models), list(sizes)
        self.hints = dict(rate_hints or {})
        self.measured: dict[str, list[float]] = {}  # model -> [seconds, rows]
        self.pending = set(range(len(self.models)))
        self.current_started = 0.0
        self.bar = tqdm(
            total=len(self.models),
            unit="fit",
            disable=not enabled,
            dynamic_ncols=True,
            bar_format=BAR_FORMAT,
            desc="evaluating",
        )
        self.bar.set_postfix_str(self.eta_text(), refresh=False)

    def rate(self, model: str) -> float | None:
        if model in self.measured:
            seconds, rows = self.measured[model]
            return seconds / max(rows, 1)
        return self.hints.get(model)

    def remaining(self) -> float | None:
        """Estimated seconds left, or None while some model's cost is still unknown."""
        total = 0.0
        for k in self.pending:
            rate = self.rate(self.models[k])
            if rate is None:
                return None
            total += rate * self.sizes[k]
        return max(0.0, total - (time.perf_counter() - self.current_started))

    def eta_text(self) -> str:
        left = self.remaining()
        return "time left: estimating" if left is None else f"about {format_seconds(left)} left"

    def start(self, k: int, what: str) -> None:
        self.current_started = time.perf_counter()
        self.bar.set_description_str(what, refresh=False)
        self.bar.set_postfix_str(self.eta_text())

    def done(self, k: int, seconds: float) -> None:
        if seconds > 0:
            record = self.measured.setdefault(self.models[k], [0.0, 0.0])
            record[0] += seconds
            record[1] += self.sizes[k]
        self.pending.discard(k)
        self.current_started = time.perf_counter()
        self.bar.set_postfix_str(self.eta_text(), refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.set_description_str("evaluated", refresh=False)
        self.bar.close()
