"""The sweep's report: the table of runs, the set chosen per window, the out-of-sample equity
curve and a heatmap of the objective over two parameters."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from services.backtest.optimize import ParamRange, Run, WalkForward

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIGURES = ("trades", "net_pnl", "return_pct", "max_drawdown_pct", "sharpe")


def _time(us: int) -> str:
    return (_EPOCH + timedelta(microseconds=int(us))).isoformat()


def write_runs(result: WalkForward, names: Sequence[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["window", "sample", *names, *_FIGURES, "refused"])
        for run in result.runs:
            writer.writerow([run.window, run.sample, *(run.params.get(n, "") for n in names),
                             run.trades, run.net_pnl, f"{run.return_pct:.4f}", f"{run.max_drawdown_pct:.4f}",
                             f"{run.sharpe:.4f}", run.refused])


def write_windows(result: WalkForward, names: Sequence[str], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["window", "in_sample_from", "out_of_sample_from", "to", *names, "in_sample_net_pnl",
                         "out_of_sample_net_pnl", "out_of_sample_trades"])
        for window, best, tested in result.chosen:
            writer.writerow([window.number, _time(window.in_start_us), _time(window.in_end_us), _time(window.out_end_us),
                             *((best.params.get(n, "") for n in names) if best else ("",) * len(names)),
                             best.net_pnl if best else "", tested.net_pnl if tested else "",
                             tested.trades if tested else ""])


def out_of_sample_curve(result: WalkForward, starting_cash: float) -> tuple[np.ndarray, np.ndarray]:
    """The out-of-sample runs chained: each window starts from where the last one ended."""
    times, values, offset = [], [], 0.0
    for _, _, tested in result.chosen:
        if tested is None or tested.curve_equity is None or not len(tested.curve_equity):
            continue
        segment = tested.curve_equity + offset
        offset = segment[-1] - starting_cash
        # A NaN after each window breaks the drawn line across the in-sample gap to the next.
        times.append(np.append(tested.curve_time_us, tested.curve_time_us[-1]))
        values.append(np.append(segment, np.nan))
    if not times:
        return np.array([], dtype=np.int64), np.array([])
    return np.concatenate(times), np.concatenate(values)


def plot_curve(times: np.ndarray, equity: np.ndarray, path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot([_EPOCH + timedelta(microseconds=int(t)) for t in times], equity, color="#1f5fa8", linewidth=1.2)
    ax.set_title(title)
    ax.set_ylabel("equity (out of sample)")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_heatmap(runs: Sequence[Run], x: ParamRange, y: ParamRange, objective: str, path: Path, *, title: str) -> None:
    """Mean in-sample objective per (x, y) over the windows; a refused combination is left blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = np.full((len(y.values), len(x.values)), np.nan)
    sums: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        if run.sample == "in" and not run.refused:
            sums.setdefault((run.params[x.name], run.params[y.name]), []).append(run.score(objective))
    for (xv, yv), scores in sums.items():
        if xv in x.values and yv in y.values:
            cells[y.values.index(yv), x.values.index(xv)] = float(np.mean(scores))
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(x.values), 1.0 + 0.5 * len(y.values)))
    image = ax.imshow(cells, origin="lower", aspect="auto", cmap="RdYlGn")
    ax.set_xticks(range(len(x.values)), x.values)
    ax.set_yticks(range(len(y.values)), y.values)
    ax.set_xlabel(x.name)
    ax.set_ylabel(y.name)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=objective)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
