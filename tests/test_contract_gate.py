"""The contract gate against real git revisions of a temporary repository.

The repository holds a copy of this project's `features/` (the declarations) and `extractors/`
(whose code versions are part of a contract); each commit edits them the way a pull request
would, and `signals contracts check/diff` reads both revisions from git.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobs.cli import app

pytestmark = pytest.mark.slow  # each side is exported by a fresh interpreter
PROJECT = Path(__file__).resolve().parent.parent
LOUDNESS = '"integrated_lufs": Float(ge=-70, le=10, description="LUFS"),'


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


def _edit(repo: Path, old: str, new: str) -> None:
    path = repo / "features" / "declarations" / "audio.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    for folder in ("features", "extractors"):
        shutil.copytree(PROJECT / folder, root / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    _git(root, "init", "-q")
    _commit(root, "base")
    monkeypatch.chdir(root)
    return root


def test_the_gate_refuses_a_breaking_change_in_place_and_names_rule_and_fix(repo: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    _edit(repo, LOUDNESS, LOUDNESS.replace("ge=-70", "ge=-50"))
    _commit(repo, "narrow loudness")

    result = CliRunner().invoke(app, ["contracts", "check", "--base", base, "--head", "HEAD"])

    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "range-narrowed: audio_loudness@1.integrated_lufs: ge=-70 → ge=-50" in said
    assert "Fix: declare audio_loudness@2 with this change" in said
    assert "Traceback" not in said


def test_the_gate_passes_compatible_and_metadata_changes(repo: Path) -> None:
    base = _git(repo, "rev-parse", "HEAD")
    _edit(repo, LOUDNESS, LOUDNESS.replace("le=10", "le=20").replace('"LUFS"', '"LUFS, R128"'))
    _commit(repo, "widen and document loudness")

    result = CliRunner().invoke(app, ["contracts", "check", "--base", base, "--head", "HEAD"])

    assert result.exit_code == 0, result.output
    assert "no breaking change" in result.output and "(2 other)" in result.output


def test_the_review_writes_markdown_and_reads_the_uncommitted_tree(repo: Path) -> None:
    _edit(repo, LOUDNESS, LOUDNESS.replace("ge=-70", "ge=-50"))  # not committed: WORKTREE
    out = repo / "review.md"

    result = CliRunner().invoke(app, ["contracts", "diff", "HEAD", "--markdown", str(out)])

    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "**1 breaking change(s)**" in text
    assert "| `range-narrowed` | audio_loudness@1.integrated_lufs: ge=-70 → ge=-50 |" in text


def test_an_unknown_revision_is_a_clear_error(repo: Path) -> None:
    result = CliRunner().invoke(app, ["contracts", "check", "--base", "no-such-branch"])
    assert result.exit_code == 1
    assert "'no-such-branch' is no git revision" in result.output
    assert "Traceback" not in result.output


def test_a_model_upgrade_is_an_added_signal_and_moving_consumers_is_metadata(repo: Path) -> None:
    """text_embedding@2 and text_tags@2 as their pull request made them: the base revision is
    the declarations without the two v2s, with the feature services still on v1."""
    path = repo / "features" / "declarations" / "text.py"
    head = path.read_text()
    base = head
    for name in ("text_embedding_v2", "text_tags_v2"):
        start = base.index(f"{name} = Signal(")
        base = base[: base.rindex("\n\n", 0, start)] + base[base.index("\n)\n", start) + 2 :]
    base = base.replace(
        'consumers=(),\n    extractor="extractors.text:TextEmbedding"',
        'consumers=("search", "recommendations"),\n    extractor="extractors.text:TextEmbedding"',
    )
    base = base.replace("consumers=(),  # moved to v2, which tags every language",
                        'consumers=("search", "recommendations", "ads"),')  # fmt: skip
    assert base != head and "text_embedding_v2" not in base
    path.write_text(base)
    before = _commit(repo, "before the multilingual models")
    path.write_text(head)
    _commit(repo, "text_embedding@2 and text_tags@2; feature services move to them")

    result = CliRunner().invoke(app, ["contracts", "check", "--base", before, "--head", "HEAD"])

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "no breaking change" in said
    out = repo / "review.md"
    diff = CliRunner().invoke(
        app, ["contracts", "diff", before, "--head", "HEAD", "--markdown", str(out)]
    )
    assert diff.exit_code == 0, diff.output
    said = out.read_text()
    assert "signal-added" in said and "text_embedding@2" in said and "text_tags@2" in said
    assert "consumers-changed" in said and "text_embedding@1" in said
    assert "0 breaking · 2 compatible · 2 metadata" in said  # the two v2s; the two moves
