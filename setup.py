"""Ship the runbooks inside the package.

``runbooks/*.ipynb`` at the top of the repository is the only copy of the notebooks. A built
wheel (and a wheel built from the sdist, which carries them via MANIFEST.in) gets them as
``cckit/_runbooks/``, where :func:`cckit.scenarios.runbooks_dir` finds them. An editable
install copies nothing: it reads the checkout's ``runbooks/``, so an edited notebook counts.
Everything else about the package is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
PACKAGED = Path("cckit", "_runbooks")


class build_py_with_runbooks(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        for src, dst in self._runbooks():
            self.mkpath(str(dst.parent))
            self.copy_file(str(src), str(dst))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [str(dst) for _, dst in self._runbooks()]

    def _runbooks(self):
        notebooks = sorted(RUNBOOKS.glob("*.ipynb"))
        if not notebooks:
            raise SystemExit(f"no runbooks/*.ipynb in {RUNBOOKS.parent}: cannot build cckit")
        return [(nb, Path(self.build_lib, PACKAGED, nb.name)) for nb in notebooks]


setup(cmdclass={"build_py": build_py_with_runbooks})
