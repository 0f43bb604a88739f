"""Where many independent jobs run: threads on this machine, or an existing Dask cluster.

A seam shared by ``cckit batch`` (one runbook run per site) and the fleet inventory (one
read-only sweep per site); neither imports the other. ``local`` (the default) is a thread
pool; ``dask://HOST:PORT`` a ``distributed`` client (the ``dask`` extra).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .errors import InputError, MissingDependency

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "make_executor"]


class Executor(Protocol):
    """Where jobs execute. A caller keeps at most ``concurrency`` jobs in flight, so a job
    not yet submitted is simply never started when the caller is interrupted."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        """Block until at least one of ``futures`` is done; return those done."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Threads on this machine (a batch's runs are kernel processes of their own)."""

    def __init__(self, concurrency: int) -> None:
        self.pool = cf.ThreadPoolExecutor(max_workers=concurrency,
                                          thread_name_prefix="cckit-jobs")

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> cf.Future:
        return self.pool.submit(fn, *args, **kwargs)

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        return set(cf.wait(futures, return_when=cf.FIRST_COMPLETED).done)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """An existing Dask cluster (``distributed``). Workers need cckit installed and the site
    files and output folder on a path they share with this machine."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise MissingDependency("the Dask executor", "distributed", "'cckit[dask]'") from None
        self.client = Client(address, timeout="30s")

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, **kwargs)

    def wait_any(self, futures: Sequence[Any]) -> set[Any]:
        from distributed import wait

        return set(wait(list(futures), return_when="FIRST_COMPLETED").done)

    def close(self) -> None:
        self.client.close()


def make_executor(spec: str | None, concurrency: int) -> Executor:
    if not spec or spec == "local":
        return LocalExecutor(concurrency)
    if spec.startswith("dask://"):
        return DaskExecutor("tcp://" + spec[len("dask://"):])
    raise InputError(f"unknown executor {spec!r}", hint="use local or dask://HOST:PORT")
