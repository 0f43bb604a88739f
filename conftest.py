"""Session-wide test set-up (repo root, so it covers tests/ and the nbval runbooks)."""

import os
import tempfile


def pytest_configure(config):
    # nbval opens the sanitize file relative to the current directory when each notebook
    # starts; anchor it to the repository so nothing a test does to the cwd can break it.
    files = getattr(config.option, "nbval_sanitize_with", None)
    if files and not os.path.isabs(files):
        config.option.nbval_sanitize_with = str(config.rootpath / files)
    # The runbooks write their artifacts (and the embedded mock's state) under
    # CCKIT_RUNS_DIR: keep test runs out of the checkout. nbval's kernels inherit it.
    if "CCKIT_RUNS_DIR" not in os.environ:
        os.environ["CCKIT_RUNS_DIR"] = os.path.join(tempfile.mkdtemp(prefix="cckit-test-"), "runs")
    # Site and folder locks live in one per-user folder: the tests' own, not the user's.
    if "CCKIT_LOCK_DIR" not in os.environ:
        os.environ["CCKIT_LOCK_DIR"] = os.path.join(tempfile.mkdtemp(prefix="cckit-test-"), "locks")
