"""HTML pieces of the report: escaped text, numbers, tables with captions and header cells,
and SVG figures inline (with a <title> for screen readers)."""

from __future__ import annotations

import html
import math
import re

__all__ = ["esc", "html_table", "inline_svg", "num"]


def esc(x) -> str:
    """``x`` as HTML text."""
    return html.escape(str(x))


def num(x, digits: int = 0) -> str:
    """A number with thousands separators (empty for NaN; text as it is)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return esc(x)
    return "" if math.isnan(v) else f"{v:,.{digits}f}"


def html_table(caption: str, header: list[str], rows: list[list[str]], text_cols=(0,)) -> str:
    """An HTML table with a caption and column headers (already escaped cells); the first
    cell of a row is its header."""
    head = "".join(f'<th scope="col" class="{"t" if i in text_cols else ""}">{esc(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(
            (f'<th scope="row" class="t">{c}</th>' if i == 0 else
             f'<td class="{"t" if i in text_cols else ""}">{c}</td>')
            for i, c in enumerate(r)) + "</tr>" for r in rows)
    return (f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def inline_svg(text: str, title: str) -> str:
    """SVG text for inlining: without its XML prolog, with a <title> for screen readers."""
    text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    return re.sub(r"(<svg\b[^>]*>)", lambda m: f'{m.group(1)}<title>{esc(title)}</title>',
                  text, count=1)
