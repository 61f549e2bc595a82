"""Write a fixed set of results with the installed code, or compare two such sets bit for bit.

Used to show that a change which should not alter any number did not: write the set with the
code before the change, again after it, and compare.

    python scripts/golden.py write DIR      # runs `vbhc run` for every case into DIR/<case>
    python scripts/golden.py compare OLD NEW

``compare`` checks every NetCDF file's variables and coordinates (values, dtypes, dims and
the attrs of each variable) for exact equality, and every CSV file byte for byte. Dataset
attrs that record when and with what a file was made (``created``, ``python``,
``vbhc_model_version``) are left out, the scenario file is compared by name (the folder of the
checkout may differ); all other dataset attrs must match. Figures are not
compared (their files embed dates). Exit code 0 when everything matches, 1 otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
S = ROOT / "scenarios"

#: case name -> arguments of `vbhc run`
CASES: dict[str, list[str]] = {
    "default_base": [str(S / "chronic_pain_us.yaml")],
    "default_psa": [str(S / "chronic_pain_us.yaml"), "--draws", "2000"],
    "default_psa_chunked": [str(S / "chronic_pain_us.yaml"), "--draws", "2000",
                            "--chunk-size", "700"],
    "default_trace": [str(S / "chronic_pain_us.yaml"), "--trace"],
    "thr_base": [str(S / "reference" / "thr_dmhee.yaml")],
    "thr_psa": [str(S / "reference" / "thr_dmhee.yaml"), "--draws", "2000"],
    "pc_base": [str(S / "pain_course_au.yaml")],
    "pc_psa": [str(S / "pain_course_au.yaml"), "--draws", "2000"],
    **{f"{h}_base": [str(S / "reference" / f"{h}.yaml")]
       for h in ("hiv_chancellor_1997", "hiv_chancellor_1997_heemod",
                 "hiv_chancellor_1997_lshtm")},
}

#: Dataset attrs that say when and with what a file was written, not what it holds.
VOLATILE = {"created", "python", "vbhc_model_version"}


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    vbhc = Path(sys.executable).with_name("vbhc")
    for case, args in CASES.items():
        subprocess.run([str(vbhc), "run", *args, "--out", str(folder / case), "--force"],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"wrote {folder / case}")


def _attrs(ds) -> dict:
    """Dataset attrs to compare: the volatile ones left out, the scenario file by its name
    (a checkout in another folder writes another absolute path)."""
    out = {k: v for k, v in ds.attrs.items() if k not in VOLATILE}
    if "scenario_file" in out:
        out["scenario_file"] = Path(str(out["scenario_file"])).name
    return out


def _same_netcdf(a: Path, b: Path) -> list[str]:
    import numpy as np
    import xarray as xr

    problems = []
    with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
        x, y = x.load(), y.load()
    ax, ay = _attrs(x), _attrs(y)
    if set(ax) != set(ay) or any(not np.array_equal(np.asarray(ax[k]), np.asarray(ay[k]))
                                 for k in ax):
        problems.append(f"{b}: dataset attrs differ: "
                        f"{sorted(k for k in set(ax) | set(ay) if str(ax.get(k)) != str(ay.get(k)))}")
    names_x = set(x.variables)
    names_y = set(y.variables)
    if names_x != names_y:
        problems.append(f"{b}: variables differ: only old {sorted(names_x - names_y)}, "
                        f"only new {sorted(names_y - names_x)}")
    for name in sorted(names_x & names_y):
        vx, vy = x.variables[name], y.variables[name]
        if vx.dims != vy.dims or vx.dtype != vy.dtype:
            problems.append(f"{b}: {name}: dims/dtype {vx.dims} {vx.dtype} -> {vy.dims} {vy.dtype}")
        elif not np.array_equal(vx.values, vy.values, equal_nan=vx.dtype.kind == "f"):
            problems.append(f"{b}: {name}: values differ")
        elif vx.attrs != vy.attrs:
            problems.append(f"{b}: {name}: attrs differ")
    return problems


def compare(old: Path, new: Path) -> int:
    problems, n = [], 0
    for case in CASES:
        files = sorted(p.relative_to(old / case) for p in (old / case).rglob("*")
                       if p.is_file() and p.suffix in (".nc", ".csv"))
        if not files:
            problems.append(f"{old / case}: no results")
        for rel in files:
            a, b = old / case / rel, new / case / rel
            n += 1
            if not b.exists():
                problems.append(f"{b}: missing")
            elif rel.suffix == ".csv":
                if a.read_bytes() != b.read_bytes():
                    problems.append(f"{b}: differs from {a}")
            else:
                problems += _same_netcdf(a, b)
    for p in problems:
        print(p)
    print(f"{n} files compared: " + ("identical" if not problems else f"{len(problems)} differences"))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
