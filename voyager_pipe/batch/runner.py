"""Run a batch of ``gen`` jobs as Ray tasks: resumable, failures isolated, one table at the end.

* A job whose output folder exists is **skipped** (the pipeline only renames ``<name>.partial``
  to ``<name>`` when a run finished); a job with an interrupted ``<name>.partial`` is continued
  with ``gen``'s own resume (same files as an uninterrupted run).
* Each job runs :class:`~voyager_pipe.pipeline.WorldPipeline` in a Ray worker process (no CLI
  subprocess). A bad input fails that job with its one-line message; the others go on.
* Ray: a local instance is started for the run (``workers`` concurrent jobs: one per GPU, or
  ``--workers`` on CPU) unless ``address`` names an existing cluster (``auto`` = the one this
  machine belongs to). A job asks Ray for one GPU when the cluster has GPUs.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from voyager_pipe.batch.manifest import BatchJob
from voyager_pipe.errors import InputError, MissingDependencyError

REPORT_NAME = "batch.json"
STATUSES = ("ok", "failed", "skipped")


@dataclass
class JobResult:
    """What happened to one job (a row of the table and of ``batch.json``)."""

    name: str
    line: int
    status: str  # one of STATUSES
    seconds: float = 0.0
    error: Optional[str] = None  # one line
    resumed: bool = False  # continued an interrupted run
    traceback: Optional[str] = None  # internal errors only (bugs), for batch.json


def import_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("batch: needs Ray; install it with pip install 'voyager_pipe[batch]' (or pip install ray)") from None
    return ray


# --------------------------------------------------------------------------- one job
def finished(job: BatchJob, out_root: Path) -> bool:
    return (out_root / job.name).is_dir()


def run_job(job: BatchJob, out_root: str | Path, threads: Optional[int] = None) -> JobResult:
    """Run one job in this process (what a Ray task executes). Never raises for a job's own failure."""
    from voyager_pipe.pipeline import WorldPipeline, can_resume

    if threads:
        import torch

        torch.set_num_threads(threads)
    out = Path(out_root) / job.name
    resume = can_resume(out)
    start = time.perf_counter()
    result = JobResult(name=job.name, line=job.line, status="ok", resumed=resume)
    try:
        WorldPipeline(job.config)(job.image, job.trajectory, out, depth=job.depth, resume=resume)
    except InputError as exc:
        result.status, result.error = "failed", str(exc).replace("\n", " ")
    except Exception as exc:  # a bug in this job must not stop the others: report it with its traceback
        result.status, result.error = "failed", f"internal error: {exc.__class__.__name__}: {exc}".replace("\n", " ")
        result.traceback = traceback.format_exc()
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------- the batch
def run_batch(jobs: list[BatchJob], out_root: str | Path, workers: Optional[int] = None, address: Optional[str] = None,
              progress: bool = True, manifest: Optional[str] = None,
              on_result: Optional[Callable[[JobResult], None]] = None) -> list[JobResult]:
    """Run ``jobs`` (skipping finished ones) and write ``<out_root>/batch.json``; results in manifest order.

    Uses the Ray instance this process is already connected to, if any; otherwise connects to
    ``address`` or starts a local one (stopped again at the end).
    """
    from tqdm.auto import tqdm

    if workers is not None and workers < 1:
        raise InputError(f"--workers: must be >= 1, got {workers}")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    results: dict[str, JobResult] = {}
    for job in jobs:
        if finished(job, out_root):
            results[job.name] = JobResult(name=job.name, line=job.line, status="skipped")
    todo = [job for job in jobs if job.name not in results]
    report = lambda: _write_report(out_root, jobs, results, manifest)  # noqa: E731
    if not todo:
        report()
        return [results[job.name] for job in jobs]

    ray = import_ray()
    started = _connect(ray, address, workers)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        threads = None
        if started and not gpus:  # local CPU run: share the cores between the concurrent jobs
            threads = max(1, (os.cpu_count() or 1) // int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(run_job).options(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=0)
        pending = {task.remote(job, str(out_root.resolve()), threads): job for job in todo}
        with tqdm(total=len(todo), unit="job", desc="batch", disable=not progress) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except Exception as exc:  # the worker process died (out of memory, killed, crashed)
                    result = JobResult(name=job.name, line=job.line, status="failed",
                                       error=f"worker failed: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                results[job.name] = result
                report()
                if on_result is not None:
                    on_result(result)
                bar.update(1)
    finally:
        if started:
            ray.shutdown()
    report()
    return [results[job.name] for job in jobs]


def _connect(ray, address: Optional[str], workers: Optional[int]) -> bool:
    """Connect to Ray; return True when a local instance was started here (to stop at the end)."""
    if ray.is_initialized():
        return False
    options = dict(log_to_driver=False, configure_logging=False)
    if address:
        try:
            ray.init(address=address, **options)
        except ConnectionError as exc:
            raise InputError(f"--address {address}: cannot connect to a Ray cluster ({exc})".replace("\n", " ")) from None
        return False
    import torch

    gpus = torch.cuda.device_count()
    if gpus:
        ray.init(num_gpus=min(workers or gpus, gpus), num_cpus=os.cpu_count(), include_dashboard=False, **options)
    else:
        ray.init(num_cpus=workers or 1, num_gpus=0, include_dashboard=False, **options)
    return True


# --------------------------------------------------------------------------- report
def _write_report(out_root: Path, jobs: list[BatchJob], results: dict[str, JobResult], manifest: Optional[str]) -> None:
    from voyager_pipe.io.atomic import atomic_write_text

    rows = []
    for job in jobs:
        result = results.get(job.name)
        row = asdict(result) if result else {"name": job.name, "line": job.line, "status": "pending"}
        if row.get("traceback") is None:
            row.pop("traceback", None)
        if "seconds" in row:
            row["seconds"] = round(row["seconds"], 3)
        rows.append(row)
    counts = {status: sum(r["status"] == status for r in rows) for status in STATUSES + ("pending",)}
    payload = {"manifest": manifest, "out": str(out_root), "counts": counts, "jobs": rows}
    atomic_write_text(out_root / REPORT_NAME, json.dumps(payload, indent=2) + "\n")


def format_table(results: list[JobResult]) -> str:
    """The per-job table printed at the end of a batch."""
    header = ("job", "status", "seconds", "error")
    rows = [(r.name, r.status + (" (resumed)" if r.resumed else ""), f"{r.seconds:.1f}", r.error or "") for r in results]
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(3)]
    lines = []
    for row in [header] + rows:
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
    return "\n".join(lines)
