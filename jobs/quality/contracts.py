"""The declared catalog's contracts at a git revision, in the working tree, or in an exported file.

Why a subprocess per side: two revisions declare different `features` packages under the same
module names, and one interpreter can import only one of them. Each side is exported by a fresh
interpreter whose `sys.path` starts at that side's tree; it imports that side's declarations and
extractors (for their code versions) and applies *this* tree's `features/contract_doc.py`, so
both sides are described the same way even when the older one predates the exporter.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from jobs.quality.errors import ContractSelectionError, ContractSourceError
from jobs.settings import PROJECT_ROOT

WORKTREE = "WORKTREE"  # the files as they are now, committed or not
_EXPORTER = PROJECT_ROOT / "features" / "contract_doc.py"
_EXPORT = """
import importlib, importlib.util, json, sys
root, exporter = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
from features.registry import all_signals
spec = importlib.util.spec_from_file_location("_contract_doc", exporter)
doc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(doc)
signals = all_signals()
versions = {}
for path in sorted({s.extractor for s in signals}):
    module, _, name = path.partition(":")
    try:
        versions[path] = str(getattr(importlib.import_module(module), name).version)
    except Exception:  # an extractor this interpreter cannot import: its version is unknown
        pass
print(json.dumps(doc.catalog_document(signals, versions)))
"""


def repo_root(start: Path | None = None) -> Path:
    """The git work tree holding `start` (default: the current directory)."""
    found = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=start or Path.cwd(),
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise ContractSourceError("not inside a git repository", details=[found.stderr.strip()])
    return Path(found.stdout.strip())


def load_catalog(side: str, root: Path | None = None) -> dict[str, Any]:
    """One side of a review: `WORKTREE`, a path to an exported JSON file, or a git revision."""
    if side != WORKTREE and Path(side).is_file():
        document = json.loads(Path(side).read_text())
        if "signals" not in document:
            raise ContractSourceError(f"{side} is not a contracts file (no 'signals')")
        return document
    root = root or repo_root()
    if side == WORKTREE:
        return _export(root)
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", side], cwd=root, capture_output=True, text=True
    )
    folders = [f for f in ("features", "extractors") if f in listed.stdout.split()]
    if listed.returncode != 0 or "features" not in folders:
        raise ContractSourceError(
            f"{side!r} is no git revision of {root} with a features/ folder",
            details=[line for line in listed.stderr.strip().splitlines()[:1]],
        )
    with tempfile.TemporaryDirectory(prefix="contracts-") as folder:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", side, *folders],
            cwd=root,
            capture_output=True,
            check=True,
        )
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        return _export(Path(folder))


def _export(tree: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _EXPORT, str(tree), str(_EXPORTER)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ContractSourceError(f"could not read the declared signals in {tree}", details=[last])
    return json.loads(done.stdout)


def select_contracts(catalog: dict[str, Any], signal: str | None) -> dict[str, Any]:
    """Every contract, or the one `signal` names (NAME@VERSION, or NAME for its newest)."""
    contracts = catalog["signals"]
    if signal is None:
        return contracts
    name, _, version = signal.partition("@")
    found = {r: c for r, c in contracts.items() if c["name"] == name}
    if version:
        found = {r: c for r, c in found.items() if str(c["version"]) == version.lstrip("v")}
    if not found:
        raise ContractSelectionError(
            f"no contract for {signal!r}", details=[f"declared: {', '.join(contracts)}"]
        )
    newest = max(found, key=lambda r: found[r]["version"])
    return {newest: found[newest]}


_SUFFIXES = {"json": "contract.json", "jsonschema": "schema.json", "odcs": "odcs.yaml"}


def export_documents(
    catalog: dict[str, Any], format: str, signal: str | None = None
) -> list[tuple[str, str]]:
    """(file name, text) of each exported contract: `json` is this project's (what `contracts
    diff/check` read back; the whole catalog in one file unless a signal is named), JSON Schema
    and Open Data Contract Standard YAML are for tools outside the project."""
    import yaml

    from features.contract_export import json_schema, odcs

    if format == "json" and signal is None:
        return [("contracts.json", json.dumps(catalog, indent=2))]
    makers = {"json": lambda c: c, "jsonschema": json_schema, "odcs": odcs}
    if format not in makers:
        raise ContractSelectionError(f"--format {format!r}: use json, jsonschema or odcs")
    documents = []
    for contract in select_contracts(catalog, signal).values():
        document = makers[format](contract)
        text = (
            yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
            if format == "odcs"
            else json.dumps(document, indent=2)
        )
        name = f"{contract['name']}_v{contract['version']}.{_SUFFIXES[format]}"
        documents.append((name, text))
    return documents
