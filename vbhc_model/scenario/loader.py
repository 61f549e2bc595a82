"""Scenario file -> :class:`Scenario`: YAML parsing, schema validation and clear messages.

Every problem becomes an :class:`~vbhc_model.errors.Issue` naming the file, the key path and,
where the YAML tells it, the line; all issues of a file are reported at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from vbhc_model.errors import Issue, ScenarioError
from vbhc_model.scenario.checks import check_scenario
from vbhc_model.scenario.schema import Scenario
from vbhc_model.suggest import did_you_mean

Path_ = tuple[str | int, ...]

MAX_FILE_BYTES = 5_000_000


@dataclass(frozen=True)
class Source:
    """Where a scenario came from: its file, SHA-256 and the line of each key path."""

    file: str
    sha256: str
    lines: dict[Path_, int] = field(default_factory=dict, repr=False)
    text: str = field(default="", repr=False)  # the YAML, to rebuild the scenario elsewhere

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def issue(self, path: Path_, message: str, draw: int | None = None) -> Issue:
        """An :class:`Issue` at ``path`` in this file (of parameter draw ``draw``, if a
        numeric check of one draw failed)."""
        return Issue(self.file, format_path(path), message, self.line(path), draw)


def format_path(path: Path_) -> str:
    """``('states', 'A', 'tunnel')`` -> ``'states.A.tunnel'``; list indices as ``[i]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


#: YAML 1.1 integers that are not decimal: hexadecimal, octal (``0o17`` and ``017``), binary
#: and base 60 (``1:30`` is 90). A scenario's numbers are decimal; these are refused.
_ODD_INT = re.compile(r"[-+]?(0[xX]|0[oO]|0[bB]|0[0-7_]+$|[0-9][0-9_]*(:[0-5]?[0-9])+$)")
_INT_KINDS = {"x": "hexadecimal", "o": "octal", "b": "binary"}

#: Numbers with an exponent but no dot (``1e-1``, ``2E5``) or no exponent sign (``1.5e5``):
#: YAML 1.1 reads them as text, YAML 1.2 (and a reader's eye) as numbers; so do we.
_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _loaders() -> tuple[type, type | None]:
    """SafeLoader (and libyaml's CSafeLoader, if PyYAML has it) reading ``1e-1`` as a number;
    subclasses, so PyYAML's own loaders are left as they are for every other user."""
    out = []
    for base in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", None)):
        if base is None:
            out.append(None)
            continue
        cls = type(f"Vbhc{base.__name__}", (base,), {})
        cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))
        out.append(cls)
    return out[0], out[1]


_SAFE_LOADER, _FAST_LOADER = _loaders()


