"""``vbhc init``: a shipped scenario copied with the files it uses, so that it travels.

A scenario names its posteriors, tables of samples, patient tables and uniforms by paths
relative to its own file; copied alone it loses them. :func:`copy_scenario` copies the
scenario and every such file (and the fit files that made its posteriors) into a new folder,
at the same relative paths. Files named ``package:NAME`` or by an absolute path are left as
they are: they are found wherever the scenario is.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from vbhc_model.errors import VbhcError
from vbhc_model.readers.posterior import PACKAGE_PREFIX

#: A scenario's name is its file's stem: letters, digits, ``_`` and ``-``.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*$")


def shipped_scenario(source: str | Path | None) -> Path:
    """The scenario file ``vbhc init --from`` names: a shipped scenario by name
    (``pain_course_au``, ``reference/thr_dmhee``, with or without ``.yaml``) or a file."""
    from vbhc_model.scenario import default_scenario_path, scenarios_dir

    if source is None:
        return default_scenario_path()
    path = Path(source)
    if path.is_file():
        return path
    shipped = scenarios_dir() / (path if path.suffix == ".yaml" else path.with_suffix(".yaml"))
    if shipped.is_file():
        return shipped
    names = sorted(p.relative_to(scenarios_dir()).with_suffix("").as_posix()
                   for p in scenarios_dir().glob("*.yaml")) + sorted(
        p.relative_to(scenarios_dir()).with_suffix("").as_posix()
        for sub in ("reference", "validation") for p in (scenarios_dir() / sub).glob("*.yaml"))
    raise VbhcError(f"--from {source}: no such scenario file, nor a shipped scenario of that "
                    f"name (shipped: {', '.join(names)})")


#: The keys whose values are paths: in a scenario, and in a fit file.
SCENARIO_KEYS = ("file", "uniforms")
FIT_KEYS = ("file", "data", "model")


def referenced_files(data: object, keys: tuple[str, ...] = SCENARIO_KEYS) -> list[str]:
    """Every path a scenario's YAML (or a fit file's, with ``keys=FIT_KEYS``) names by a
    relative path: the string values of those keys, in the order they appear, each once.

    Examples
    --------
    >>> referenced_files({"parameters": {"a": {"posterior": {"file": "fits/x.nc"}},
    ...                   "b": {"samples": {"file": "/abs/y.csv"}}},
    ...                   "settings": {"uniforms": "u.npy"}, "c": {"file": "package:z.nc"}})
    ['fits/x.nc', 'u.npy']
    """
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys and isinstance(value, str):
                    if (not value.startswith(PACKAGE_PREFIX) and not Path(value).is_absolute()
                            and value not in found):
                        found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


def copy_scenario(name: str, source: str | Path | None = None,
                  folder: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Copy a scenario and the files it uses into ``folder`` [``./NAME/``] as ``NAME.yaml``
    (:func:`vbhc_model.api.init_scenario`). Written atomically: the folder appears complete
    or not at all.

    Raises
    ------
    VbhcError
        A bad name, an unknown source, a folder that exists and is not empty, a referenced
        file outside the scenario's folder or missing.
    """
    if not _NAME.match(name):
        raise VbhcError(f"{name!r}: a scenario name is letters, digits, '_' and '-' (it "
                        "becomes NAME.yaml and the results folder results/NAME/)")
    src = shipped_scenario(source)
    target = Path(folder) if folder is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise VbhcError(f"{target}: already exists and is not an empty folder; choose "
                        "another --dir (nothing was copied)")
    try:
        data = yaml.safe_load(src.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise VbhcError(f"{src}: cannot read it as a scenario file ({exc})") from None
    files = _with_fit_files(referenced_files(data), src.parent)
    for rel in files:
        if ".." in Path(rel).parts:
            raise VbhcError(f"{src}: names {rel!r}, outside its folder; copy the scenario "
                            "and that file yourself and point 'file:' at the copy")
        if not (src.parent / rel).is_file():
            raise VbhcError(f"{src}: names {rel!r}, which is not there (looked for "
                            f"{src.parent / rel})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        shutil.copyfile(src, tmp / f"{name}.yaml")
        for rel in files:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src.parent / rel, tmp / rel)
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / f"{name}.yaml", [target / rel for rel in files]


def _with_fit_files(files: list[str], folder: Path) -> list[str]:
    """``files`` and, for each posterior ``x.nc``, its fit file ``x.yaml`` if there (so that
    the copy can be refitted), with the files that fit file names."""
    out = list(files)
    for rel in files:
        fit = Path(rel).with_suffix(".yaml")
        if rel.endswith(".nc") and (folder / fit).is_file() and fit.as_posix() not in out:
            out.append(fit.as_posix())
            try:
                spec = yaml.safe_load((folder / fit).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            out += [(fit.parent / r).as_posix() for r in referenced_files(spec, FIT_KEYS)
                    if (fit.parent / r).as_posix() not in out]
    return out
