"""A rich progress bar for runs: evaluations done, elapsed time, best value so far."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nas.run.trial import Progress as RunProgress


def task_bar(console: Console) -> Progress:
    """A bar per named task (done of total, elapsed, remaining), for commands with several phases."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console)


class ProgressBar:
    """``start(..., on_start=bar.start, on_trial=bar.update)``, then ``bar.close()``."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[best]}"),
            console=self.console,
            transient=False,
        )
        self.task: Any = None
        self.failed = 0
        self.closed = False

    def close(self) -> None:
        """Stop drawing (once a run started: errors before it stay one line)."""
        if self.task is not None and not self.closed:
            self.progress.stop()
        self.closed = True

    def start(self, run_id: str, budget: int | None, metric: str) -> None:
        self.metric = metric
        self.progress.start()
        self.task = self.progress.add_task(run_id, total=budget, best="")

    def update(self, event: RunProgress) -> None:
        if self.task is None:
            self.start("run", event.budget, event.metric)
        if event.trial.status != "ok":
            self.failed += 1
        best = f"best {event.metric} {event.best:.6g}" if event.best is not None else "no result yet"
        if self.failed:
            best += f" ({self.failed} failed)"
        if event.refused:  # a tight bound shows here, before it ends the run, with how near it came
            nearest = f", nearest {event.nearest}" if event.nearest else ""
            best += f" ({event.refused} refused by constraints{nearest})"
        best = f"{event.trial.stage}: {best}"
        self.progress.update(self.task, completed=event.done, total=event.budget, best=best)
