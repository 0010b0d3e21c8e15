"""Contract review: every change between two declared catalogs, classified by a named rule.

A signal version is a promise to its consumers. Within one `name@version` a change is:

- **breaking** when a consumer's reads or stored history can stop matching the promise (a column
  or signal gone, a type, key or extractor changed, a check tightened). It needs a new major
  version: `name@<n+1>` is a new table and feature view, and `name@<n>` keeps serving.
- **compatible** when every old reader and every stored row still fit (a new optional column, a
  check loosened, a new signal).
- **metadata** when only what people read changed (description, owner, tags, consumers).

Each rule has a name and one line of documentation, like buf's breaking-change rules, so a failed
gate says which rule fired and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    BREAKING = "breaking"
    COMPATIBLE = "compatible"
    METADATA = "metadata"


@dataclass(frozen=True)
class Rule:
    """A kind of change, how severe it is, and why."""

    name: str
    severity: Severity
    doc: str


def _rules(severity: Severity, *pairs: tuple[str, str]) -> dict[str, Rule]:
    return {name: Rule(name, severity, doc) for name, doc in pairs}


RULES: dict[str, Rule] = {
    **_rules(
        Severity.BREAKING,
        (
            "signal-removed",
            "A signal version consumers read is gone: their feature references fail.",
        ),
        ("column-removed", "A feature consumers read is gone from the table and the feature view."),
        ("column-type-changed", "A feature's type changed: readers decode it as the old type."),
        ("column-made-required", "A nullable feature became required: stored rows may hold nulls."),
        (
            "required-column-added",
            "A new required feature: rows stored under this version lack it.",
        ),
        ("range-narrowed", "A bound was added or tightened: stored values may fall outside it."),
        ("allowed-values-removed", "Allowed values were removed: stored rows may hold them."),
        ("embedding-dim-changed", "An embedding's dimension changed: vectors no longer compare."),
        ("embedding-norm-changed", "An embedding's normalisation changed: distances shift."),
        ("entity-changed", "The entity or its key changed: lookups by content ID no longer join."),
        ("extractor-changed", "Another extractor computes the version: its values shift."),
        ("extractor-version-changed", "The extractor's code version changed: its values shift."),
        (
            "search-changed",
            "Similarity search was turned off or compares otherwise: `similar` callers break.",
        ),
    ),
    **_rules(
        Severity.COMPATIBLE,
        ("signal-added", "A new signal version: nobody reads it yet."),
        (
            "signal-retired",
            "A superseded version that no feature service includes is gone; a newer major serves.",
        ),
        ("optional-column-added", "A new nullable feature: old rows read it as null."),
        ("column-made-optional", "A required feature may now be null: the check was loosened."),
        ("range-widened", "A bound was removed or loosened: every stored value still fits."),
        ("allowed-values-added", "Allowed values were added: every stored value still fits."),
        ("search-added", "The signal became searchable: `similar` answers for it from now on."),
    ),
    **_rules(
        Severity.METADATA,
        ("description-changed", "A description changed: documentation only."),
        ("owner-changed", "The owning team changed."),
        ("tags-changed", "Tags changed: discovery and grouping only."),
        ("consumers-changed", "The feature services that include the signal changed."),
        ("ttl-changed", "How long a served value stays valid without a refresh changed."),
        ("freshness-changed", "How often the signal is expected to be recomputed changed."),
    ),
}


@dataclass(frozen=True)
class Change:
    """One classified difference between the base and the head catalog."""

    rule: Rule
    signal: str  # name@version
    column: str | None
    before: object
    after: object
    consumers: tuple[str, ...]  # feature services that include the signal: who is affected

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def what(self) -> str:
        """The change in a few words, for a table cell."""
        where = f"{self.signal}.{self.column}" if self.column else self.signal
        if self.before is None:
            return f"{where}: added {_show(self.after)}"
        if self.after is None:
            return f"{where}: removed (was {_show(self.before)})"
        return f"{where}: {_show(self.before)} → {_show(self.after)}"


def _show(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def diff_catalogs(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    """Every change from `base` to `head` (two `contract_doc.catalog_document`s), breaking first."""
    before, after = base["signals"], head["signals"]
    changes: list[Change] = []
    for ref in sorted(before.keys() | after.keys()):
        if ref not in after:
            old = before[ref]
            rule = "signal-retired" if _retirable(ref, old, after) else "signal-removed"
            changes.append(_change(rule, ref, None, old["features"], None, old))
        elif ref not in before:
            new = after[ref]
            changes.append(_change("signal-added", ref, None, None, list(new["features"]), new))
        else:
            changes += diff_signal(ref, before[ref], after[ref])
    order = list(Severity)
    return sorted(changes, key=lambda c: (order.index(c.severity), c.signal, c.column or ""))


def _retirable(ref: str, old: dict[str, Any], after: dict[str, Any]) -> bool:
    """A version may go once its consumers moved and a newer major of the signal is declared."""
    name, _, version = ref.partition("@")
    newer = any(
        other.partition("@")[0] == name and int(other.partition("@")[2]) > int(version)
        for other in after
    )
    return newer and not old.get("consumers")


def _change(
    rule: str, ref: str, column: str | None, before: object, after: object, doc: dict[str, Any]
) -> Change:
    return Change(RULES[rule], ref, column, before, after, tuple(doc.get("consumers", ())))


def diff_signal(ref: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Changes within one signal version: its identity, extractor, metadata and columns."""
    changes = []
    affected = _affected(before, after)
    fields = (
        ("entity-changed", ("entity", "key")),
        ("extractor-changed", ("extractor",)),
        ("description-changed", ("description",)),
        ("owner-changed", ("owner",)),
        ("tags-changed", ("tags",)),
        ("consumers-changed", ("consumers",)),
        ("ttl-changed", ("ttl_seconds",)),
        ("freshness-changed", ("freshness_seconds",)),
    )
    for rule, keys in fields:
        old = {k: before.get(k) for k in keys}
        new = {k: after.get(k) for k in keys}
        if old != new:
            shown = (old, new) if len(keys) > 1 else (old[keys[0]], new[keys[0]])
            changes.append(_change(rule, ref, None, *shown, affected))
    old_version, new_version = before.get("extractor_version"), after.get("extractor_version")
    same_extractor = before.get("extractor") == after.get("extractor")
    if same_extractor and None not in (old_version, new_version) and old_version != new_version:
        changes.append(
            _change("extractor-version-changed", ref, None, old_version, new_version, affected)
        )
    old_search, new_search = before.get("searchable"), after.get("searchable")
    if old_search != new_search:
        rule = "search-added" if old_search is None else "search-changed"
        changes.append(_change(rule, ref, None, old_search, new_search, affected))
    old_columns, new_columns = before["features"], after["features"]
    for name in [*old_columns, *(c for c in new_columns if c not in old_columns)]:
        if name not in new_columns:
            changes.append(
                _change("column-removed", ref, name, old_columns[name]["kind"], None, affected)
            )
        elif name not in old_columns:
            column = new_columns[name]
            rule = "optional-column-added" if column["nullable"] else "required-column-added"
            changes.append(_change(rule, ref, name, None, column["kind"], affected))
        else:
            changes += [
                _change(rule, ref, name, old, new, affected)
                for rule, old, new in diff_column(old_columns[name], new_columns[name])
            ]
    return changes


