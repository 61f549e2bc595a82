"""What pyproject.toml cannot say: the top-level scenarios/ folder ships inside the package.

A regular build (wheel, sdist) maps scenarios/ to the package ``vbhc_model.scenarios``, so a
wheel installs it as ``vbhc_model/scenarios/`` with the files pyproject.toml's package-data
lists. The mapping is made in build_py alone: declared in ``package-dir``, it would turn every
editable install into an import hook. An editable install (or a plain checkout) reads
scenarios/ where it is; ``vbhc_model.scenario.scenarios_dir`` finds either.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithScenarios(build_py):
    def finalize_options(self):
        super().finalize_options()
        # Its subfolders (fits/, reference/, ...) are packages too, or setuptools warns that
        # data would be ignored; they resolve to scenarios/<subfolder> through the parent.
        folders = sorted(p for p in Path("scenarios").rglob("*")
                         if p.is_dir() and p.name != "__pycache__")
        names = ["vbhc_model.scenarios",
                 *(".".join(("vbhc_model", *p.parts)) for p in folders)]
        self.packages = [*self.packages, *(n for n in names if n not in self.packages)]
        self.package_dir = {**self.package_dir, "vbhc_model.scenarios": "scenarios"}


setup(cmdclass={"build_py": BuildPyWithScenarios})
