"""The house rules: who may import whom, how large a module may grow, and that every declared
signal's extractor produces exactly the features its declaration promises.

Static where it can be (the imports are read from the source, function-level ones included, so a
lazy import cannot slip past), and real where it must be (extractors are instantiated).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from extractors.base import Extractor
from features import all_signals
from features.signal import Signal

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("features", "extractors", "jobs", "feature_repo")
ENGINES = ("ray", "feast", "deltalake")
# Which rooms a room of `jobs` may import (besides the standard library and third parties).
# `jobs` is the shared base: settings and storage options.
ROOM_IMPORTS: dict[str, set[str]] = {
    "jobs": {"features"},
    "jobs.lake": {"features", "jobs"},
    "jobs.sample": {"features", "extractors", "jobs", "jobs.lake"},
    "jobs.serving": {"features", "jobs", "jobs.lake"},
    "jobs.quality": {"features", "jobs", "jobs.lake", "jobs.sample"},
    "jobs.pipeline": {
        "features",
        "extractors",
        "jobs",
        "jobs.lake",
        "jobs.serving",
        "jobs.quality",
    },
    "jobs.cli": {
        "features",
        "jobs",
        *(f"jobs.{room}" for room in ("lake", "sample", "serving", "quality", "pipeline")),
    },
}
ROOMS = tuple(r for r in ROOM_IMPORTS if r != "jobs")
MAX_LINES = 400


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (they never run)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for inner in node.body:
                lines.add(inner.lineno)
    return lines


@functools.cache
def imports(module: str, *, runtime_only: bool = False) -> frozenset[str]:
    """What `module` imports, anywhere in the file: project modules resolved to the module file
    they name (`from jobs.cli import compute` is `jobs.cli.compute`), others by top-level name."""
    tree = ast.parse(modules()[module].read_text())
    skipped = _type_checking_only(tree) if runtime_only else set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules() else node.module)
    return frozenset(found)


def _top(name: str) -> str:
    return name.split(".")[0]


def _room(module: str) -> str:
    """The room of a `jobs` module: `jobs.pipeline` for `jobs.pipeline.extract`, `jobs` for the
    shared base (`jobs.settings`), `jobs.cli` for the entry point (`jobs.__main__`)."""
    if module == "jobs.__main__":
        return "jobs.cli"
    return next((r for r in ROOMS if module == r or module.startswith(r + ".")), "jobs")


def importers_of(predicate: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
    """(module, what it imports) for every import `predicate` picks."""
    for module in modules():
        for imported in imports(module):
            if predicate(imported):
                yield module, imported


def test_features_and_extractors_never_import_an_engine_or_the_jobs() -> None:
    wrong = [
        (m, i)
        for m, i in importers_of(lambda i: _top(i) in (*ENGINES, "jobs"))
        if _top(m) in ("features", "extractors")
    ]
    assert not wrong, f"features/ and extractors/ must stay pure: {wrong}"


def test_features_and_extractors_never_import_each_other() -> None:
    wrong = [
        (m, i)
        for m, i in importers_of(lambda i: _top(i) in ("features", "extractors"))
        if {_top(m), _top(i)} == {"features", "extractors"}
    ]
    assert not wrong, f"a signal names its extractor by import path, never by import: {wrong}"


@pytest.mark.parametrize(
    ("engine", "allowed"),
    [
        ("deltalake", ("jobs.lake", "feature_repo")),
        ("feast", ("jobs.serving", "feature_repo")),
        ("ray", ("jobs.pipeline",)),
    ],
)
def test_each_engine_is_imported_by_its_own_room_only(
    engine: str, allowed: tuple[str, ...]
) -> None:
    wrong = [
        m
        for m, _ in importers_of(lambda i: _top(i) == engine)
        if not any(m == a or m.startswith(a + ".") for a in allowed)
    ]
    assert not wrong, f"{engine} is imported outside {', '.join(allowed)}: {sorted(set(wrong))}"


def test_nothing_imports_the_cli() -> None:
    wrong = [
        m
        for m, i in importers_of(lambda i: i == "jobs.cli" or i.startswith("jobs.cli."))
        if _room(m) != "jobs.cli"
    ]
    assert not wrong, f"the CLI imports the rooms, never the other way: {wrong}"


def test_rooms_import_only_the_rooms_below_them() -> None:
    wrong = []
    for module in (m for m in modules() if _top(m) == "jobs"):
        room = _room(module)
        for imported in imports(module):
            top = _top(imported)
            target = _room(imported) if top == "jobs" else top
            if top in PACKAGES and target != room and target not in ROOM_IMPORTS[room]:
                wrong.append(f"{module} → {imported}")
    assert not wrong, "arrows point one way:\n" + "\n".join(wrong)


def test_no_import_circle_between_files() -> None:
    graph = {m: {i for i in imports(m, runtime_only=True) if i in modules()} for m in modules()}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module)):
            pytest.fail("import circle: " + " → ".join(circle))


def test_no_module_of_the_jobs_is_over_400_lines() -> None:
    long = {
        m: n
        for m, p in modules().items()
        if _top(m) == "jobs" and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by what they hold (over {MAX_LINES} lines): {long}"


# --- declarations and extractors agree ----------------------------------------------------------


def _accepts(declared: pa.DataType, produced: pa.DataType) -> bool:
    """Whether the contract's column type takes the extractor's values as they are (the job casts
    the extractor's columns to the signal's schema: only lossless casts are allowed here)."""
    if declared == produced:
        return True
    if pa.types.is_list(declared) and pa.types.is_list(produced):
        return _accepts(declared.value_type, produced.value_type)
    widening = {
        (pa.float64(), pa.float32()),
        (pa.int64(), pa.int32()),
        (pa.large_string(), pa.string()),
    }
    return (declared, produced) in widening


@functools.cache
def _extractor(path: str) -> Extractor:
    from jobs.pipeline.extractors import extractor_options, load_extractor_class

    signal = next(s for s in all_signals() if s.extractor == path)
    instance = load_extractor_class(path)(device="cpu")
    # What every actor gets: the settings extractors read (none here) and the answer schema.
    instance.configure(extractor_options(signal, {}))
    return instance


@pytest.mark.parametrize("signal", all_signals(), ids=lambda s: s.ref)
def test_each_extractor_produces_exactly_the_declared_features_in_order(signal: Signal) -> None:
    produced = _extractor(signal.extractor).output_schema()
    assert produced.names == list(signal.features), signal.extractor
    declared = signal.arrow_schema()
    for name in signal.features:
        want, got = declared.field(name).type, produced.field(name).type
        assert _accepts(want, got), f"{signal.ref}.{name}: the contract has {want}, {got} produced"


# --- errors -------------------------------------------------------------------------------------


@functools.cache
def error_classes() -> dict[type[BaseException], str]:
    """Every exception class the project defines, with the module it is defined in."""
    import importlib

    found = {}
    for name in modules():
        if name == "jobs.__main__":
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found[value] = name
    return found


def test_every_error_class_lives_in_its_layers_errors_module() -> None:
    misplaced = {c.__name__: m for c, m in error_classes().items() if not m.endswith(".errors")}
    assert not misplaced, f"errors belong in the layer's errors module: {misplaced}"


def test_the_cli_exits_75_for_what_a_retry_can_fix_and_1_for_the_rest() -> None:
    from features.errors import SignalsError
    from jobs.cli.output import EXIT_TRANSIENT, EXIT_USER_ERROR, exit_code

    signals_errors = [c for c in error_classes() if issubclass(c, SignalsError)]
    retryable = {c.__name__ for c in signals_errors if c.retryable}
    assert {"CommitConflictError", "OnlineStoreError", "SubmitError"} <= retryable
    for cls in signals_errors:
        assert cls.__doc__, f"{cls.__name__} says nothing about when it is raised"
        expected = EXIT_TRANSIENT if cls.retryable else EXIT_USER_ERROR
        assert exit_code(cls("x")) == expected, cls.__name__
