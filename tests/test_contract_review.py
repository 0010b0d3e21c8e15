"""Contract review rules: each fires on its before/after pair, and the harmless changes do not."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from features.contract_doc import catalog_document
from features.registry import check_pinning
from features.review import RULES, Severity, breaking, diff_catalogs, fix_for
from features.signal import Searchable, Signal
from features.types import Bool, Embedding, FeatureType, Float, String

BASE = Signal(
    name="loudness",
    version=1,
    description="Integrated loudness.",
    owner="content-understanding",
    extractor="extractors.audio:Loudness",
    features={
        "lufs": Float(ge=-70, le=0, description="integrated loudness"),
        "mood": String(isin=("calm", "happy"), nullable=True),
        "clipped": Bool(),
        "embedding": Embedding(dim=8, normalized=True),
    },
    tags={"modality": "audio"},
    consumers=("recommendations", "search"),
)


def _with(**features: FeatureType | None) -> Signal:
    merged = {**BASE.features, **features}
    return replace(BASE, features={k: v for k, v in merged.items() if v is not None})


def _rules(head: Signal | list[Signal], base: Signal | list[Signal] = BASE,
           versions: tuple[str, str] = ("1", "1")) -> list[str]:  # fmt: skip
    heads = head if isinstance(head, list) else [head]
    bases = base if isinstance(base, list) else [base]
    changes = diff_catalogs(
        catalog_document(bases, {BASE.extractor: versions[0]}),
        catalog_document(heads, {BASE.extractor: versions[1]}),
    )
    return [c.rule.name for c in changes]


PAIRS: list[tuple[Signal | list[Signal], str]] = [
    (_with(lufs=None), "column-removed"),
    (
        _with(lufs=Float(ge=-70, le=0, nullable=True, description="integrated loudness")),
        "column-made-optional",
    ),
    (_with(mood=String(isin=("calm", "happy"))), "column-made-required"),
    (_with(clipped=String()), "column-type-changed"),
    (_with(lufs=Float(ge=-60, le=0, description="integrated loudness")), "range-narrowed"),
    (_with(lufs=Float(ge=-70, le=-1, description="integrated loudness")), "range-narrowed"),
    (_with(lufs=Float(ge=-90, le=0, description="integrated loudness")), "range-widened"),
    (_with(lufs=Float(ge=-70, description="integrated loudness")), "range-widened"),
    (_with(mood=String(isin=("calm",), nullable=True)), "allowed-values-removed"),
    (_with(mood=String(isin=("calm", "happy", "sad"), nullable=True)), "allowed-values-added"),
    (_with(mood=String(nullable=True)), "allowed-values-added"),
    (_with(clipped=Bool(), tempo=Float(nullable=True)), "optional-column-added"),
    (_with(tempo=Float()), "required-column-added"),
    (_with(embedding=Embedding(dim=16, normalized=True)), "embedding-dim-changed"),
    (_with(embedding=Embedding(dim=8)), "embedding-norm-changed"),
    (replace(BASE, extractor="extractors.audio:LoudnessV2"), "extractor-changed"),
    (replace(BASE, description="Integrated loudness, EBU R128."), "description-changed"),
    (_with(lufs=Float(ge=-70, le=0, description="LUFS")), "description-changed"),
    (replace(BASE, owner="audio-team"), "owner-changed"),
    (replace(BASE, tags={"modality": "audio", "tier": "gold"}), "tags-changed"),
    (replace(BASE, consumers=("search",)), "consumers-changed"),
    (replace(BASE, ttl=timedelta(days=7)), "ttl-changed"),
    (replace(BASE, freshness=timedelta(hours=6)), "freshness-changed"),
    ([], "signal-removed"),
    ([BASE, replace(BASE, version=2)], "signal-added"),
    (replace(BASE, searchable=Searchable("embedding")), "search-added"),
]


@pytest.mark.parametrize(("head", "rule"), PAIRS)
def test_each_rule_fires_on_its_change_and_nothing_else_does(
    head: Signal | list[Signal], rule: str
) -> None:
    assert _rules(head) == [rule]


def test_every_rule_is_documented_and_has_a_before_after_pair_here() -> None:
    assert all(r.doc.endswith(".") and r.name == name for name, r in RULES.items())
    paired = {rule for _, rule in PAIRS} | {
        "extractor-version-changed",
        "entity-changed",
        "signal-retired",
        "search-changed",
    }
    assert paired == set(RULES)


def test_turning_search_off_or_changing_its_metric_breaks_similar_callers() -> None:
    searched = replace(BASE, searchable=Searchable("embedding", "cosine"))
    assert _rules(BASE, base=searched) == ["search-changed"]
    assert _rules(replace(BASE, searchable=Searchable("embedding", "l2")), base=searched) == [
        "search-changed"
    ]


def test_the_extractor_code_version_changing_in_place_is_breaking() -> None:
    assert _rules(BASE, versions=("1", "2")) == ["extractor-version-changed"]
    assert _rules(BASE, versions=("1", "1")) == []


def test_a_new_entity_key_is_breaking() -> None:
    # Entity and key come from `features.standard`, not a declaration: edit the document.
    base = catalog_document([BASE])
    head = catalog_document([BASE])
    head["signals"][BASE.ref]["key"] = ["content_id", "market"]
    assert [c.rule.name for c in diff_catalogs(base, head)] == ["entity-changed"]


def test_a_superseded_version_retires_only_once_no_feature_service_includes_it() -> None:
    v2 = replace(BASE, version=2, consumers=("recommendations",))
    moved = replace(BASE, consumers=("search",))  # one group moved to v2, one still on v1
    assert _rules([v2], base=[moved, v2]) == ["signal-removed"]
    assert _rules([v2], base=[replace(BASE, consumers=()), v2]) == ["signal-retired"]
    # With no newer major it is a removal, whoever consumes it.
    assert _rules([], base=[replace(BASE, consumers=())]) == ["signal-removed"]
    # Removing the newer major while the old one stays is not a retirement either.
    assert _rules([replace(BASE, consumers=())], base=[replace(BASE, consumers=()), v2]) == [
        "signal-removed"
    ]


def test_a_feature_service_pins_one_version_of_each_signal() -> None:
    check_pinning([BASE, replace(BASE, version=2, consumers=("ads",))])
    with pytest.raises(ValueError, match="'search' lists loudness@1 and loudness@2"):
        check_pinning([BASE, replace(BASE, version=2, consumers=("search",))])


def test_harmless_edits_never_fire_a_breaking_rule() -> None:
    harmless = [
        _with(lufs=Float(ge=-90, le=10, description="integrated loudness")),  # loosened
        _with(tempo=Float(nullable=True)),  # new optional column
        replace(BASE, description="Integrated loudness (EBU R128), per item."),
        _with(mood=String(isin=("happy", "calm"), nullable=True)),  # same set, other order
    ]
    for head in harmless:
        changes = diff_catalogs(catalog_document([BASE]), catalog_document([head]))
        assert not breaking(changes), [c.rule.name for c in changes]
    same = diff_catalogs(catalog_document([BASE]), catalog_document([_with()]))
    assert same == []


def test_a_breaking_change_names_who_is_affected_and_how_to_land_it_safely() -> None:
    head = replace(_with(lufs=Float(ge=-60, le=0, description="integrated loudness")),
                   consumers=("search", "trust-and-safety"))  # fmt: skip
    changes = diff_catalogs(catalog_document([BASE]), catalog_document([head]))
    narrowed = next(c for c in changes if c.rule.name == "range-narrowed")
    assert narrowed.severity is Severity.BREAKING
    assert narrowed.consumers == ("recommendations", "search", "trust-and-safety")
    assert narrowed.what == "loudness@1.lufs: ge=-70 → ge=-60"
    assert "declare loudness@2" in fix_for(narrowed)
    assert [c.severity for c in changes] == sorted(
        (c.severity for c in changes), key=list(Severity).index
    )