def _affected(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Consumers of either side: a change affects who read it and who will."""
    return {"consumers": sorted(set(before.get("consumers", ())) | set(after.get("consumers", ())))}


def diff_column(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, object, object]]:
    """(rule, before, after) for each change of one feature column."""
    if (before["kind"], before["arrow_type"]) != (after["kind"], after["arrow_type"]):
        return [("column-type-changed", before["arrow_type"], after["arrow_type"])]
    found: list[tuple[str, object, object]] = []
    if before["nullable"] != after["nullable"]:
        rule = "column-made-optional" if after["nullable"] else "column-made-required"
        found.append((rule, _nullability(before), _nullability(after)))
    if before.get("description") != after.get("description"):
        found.append(("description-changed", before.get("description"), after.get("description")))
    old, new = before["checks"], after["checks"]
    for check, compare in _CHECKS.items():
        if old.get(check) != new.get(check):
            found += [(rule, _bound(old, check), _bound(new, check)) for rule in compare(
                old.get(check), new.get(check)
            )]  # fmt: skip
    return found


def _nullability(column: dict[str, Any]) -> str:
    return "nullable" if column["nullable"] else "required"


def _bound(checks: dict[str, Any], name: str) -> str:
    value = checks.get(name)
    return f"{name}={_show(value)}" if value is not None else f"no {name}"


def _lower(old: float | None, new: float | None) -> list[str]:
    """A lower bound (`ge`): raising or adding it narrows, lowering or dropping it widens."""
    if new is not None and (old is None or new > old):
        return ["range-narrowed"]
    return ["range-widened"]


def _upper(old: float | None, new: float | None) -> list[str]:
    if new is not None and (old is None or new < old):
        return ["range-narrowed"]
    return ["range-widened"]


def _allowed(old: list[str] | None, new: list[str] | None) -> list[str]:
    """`isin`: any value no longer allowed (or a new restriction) breaks; only additions do not."""
    if new is not None and (old is None or set(old) - set(new)):
        return ["allowed-values-removed"]
    return ["allowed-values-added"] if new is None or set(new) - set(old or ()) else []


def _always(rule: str) -> Callable[[object, object], list[str]]:
    return lambda old, new: [rule]


_CHECKS: dict[str, Callable[[Any, Any], list[str]]] = {
    "ge": _lower,
    "le": _upper,
    "isin": _allowed,
    "dim": _always("embedding-dim-changed"),
    "normalized": _always("embedding-norm-changed"),
}


def breaking(changes: Iterable[Change]) -> list[Change]:
    """The changes a gate refuses: every breaking one (a removed version included)."""
    return [c for c in changes if c.severity is Severity.BREAKING]


def fix_for(change: Change) -> str:
    """What to do instead, in one line: the hint the gate prints beside the rule."""
    name, _, version = change.signal.partition("@")
    if change.rule.name == "signal-removed":
        return (
            f"keep {change.signal} declared while {', '.join(change.consumers) or 'anyone'} "
            f"reads it; move them to a newer {name} (its `consumers`), backfill it, then retire "
            f"{change.signal}"
        )
    return (
        f"declare {name}@{int(version) + 1} with this change and leave {change.signal} as it "
        f"was: the old version keeps serving until it is retired"
    )


def to_markdown(changes: list[Change], base: str, head: str) -> str:
    """The review as a pull-request comment: a verdict, then one table per severity, each change
    with why it is classified so and who consumes it."""
    broken = breaking(changes)
    counts = {s: sum(c.severity is s for c in changes) for s in Severity}
    lines = [
        f"## Contract review: `{base}` → `{head}`",
        "",
        (
            f"**{len(broken)} breaking change(s)** need a new major version before this lands."
            if broken
            else "No breaking change."
        ),
        "",
        " · ".join(f"{n} {s.value}" for s, n in counts.items()),
    ]
    for severity in Severity:
        group = [c for c in changes if c.severity is severity]
        if not group:
            continue
        lines += ["", f"### {severity.value.capitalize()}", ""]
        lines += ["| rule | change | why | consumers |", "| --- | --- | --- | --- |"]
        for c in group:
            who = ", ".join(c.consumers) or "—"
            lines.append(f"| `{c.rule.name}` | {_cell(c.what)} | {c.rule.doc} | {who} |")
    if broken:
        lines += ["", "### How to land it", ""]
        lines += [f"- `{c.rule.name}` on `{c.signal}`: {fix_for(c)}." for c in broken]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
