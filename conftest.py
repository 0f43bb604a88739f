"""Session-wide test set-up (repo root, so it covers tests/ and the nbval runbooks)."""

import os
import tempfile


def pytest_configure(config):
    # The runbooks write their artifacts (and the embedded mock's state) under
    # CCKIT_RUNS_DIR: keep test runs out of the checkout. nbval's kernels inherit it.
    if "CCKIT_RUNS_DIR" not in os.environ:
        os.environ["CCKIT_RUNS_DIR"] = os.path.join(tempfile.mkdtemp(prefix="cckit-test-"), "runs")
