"""Access control of the feature server: Feast's OIDC auth and the repository's permissions, with
a local issuer signing its own tokens (`oidc_issuer.py`) and `signals serve` in a real process."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from oidc_issuer import OidcIssuer
from serve_process import running, signals_command
from test_serving import LOUDNESS, LUFS, T1, _append, _loudness

from jobs.serving.client import get_signals
from jobs.serving.errors import AccessDeniedError
from jobs.settings import Settings

VIEW_REF = f"{LOUDNESS.feature_view_name}:integrated_lufs"
ROLES = {"trust-safety": ["trust-and-safety"]}  # every other service: the role named as it


@pytest.fixture
def secured(settings: Settings, tmp_path: Path, monkeypatch) -> Iterator[tuple[str, OidcIssuer]]:
    """`signals serve` with OIDC on a store holding one item's loudness (in `playback` and
    `ads`, not in `trust-safety`); yields its URL and the issuer."""
    with OidcIssuer() as issuer:
        env = {"SIGNALS_AUTH": "oidc", "SIGNALS_OIDC_DISCOVERY_URL": issuer.discovery_url,
               "SIGNALS_SERVICE_ROLES": json.dumps(ROLES)}  # fmt: skip
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        _append(settings, [("track:000001", T1, _loudness(-11.0))], "r1")
        from jobs.serving.materialize import materialize

        materialize(Settings.from_env(), [LOUDNESS])  # applies the permissions too
        with running(["serve", "--no-access-log"], tmp_path / "serve.log") as url:
            yield url, issuer


def _ask(url: str, body: dict, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/get-online-features", json=body, headers=headers, timeout=10)


def test_no_token_401_a_token_without_the_role_403_with_it_200(secured) -> None:
    url, issuer = secured
    by_service = {"feature_service": "playback", "entities": {"content_id": ["track:000001"]}}
    assert _ask(url, by_service).status_code == 401
    assert _ask(url, by_service, "not-a-jwt").status_code == 401
    expired = issuer.token("ana", ["playback"], lifetime_s=-60)
    assert _ask(url, by_service, expired).status_code == 401

    moderator = issuer.token("mo", ["trust-and-safety"])
    refused = _ask(url, by_service, moderator)
    assert refused.status_code == 403 and "playback" in refused.text

    player = issuer.token("pia", ["playback"])
    answer = _ask(url, by_service, player)
    assert answer.status_code == 200
    assert -11.0 in [v for r in answer.json()["results"] for v in r["values"]]

    # Features named directly: a view is read by the roles of the services that include it.
    by_view = {"features": [VIEW_REF], "entities": {"content_id": ["track:000001"]}}
    assert _ask(url, by_view, issuer.token("adam", ["ads"])).status_code == 200
    assert _ask(url, by_view, moderator).status_code == 403
    # The similarity search checks the searched signal's view as Feast's own endpoints do.
    search = {"content_id": "track:000001", "signal": "audio_fingerprint@1"}
    denied = httpx.post(f"{url}/similar", json=search, timeout=10,
                        headers={"Authorization": f"Bearer {player}"})  # fmt: skip
    assert denied.status_code == 403
    assert httpx.post(f"{url}/similar", json=search, timeout=10).status_code == 401
    # Writes are nobody's over this server.
    push = httpx.post(f"{url}/push", json={"push_source_name": "x", "df": {}},
                      headers={"Authorization": f"Bearer {player}"}, timeout=10)  # fmt: skip
    assert 400 <= push.status_code < 500


def test_the_client_and_the_cli_send_a_bearer_token(secured) -> None:
    url, issuer = secured
    player = issuer.token("pia", ["playback"])
    row = get_signals(["track:000001"], service="playback", url=url, token=player, output="dicts")
    assert row[0][LUFS] == -11.0
    with pytest.raises(AccessDeniedError, match="401"):
        get_signals(["track:000001"], service="playback", url=url, token="")

    command = [signals_command(), "get", "track:000001", "--service", "playback", "--url", url]
    shown = subprocess.run([*command, "--token", player], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "-11" in shown.stdout
    env = {**os.environ, "SIGNALS_TOKEN": issuer.token("mo", ["trust-and-safety"])}
    denied = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert denied.returncode == 1
    assert "403" in denied.stderr + denied.stdout
    assert "Traceback" not in denied.stderr
