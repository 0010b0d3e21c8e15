"""`signals ui`: Feast's web UI on the configured store, rendered in headless Chromium as a person
sees it — every signal's feature view listed, and a signal's page with its description, owner,
version tag and consuming feature services."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chromium import ChromiumUnavailable, dump_dom, install_chromium, visible_text
from deltalake import write_deltalake
from serve_process import running
from signal_rows import history

from features import all_signals, get_signal
from jobs.serving.materialize import materialize
from jobs.settings import Settings

LOUDNESS = get_signal("audio_loudness@1")
LANGUAGE = get_signal("text_language@1")
PROJECT = "content_signals"  # feature_repo/feature_store.yaml
START_TIMEOUT_S = 120  # importing Feast alone takes 5–9 s on the 2-core machine


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Chromium, installed on first use; the only reason this module skips is that it cannot be."""
    try:
        return install_chromium()
    except ChromiumUnavailable as exc:
        pytest.skip(f"Chromium could not be installed: {exc}")


@pytest.fixture
def ui_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`signals ui` on a registry that `materialize` applied, two signals loaded for three
    items, listening on a free port until the test ends."""
    when = datetime.now(UTC) - timedelta(hours=1)
    loudness = {"integrated_lufs": -14.0, "loudness_range_lu": 6.0, "true_peak_dbtp": -1.0}
    rows = [(cid, when, loudness) for cid in ("track:1", "track:2", "episode:1")]
    write_deltalake(
        settings.signal_uri(LOUDNESS.storage_name), history(LOUDNESS.ref, rows, "r1"), mode="append"
    )
    language = {"language": "en", "confidence": 0.9}
    rows = [(cid, when, language) for cid in ("track:1", "episode:1")]
    write_deltalake(
        settings.signal_uri(LANGUAGE.storage_name), history(LANGUAGE.ref, rows, "r1"), mode="append"
    )
    materialize(settings, [LOUDNESS, LANGUAGE])

    with running(
        ["ui", "--host", "127.0.0.1"], tmp_path / "ui.log", timeout_s=START_TIMEOUT_S
    ) as url:
        yield url


def test_the_ui_lists_every_signal_and_shows_what_a_signal_is(
    chromium: Path, ui_url: str, tmp_path: Path
) -> None:
    catalog = visible_text(
        dump_dom(chromium, f"{ui_url}/p/{PROJECT}/feature-view/", tmp_path / "profile")
    )
    missing = [s.feature_view_name for s in all_signals() if s.feature_view_name not in catalog]
    assert not missing, f"not listed: {missing}\n{catalog}"

    page = visible_text(
        dump_dom(
            chromium,
            f"{ui_url}/p/{PROJECT}/feature-view/{LOUDNESS.feature_view_name}",
            tmp_path / "profile",
        )
    )
    assert " ".join(LOUDNESS.description.split()) in page, page
    assert f"owner {LOUDNESS.owner}" in page  # key, then value, as the page lists them
    assert f"signal {LOUDNESS.ref}" in page  # the tag that names the signal's version
    services = page.split("Consuming Feature Services", 1)[1].split("Tags", 1)[0]
    assert set(LOUDNESS.consumers) <= set(services.split()), services
    assert "Materialization Intervals" in page  # what `materialize` loaded, shown from the registry
