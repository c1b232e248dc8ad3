"""Batches of ``gen`` jobs on Ray (``voyager-pipe batch``)."""

from voyager_pipe.batch.manifest import BatchJob, read_manifest
from voyager_pipe.batch.runner import JobResult, format_table, run_batch, run_job

__all__ = ["BatchJob", "JobResult", "format_table", "read_manifest", "run_batch", "run_job"]
