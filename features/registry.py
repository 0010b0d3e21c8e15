"""The catalog of declared signals: every `Signal` in the modules of `features.declarations`."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pkgutil
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import features.declarations as _declarations
from features.errors import UnknownSignalError
from features.signal import Signal

# Files (or folders of them) holding a team's own declarations, beside `features/declarations/`:
# `SIGNALS_DECLARATIONS=/repo/signals.py:/repo/more/` (os.pathsep-separated).
DECLARATIONS_ENV = "SIGNALS_DECLARATIONS"


def _declaration_modules() -> list[object]:
    """The modules of `features/declarations/`, then those `SIGNALS_DECLARATIONS` names."""
    modules: list[object] = [
        importlib.import_module(f"{_declarations.__name__}.{info.name}")
        for info in pkgutil.iter_modules(_declarations.__path__)
    ]
    for entry in filter(None, os.environ.get(DECLARATIONS_ENV, "").split(os.pathsep)):
        paths = sorted(Path(entry).glob("*.py")) if Path(entry).is_dir() else [Path(entry)]
        for path in paths:
            if not path.is_file():
                raise ValueError(f"{DECLARATIONS_ENV}: no declarations file {path}")
            name = (
                "signals_declarations_"
                + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            )
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            modules.append(module)
    return modules


@cache
def all_signals() -> tuple[Signal, ...]:
    """Every `Signal` declared at module level in `features/declarations/`, ordered by name and
    version.

    Discovery instead of a hand-kept list: declaring a signal in a module of that package is all
    it takes, and the package holds nothing else, so no list of modules to skip can go stale.
    """
    found: dict[str, Signal] = {}
    for module in _declaration_modules():
        for value in vars(module).values():
            if isinstance(value, Signal):
                if value.ref in found and found[value.ref] is not value:
                    raise ValueError(f"signal {value.ref} is declared twice")
                found[value.ref] = value
    signals = tuple(sorted(found.values(), key=lambda s: (s.name, s.version)))
    check_pinning(signals)
    return signals


def check_pinning(signals: Iterable[Signal]) -> None:
    """Refuse a consumer group that lists two versions of one signal.

    A feature service pins one version of each signal: with two, their features share names and
    a consumer could not say which version it reads. Moving to a new major is moving the group
    from one declaration's `consumers` to the other's.
    """
    pinned: dict[tuple[str, str], int] = {}
    for signal in signals:
        for group in signal.consumers:
            earlier = pinned.setdefault((group, signal.name), signal.version)
            if earlier != signal.version:
                raise ValueError(
                    f"feature service {group!r} lists {signal.name}@{earlier} and "
                    f"{signal.ref}: a feature service pins one version of each signal"
                )


def get_signal(ref: str) -> Signal:
    """Look a signal up by `name@version`, or by `name` alone for its newest version."""
    name, _, version = ref.partition("@")
    candidates = [s for s in all_signals() if s.name == name]
    if version:
        candidates = [s for s in candidates if str(s.version) == version.lstrip("v")]
    if not candidates:
        known = ", ".join(s.ref for s in all_signals())
        raise UnknownSignalError(f"unknown signal {ref!r}", details=[f"declared: {known}"])
    return max(candidates, key=lambda s: s.version)


def consumer_groups() -> dict[str, tuple[Signal, ...]]:
    """Consumer group → the signals its feature service includes."""
    groups: dict[str, list[Signal]] = {}
    for signal in all_signals():
        for group in signal.consumers:
            groups.setdefault(group, []).append(signal)
    return {g: tuple(s) for g, s in sorted(groups.items())}


def service_signals(service: str) -> tuple[Signal, ...]:
    """The signals a feature service pins; an unknown name lists the known ones."""
    groups = consumer_groups()
    if service not in groups:
        raise UnknownSignalError(
            f"unknown feature service {service!r}", details=[f"declared: {', '.join(groups)}"]
        )
    return groups[service]
