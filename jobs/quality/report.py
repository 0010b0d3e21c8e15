"""Markdown tables for the reports people read in a pull request: evaluation, gold agreement."""

from __future__ import annotations


def markdown_table(title: str, header: list[str], align: str, rows: list[list[object]]) -> str:
    """A titled Markdown table; `align` has one letter per column, `l` or `r`."""
    marks = {"l": "---", "r": "---:"}
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |",
             "| " + " | ".join(marks[a] for a in align) + " |"]  # fmt: skip
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
