"""Compatibility names for ``chaos.runner`` (benchmarks import them): the runner is now split
into :mod:`chaos.drivers` (traffic), :mod:`chaos.jobs` (jobs and their checks) and
:mod:`chaos.trace_file` (``--traces``)."""

from __future__ import annotations

from .jobs import DEFAULT_SEED, Job, JobResult, derive_seed, execute, run_jobs, sample_size

__all__ = ["DEFAULT_SEED", "Job", "JobResult", "derive_seed", "execute", "run_jobs", "sample_size"]
