"""The sequential backend: evaluate in this process, one architecture at a time."""
from __future__ import annotations

from typing import Any


class LocalBackend:
    """Ask, evaluate, tell, commit, in turn; a resumed run is exactly an uninterrupted one with it."""

    name = "local"

    def drive(self, run: Any) -> None:
        """Run ``run`` (a ``nas.run.runner.Run``) to its budget."""
        while (job := run.next_job()) is not None:
            run.finish(job, run.evaluate(job))
