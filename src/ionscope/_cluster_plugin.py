"""The scheduler plugin behind :func:`ionscope.cluster.follow_tasks` (imported on the scheduler
only, so that ``ionscope.cluster`` does not import distributed until a cluster is used)."""

from __future__ import annotations

from distributed.diagnostics.plugin import SchedulerPlugin


class TaskCounter(SchedulerPlugin):
    """Counts the tasks the scheduler accepted and finished (for progress bars)."""

    name = "ionscope-task-counter"

    def __init__(self) -> None:
        self.added = 0
        self.finished = 0

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if start == "released" and finish == "waiting":
            self.added += 1
        elif start == "processing" and finish in ("memory", "erred"):
            self.finished += 1


def install(dask_scheduler=None) -> None:
    """Add the counter to the scheduler (once)."""
    if TaskCounter.name not in dask_scheduler.plugins:
        dask_scheduler.add_plugin(TaskCounter(), name=TaskCounter.name)


def counts(dask_scheduler=None) -> tuple[int, int]:
    """``(accepted, finished)`` since the counter was installed."""
    plugin = dask_scheduler.plugins.get(TaskCounter.name)
    return (0, 0) if plugin is None else (plugin.added, plugin.finished)
