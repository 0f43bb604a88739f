"""Session-wide test set-up (repo root, so it covers tests/ and the nbval runbooks)."""

import os
import sys
import tempfile

import pytest


def _own_folder(variable: str, leaf: str) -> None:
    """A folder of this test process's own under ``variable``: a fresh one unless the user
    set it, and one per pytest-xdist worker (``<folder>/<worker>/<leaf>``: its runs and locks
    never meet another worker's, and the path still ends in ``runs/`` for the goldens)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = os.environ.get(variable)
    if not base:
        base = os.environ[variable] = os.path.join(tempfile.mkdtemp(prefix="cckit-test-"), leaf)
    if worker and os.environ.get(f"{variable}_WORKER") != worker:
        os.environ[variable] = os.path.join(base, worker, leaf)
        os.environ[f"{variable}_WORKER"] = worker


def pytest_configure(config):
    # The suite starts hundreds of Python processes (kernels, cckit commands, pytest-xdist's
    # workers): with PYTHONDONTWRITEBYTECODE set (CI images often set it) each one compiled
    # cckit's sources anew, ~0.2-0.5 CPU-s a process. Cached bytecode is safe to share.
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        sys.dont_write_bytecode = False
    # nbval opens the sanitize file relative to the current directory when each notebook
    # starts; anchor it to the repository so nothing a test does to the cwd can break it.
    files = getattr(config.option, "nbval_sanitize_with", None)
    if files and not os.path.isabs(files):
        config.option.nbval_sanitize_with = str(config.rootpath / files)
    # The runbooks write their artifacts (and the embedded mock's state) under
    # CCKIT_RUNS_DIR: keep test runs out of the checkout. nbval's kernels inherit it.
    _own_folder("CCKIT_RUNS_DIR", "runs")
    # Site and folder locks live in one per-user folder: the tests' own, not the user's.
    _own_folder("CCKIT_LOCK_DIR", "locks")


#: test modules whose tests share an expensive module-scoped fixture: under pytest-xdist they
#: run on one worker, so the fixture is built once, not once per worker
ONE_WORKER = {
    "tests/test_sweep.py": "a seeded fleet of mock sites swept twice",
    "tests/test_autopilot.py": "six mock sites seeded expiring",
    "tests/test_acme.py": "pebble and a mock site",
    "tests/test_renew_acme.py": "pebble",
}


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the tests marked ``slow`` start first (a stable sort: a module's
    and a golden notebook's order is kept): a long test started last would run alone on one
    worker at the end while the others sit idle."""
    if getattr(config.option, "numprocesses", None):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (``make test`` runs ``-n 4``): every test is its own unit of work,
    except a golden notebook's cells, which run in order in one kernel, and the modules in
    :data:`ONE_WORKER`; each of those goes to one worker whole. (pytest-xdist's own
    ``loadgroup`` cannot group them on pytest 9.2: it rewrites a node id attribute that
    pytest no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(".ipynb") or path in ONE_WORKER else nodeid

    return Grouped(config, log)
