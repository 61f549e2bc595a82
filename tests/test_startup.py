"""Start-up: what each command imports (not how long it takes; benchmarks/startup.py times it).

Heavy libraries are imported where they are used: scipy.stats by sampling, matplotlib by
figures (in the figure helper process), dask and distributed by scale-out and multi-chunk
PSAs, pymc by fitting, numba by the microsimulation's kernels. Each command runs in a fresh
interpreter and reports ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THR = ROOT / "scenarios" / "reference" / "thr_dmhee.yaml"

#: Never imported by a (cohort) base case, ``validate`` or a one-chunk PSA's main process;
#: numba only by a microsimulation (engines/microsim_kernel.py).
HEAVY = ("scipy.stats", "scipy.optimize", "scipy.sparse", "matplotlib", "dask", "distributed",
         "pymc", "pytensor", "arviz", "numba", "llvmlite")
#: Not imported by ``vbhc --help``.
NUMERIC = ("numpy", "xarray", "pandas", "scipy", "pydantic", "yaml", "h5py", "h5netcdf",
           "threadpoolctl", *HEAVY)


def imported(*args: str, watch: tuple[str, ...]) -> list[str]:
    """Run ``vbhc ARGS`` in a fresh interpreter; the modules of ``watch`` it imported."""
    code = (
        "import json, sys\nfrom vbhc_model.cli import app\n"
        f"try:\n    app({list(args)!r})\nexcept SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"print(json.dumps([m for m in {list(watch)!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return json.loads(out.splitlines()[-1])


def test_help_imports_no_numeric_library():
    assert imported("--help", watch=NUMERIC) == []


def test_validate_imports_no_heavy_library():
    assert imported("validate", str(THR), watch=HEAVY) == []


def test_base_case_imports_no_heavy_library(tmp_path):
    assert imported("run", str(THR), "--out", str(tmp_path / "thr"), watch=HEAVY) == []


def test_one_chunk_psa_imports_neither_dask_nor_matplotlib(tmp_path):
    """scipy.stats samples; the figures are drawn in the helper process."""
    got = imported("run", "--draws", "50", "--out", str(tmp_path / "psa"),
                   watch=("scipy.stats", "matplotlib", "dask", "distributed", "pymc", "numba"))
    assert got == ["scipy.stats"]


def test_xarray_still_knows_dask_once_imported(tmp_path):
    """vbhc_model.lazy_dask: xarray sees no dask until dask is imported, then all of it."""
    code = (
        "import sys\nimport numpy as np\nimport xarray as xr\nimport vbhc_model.lazy_dask\nvbhc_model.lazy_dask.install()\n"
        f"p = r'{tmp_path / 'a.nc'}'\n"
        "xr.Dataset({'a': ('x', np.arange(4.0))}).to_netcdf(p, engine='h5netcdf')\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules\n"
        "import dask.array as da\n"
        "lazy = xr.DataArray(da.arange(4.0, chunks=2), dims='x')\n"
        "assert lazy.chunks == ((2, 2),), lazy.chunks\n"
        "with xr.open_dataset(p, engine='h5netcdf', chunks={'x': 2}) as ds:\n"
        "    assert ds['a'].chunks == ((2, 2),)\n"
        "    assert float(ds['a'].sum().compute()) == 6.0\n"
        "    ds.to_netcdf(p + '2', engine='h5netcdf')\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_z975_is_scipys():
    stats = pytest.importorskip("scipy.stats")
    from vbhc_model.distributions import Z975

    assert Z975 == float(stats.norm.ppf(0.975))


def test_importing_vbhc_model_leaves_xarray_as_it_is():
    """The xarray change is the entry point's to make (vbhc_model.lazy_dask.install)."""
    code = ("import xarray.backends.locks as locks\nold = locks.get_dask_scheduler\n"
            "import vbhc_model.api, vbhc_model.parameters.draws, vbhc_model.report.files\n"
            "assert locks.get_dask_scheduler is old\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_figure_helper_is_forked_before_the_runs_imports(tmp_path):
    """Forked while the command is single-threaded (a spawned helper would import numpy,
    xarray and matplotlib again, on the cores the PSA uses)."""
    code = (
        "import json\nfrom vbhc_model.report import render\nmethods = []\n"
        "init = render.Renderer.__init__\n"
        "def record(self, *a, **k):\n    init(self, *a, **k)\n    methods.append(self.method)\n"
        "render.Renderer.__init__ = record\nfrom vbhc_model.cli import app\n"
        f"try:\n    app(['run', r'{THR}', '--draws', '20', '--out', r'{tmp_path / 'o'}'])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(json.dumps(methods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(out.stdout.splitlines()[-1]) == ["fork"], out.stderr
