"""Mutations of scenario files, fit files and CSV tables, driven by a ``random.Random``.

The same functions serve the hypothesis tests (``st.randoms()``: hypothesis chooses, and
shrinks, every decision) and the full run (``python -m tests.fuzz.full_run``: seeded
``random.Random``), so a crash found by either is replayed by the other's seed or file.
"""

from __future__ import annotations

import random
from typing import Any

import yaml

#: Values swapped in for a leaf: wrong types, extreme and not-finite numbers, lookalikes,
#: long and nested values.
HOSTILE = [
    "text", "", " ", None, True, False, [], {}, [1, 2], {"a": 1},
    0, -1, 1, 2, 0.5, -0.5, 1e308, -1e308, 1e-320, 1e999, -1e999, float("nan"),
    "nan", ".nan", "inf", "-inf", ".inf", "1e999", "0x10", "0o7", "0b1", "1_000", "1e-1",
    "10%", "1,5", "１", "ｐ_sick", "p\u200b", "\u202ecost", "é", "💥", "\x00", "a" * 3000,
    "1/0", "log(0)", "exp(1000)", "9**9**9", "__import__('os')", "cycle", "complement",
    "where(", "-", "1 +", 123456789012345678901234567890,
]
#: How far a value may be nested by the "deep" mutation.
DEPTHS = [5, 50, 400]


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a node of a YAML tree (the root is ``()``)."""
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, path + (i,))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _nested(value: Any, depth: int, rng: random.Random) -> Any:
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"k": value}
    return value


def mutate_data(data: Any, rng: random.Random) -> Any:
    """One structural mutation of a parsed YAML tree (in place where it can)."""
    paths = _paths(data)
    path = rng.choice(paths)
    node = _get(data, path)
    op = rng.choice(["delete", "retype", "number", "empty", "rename", "unicode_key", "deep",
                     "copy", "list"])
    parent = _get(data, path[:-1]) if path else None
    if op == "delete" and path and isinstance(parent, (dict, list)):
        del parent[path[-1]]
        return data
    if op == "number":  # a numeric leaf, if there is one
        numeric = [p for p in paths if isinstance(_get(data, p), (int, float))
                   and not isinstance(_get(data, p), bool)]
        if numeric:
            path = rng.choice(numeric)
        return _set(data, path, rng.choice(HOSTILE[10:32] + ["x", None]))
    if op == "empty":
        return _set(data, path, rng.choice([{}, [], None, ""]))
    if op in ("rename", "unicode_key") and path and isinstance(parent, dict):
        key = path[-1]
        new = (str(key) + rng.choice(["_", "s", "X", "\u200b", "ｘ"]) if op == "rename"
               else rng.choice(["ｐ", "é", "💥", "\u202e"]) + str(key)[1:])
        parent[new] = parent.pop(key)
        return data
    if op == "deep":
        return _set(data, path, _nested(node, rng.choice(DEPTHS), rng))
    if op == "copy":  # another part of the file in this place
        return _set(data, path, yaml.safe_load(yaml.safe_dump(_get(data, rng.choice(paths)))))
    if op == "list":
        return _set(data, path, [node] * rng.choice([0, 2, 3]))
    return _set(data, path, rng.choice(HOSTILE))


def mutate_text(text: str, rng: random.Random) -> str:
    """One line-level mutation: duplicated keys, lost lines, tabs, a cut file, odd bytes."""
    lines = text.splitlines(keepends=True) or ["\n"]
    i = rng.randrange(len(lines))
    op = rng.choice(["duplicate", "delete", "tab", "truncate", "swap", "indent", "bom", "crlf"])
    if op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "delete":
        del lines[i]
    elif op == "tab":
        lines[i] = "\t" + lines[i]
    elif op == "truncate":
        return text[: rng.randrange(len(text) + 1)]
    elif op == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "indent":
        lines[i] = " " * rng.choice([1, 3]) + lines[i]
    elif op == "bom":
        return "\ufeff" + text
    else:
        return text.replace("\n", "\r\n")
    return "".join(lines)


def _dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    except (yaml.YAMLError, RecursionError, ValueError):
        return "{}\n"


def yaml_mutant(text: str, rng: random.Random) -> str:
    """A mutant of a YAML file: 1-3 structural mutations, sometimes a line-level one."""
    data = yaml.safe_load(text)
    for _ in range(rng.choice([1, 1, 2, 3])):
        data = mutate_data(data, rng)
    out = _dump(data)
    return mutate_text(out, rng) if rng.random() < 0.25 else out


def csv_mutant(text: str, rng: random.Random) -> str:
    """A mutant of a CSV table: ragged rows, other separators and decimals, odd cells."""
    lines = text.splitlines()
    op = rng.choice(["trailing_comma", "drop_field", "semicolon", "decimal_comma", "cell",
                     "row_names", "blank_rows", "no_header", "dup_header", "quote", "bom_crlf",
                     "truncate", "header_only", "unicode_header", "only_lines"])
    i = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
    if op == "trailing_comma":
        lines = [lines[0]] + [ln + "," for ln in lines[1:]]
    elif op == "drop_field":
        lines[i] = lines[i].rsplit(",", 1)[0]
    elif op == "semicolon":
        lines = [ln.replace(",", ";") for ln in lines]
    elif op == "decimal_comma":
        lines = [ln.replace(",", ";").replace(".", ",") for ln in lines]
    elif op == "cell":
        cells = lines[i].split(",")
        j = rng.randrange(len(cells))
        cells[j] = str(rng.choice(["NA", "nan", "inf", "-inf", "1e999", "0x10", "", " ", "x",
                                   "1e308", "-1e308", "１", '"', "1,5", "TRUE", "a" * 5000]))
        lines[i] = ",".join(cells)
    elif op == "row_names":
        lines = ['""' + "," + lines[0]] + [f'"{k}",{ln}' for k, ln in enumerate(lines[1:], 1)]
    elif op == "blank_rows":
        lines.insert(i, rng.choice(["", ",,,", " "]))
    elif op == "no_header":
        lines = lines[1:]
    elif op == "dup_header":
        head = lines[0].split(",")
        head[-1] = head[0]
        lines[0] = ",".join(head)
    elif op == "quote":
        lines[i] = '"' + lines[i]
    elif op == "bom_crlf":
        return "\ufeff" + "\r\n".join(lines) + "\r\n"
    elif op == "truncate":
        joined = "\n".join(lines)
        return joined[: rng.randrange(len(joined) + 1)]
    elif op == "header_only":
        lines = lines[:1]
    elif op == "unicode_header":
        head = lines[0].split(",")
        j = rng.randrange(len(head))
        head[j] = rng.choice(["ｃost", "cost\u200b", "💥", ""]) + head[j][1:]
        lines[0] = ",".join(head)
    else:
        lines = lines[: rng.choice([1, 2, 3])]
    return "\n".join(lines) + "\n"