def _odd_number(node: yaml.ScalarNode) -> str | None:
    """Why a plain integer that is not decimal is refused, or None."""
    if node.tag != "tag:yaml.org,2002:int" or node.style or not _ODD_INT.match(node.value):
        return None
    value = yaml.SafeLoader(node.value).get_single_data()  # what YAML 1.1 makes of it
    text = node.value.lstrip("+-")
    if ":" in text:
        kind = "a base-60 number (YAML 1.1)"
    else:
        kind = f"a {_INT_KINDS.get(text[1:2].lower(), 'octal')} number"
    return (f"{node.value!r} is {kind}, which YAML reads as {value}; write numbers in decimal "
            f"(or quote it if it is text)")


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[tuple]) -> None:
    """Record the line of every key path, and find duplicate or non-text keys and numbers
    that are not decimal."""
    if isinstance(node, yaml.ScalarNode):
        why = _odd_number(node)
        if why:
            problems.append((path, why, node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *defaults' (YAML merge key)
                continue
            if key_node.tag != "tag:yaml.org,2002:str":
                hint = (
                    " (YAML reads yes/no/on/off/true/false as booleans and bare numbers as "
                    "numbers: quote the key)"
                )
                if key_node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
                    hint += (
                        "; if it came from an expression with commas inside { ... }, quote the "
                        "expression or write the mapping on separate lines"
                    )
                problems.append((path + (key,), f"key {key!r} is not text{hint}", line))
            if key in seen:
                problems.append(
                    (path + (key,), f"duplicate key '{key}' (first at line {seen[key]})", line)
                )
            seen.setdefault(key, line)
            lines.setdefault(path + (key,), line)
            _walk(value_node, path + (key,), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault(path + (i,), item.start_mark.line + 1)
            _walk(item, path + (i,), lines, problems)
            if i and _thousands(node.value[i - 1], item):
                a, b = node.value[i - 1].value, item.value
                problems.append((path + (i - 1,), f"'{a},{b}' reads as two numbers, {a} and "
                                 f"{b}: write numbers without thousands separators ({a}{b})",
                                 item.start_mark.line + 1))


def _thousands(prev: yaml.Node, item: yaml.Node) -> bool:
    """``[20,000]``: a number, a comma with no space, then three digits."""
    return (isinstance(prev, yaml.ScalarNode) and isinstance(item, yaml.ScalarNode)
            and not prev.style and not item.style  # plain: None (Python parser) or "" (libyaml)
            and re.fullmatch(r"\d{1,3}", prev.value) is not None
            and re.fullmatch(r"\d{3}", item.value) is not None
            and prev.end_mark.index + 1 == item.start_mark.index)


MAX_NESTING = 100
#: YAML aliases (*name) may repeat an anchored value; past this many entries it is refused.
MAX_EXPANDED = 100_000


def _deepest_line(text: str) -> int | None:
    """The first line where brackets nest more than MAX_NESTING deep."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for ch in line:
            depth += ch in "[{"
            depth -= ch in "]}"
            if depth > MAX_NESTING:
                return number
    return None


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse aliases that repeat anchored values into a huge document (an "alias bomb")."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key not in sizes:
            sizes[key] = 1  # guards against a node that contains itself
            children = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            sizes[key] = 1 + sum(size(c) for c in children)
        return sizes[key]

    if size(root) <= MAX_EXPANDED:
        return
    # Report the top-level entry that grows too large.
    path: tuple = ()
    line = root.start_mark.line + 1
    node = root
    while isinstance(node, yaml.MappingNode):
        big = [(k, v) for k, v in node.value if size(v) > MAX_EXPANDED]
        if not big:
            break
        k, node = big[0]
        path += (k.value,)
        line = k.start_mark.line + 1
    raise ScenarioError([Issue(file, format_path(path),
                               f"YAML aliases (*name) expand this value to {size(node):,} "
                               f"entries; the limit is {MAX_EXPANDED:,}", line)])


@contextlib.contextmanager
def _yaml_errors(text: str, file: str):
    """YAML that cannot be read, as a located ScenarioError."""
    try:
        yield
    except RecursionError:
        raise ScenarioError(
            [Issue(file, "", f"not valid YAML: nested too deeply (more than "
                             f"{MAX_NESTING} levels of brackets or indentation)",
                   _deepest_line(text))]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError([Issue(file, "", f"not valid YAML: {problem}", line)]) from None


def read_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text, returning the data and the line of each key path.

    Raises
    ------
    ScenarioError
        Not YAML, duplicate keys, or keys that are not text.
    """
    # One parse: the nodes (for lines and checks), then the data built from them, as
    # yaml.safe_load would (it composes the same nodes and constructs them). libyaml's parser
    # (C) when PyYAML has it: a tenth of the time; a text it refuses is parsed again by the
    # pure-Python one, whose messages the corpus of bad scenarios pins.
    fast = _FAST_LOADER
    if fast is not None:
        loader = fast(text)
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:
            node = None
            fast = None
        finally:
            if fast is None:
                loader.dispose()
    loader = loader if fast is not None else _SAFE_LOADER(text)
    try:
        with _yaml_errors(text, file):
            if fast is None:
                node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, file)
        lines: dict[Path_, int] = {}
        problems: list[tuple] = []
        if node is not None:  # before construction, which expands merge keys in the nodes
            _walk(node, (), lines, problems)
        with _yaml_errors(text, file):
            data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    if problems:
        raise ScenarioError([Issue(file, format_path(p), m, ln) for p, m, ln in problems])
    return data, lines


def _model_at(loc: Path_) -> type[BaseModel] | None:
    """The pydantic model class that owns the last key of ``loc`` (for typo suggestions)."""
    model: Any = Scenario
    for part in loc[:-1]:
        if model is None:
            return None
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            # A key of a dict field, or a list index: step into the value type.
            continue
        model = _inner_model(info.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as ``dict[str, State] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def validation_message(err: dict) -> str:
    """A pydantic error (one of ``ValidationError.errors()``) as a message for users: what is
    wrong at that key, with a "did you mean" where it helps."""
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind == "extra_forbidden":
        model = _model_at(loc)
        valid = [f.alias or n for n, f in model.model_fields.items()] if model else []
        hint = did_you_mean(loc[-1], valid)
        if not hint and valid:
            hint = f" (valid keys: {', '.join(valid)})"
        return f"unknown key '{loc[-1]}'{hint}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",")]
        return f"must be one of {expected}; got {value!r}{did_you_mean(value, options)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping of keys to values, got {_describe(value)}"
    if kind == "list_type":
        return f"expected a list, got {_describe(value)}"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        want = "a whole number" if kind.startswith("int") else "a number"
        return f"expected {want}, got {_describe(value)}"
    if kind in ("string_type",):
        return f"expected text, got {_describe(value)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {_describe(value)}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    msg = str(err["msg"])
    return f"{msg[:1].lower()}{msg[1:]}, got {_describe(value)}"


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (an empty value)"
    return f"{value!r} ({type(value).__name__})"


def parse_scenario(data: Any, source: Source) -> Scenario:
    """Validate parsed YAML data against the schema and the whole-file checks.

    Raises
    ------
    ScenarioError
        With one issue per problem found.
    """
    # Imported here: checks needs the schema types, and the schema must not import checks.
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(
            [Issue(source.file, "", f"a scenario must be a mapping of sections, but the file is {what}")]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not _is_pydantic_tag(p))
            issues.append(source.issue(loc, validation_message(err)))
        raise ScenarioError(issues) from None
    scenario._source = source
    issues = check_scenario(scenario)
    if issues:
        raise ScenarioError(issues)
    return scenario


def _is_pydantic_tag(part: Any) -> bool:
    # Pydantic puts validator names into error locations, e.g. 'function-plain[...]'.
    return isinstance(part, str) and ("[" in part and part.endswith("]"))


def scenario_from_text(text: str, file: str) -> Scenario:
    """Parse and validate a scenario from its YAML text (e.g. on a dask worker)."""
    data, lines = read_yaml(text, file)
    raw = text.encode("utf-8")
    source = Source(file=file, sha256=hashlib.sha256(raw).hexdigest(), lines=lines, text=text)
    return parse_scenario(data, source)


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate a scenario file.

    Parameters
    ----------
    path : str or Path
        A YAML scenario file.

    Returns
    -------
    Scenario
        The validated scenario; ``scenario.source`` holds the file name, SHA-256 and lines.

    Raises
    ------
    ScenarioError
        For every problem in the file, each naming the file, key path and line.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> scenario = load_scenario(default_scenario_path())
    >>> list(scenario.strategies)[0]
    'usual_care'
    """
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError([Issue(file, "", "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError([Issue(file, "", "is a directory, not a scenario file")]) from None
    except OSError as exc:
        raise ScenarioError([Issue(file, "", f"cannot be read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError([Issue(file, "", f"is {len(raw):,} bytes; the limit is {MAX_FILE_BYTES:,}")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([Issue(file, "", f"is not UTF-8 text (byte {exc.start})")]) from None
    data, lines = read_yaml(text, file)
    source = Source(file=file, sha256=hashlib.sha256(raw).hexdigest(), lines=lines, text=text)
    return parse_scenario(data, source)
