"""Text understanding beside the embedding: language, zero-shot tags and quality flags, no Ray.

Ground truth: the sample catalog's `language` column (its texts are written in that language) and
hand-labelled items whose genre, mood or topic a person reads off the text at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable

from extractors.base import ERROR_COLUMN, Extractor
from extractors.text import (
    EMPTY_TEXT,
    MIN_TEXT_CHARS,
    TAXONOMY_PATH,
    TextLanguage,
    TextQuality,
    TextTags,
    batch_texts,
    detect_language,
    has_mojibake,
    is_all_caps,
    load_taxonomy,
)
from features import Signal, get_signal
from features.labels import UNDETERMINED, taxonomy_labels
from features.validation import split_valid
from jobs.sample import generate_catalog_rows, write_sample_catalog

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def language() -> TextLanguage:
    return TextLanguage()


@pytest.fixture(scope="module")
def tags() -> TextTags:
    return TextTags(device="cpu")


@pytest.fixture(scope="module")
def quality() -> TextQuality:
    return TextQuality()


def _batch(
    rows: list[tuple[str, str | None, str | None]],
    content_type: str = "track",
    language: str | None = "en",
) -> pa.Table:
    """Catalog rows with the columns the text extractors read."""
    ids, titles, descriptions = zip(*rows, strict=True)
    return pa.table(
        {
            "content_id": list(ids),
            "content_type": [content_type] * len(ids),
            "language": pa.array([language] * len(ids), pa.string()),
            "title": pa.array(titles, pa.string()),
            "description": pa.array(descriptions, pa.string()),
        }
    )


def _signal_rows(signal: Signal, out: pa.Table) -> pa.Table:
    """Extractor output as the job writes it: standard columns, then the declared features."""
    ok = out.filter(pa.array([e is None for e in out.column(ERROR_COLUMN).to_pylist()]))
    n = ok.num_rows
    columns = {
        "content_id": ok.column("content_id"),
        "event_timestamp": [NOW] * n,
        "created_timestamp": [NOW] * n,
        "input_updated_at": [NOW] * n,
        "input_hash": ["h"] * n,
        "extractor_version": ["1+test"] * n,
        "run_id": ["run-1"] * n,
    }
    columns.update({name: ok.column(name) for name in signal.features})
    return pa.table(columns).cast(signal.arrow_schema())


def _assert_contract_accepts(signal: Signal, extractor: Extractor, out: pa.Table) -> None:
    assert extractor.output_schema().names == list(signal.features)
    rows = _signal_rows(signal, out)
    valid, violations = split_valid(rows, signal.contract())
    assert violations == {}
    assert valid.num_rows == rows.num_rows > 0


# --------------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------------

# Two plain sentences per language of the sample catalog, none taken from it.
SENTENCES = {
    "en": ["The library stays open late on Thursdays during the exam period.",
           "She planted tomatoes along the fence and watered them every evening."],
    "es": ["El tren de la mañana siempre llega tarde cuando llueve en la ciudad.",
           "Mi abuela preparaba una sopa de verduras los domingos por la noche."],
    "fr": ["Le boulanger ouvre sa boutique avant le lever du soleil chaque matin.",
           "Nous avons passé nos vacances dans un petit village près de la mer."],
    "de": ["Der Bus fährt heute wegen der Baustelle eine andere Strecke.",
           "Meine Schwester lernt seit zwei Jahren Geige an der Musikschule."],
    "pt": ["O mercado da praça vende frutas frescas todas as manhãs de sábado.",
           "Ele esqueceu o guarda-chuva no escritório e chegou em casa molhado."],
    "it": ["Il negozio all'angolo vende il pane più buono di tutto il quartiere.",
           "Domani mattina andiamo al mare se il tempo rimane così bello."],
    "sv": ["Vi brukar plocka blåbär i skogen när sommaren är som varmast.",
           "Bussen till stationen går var tjugonde minut på vardagarna."],
}  # fmt: skip


def test_language_matches_the_catalog_on_texts_of_40_characters_or_more(
    language: TextLanguage,
) -> None:
    rows = generate_catalog_rows(800, seed=3)
    keep = [i for i, text in enumerate(batch_texts(rows)) if len(text) >= 40]
    assert len(keep) > 500
    rows = rows.take(keep)
    out = language.extract(rows)
    said = np.array(out.column("language").to_pylist())
    truth = np.array(rows.column("language").to_pylist())
    decided = said != UNDETERMINED
    # "und" counts as wrong here: the bound is on every text, not only on the ones it decided.
    assert np.mean(said == truth) >= 0.9
    assert np.mean(said[decided] == truth[decided]) >= 0.98
    assert out.column(ERROR_COLUMN).null_count == out.num_rows


def test_hand_written_sentences_in_seven_languages(language: TextLanguage) -> None:
    rows = [
        (f"{code}-{n}", None, sentence)
        for code, sentences in SENTENCES.items()
        for n, sentence in enumerate(sentences)
    ]
    out = language.extract(_batch(rows))
    expected = [code for code, sentences in SENTENCES.items() for _ in sentences]
    assert out.column("language").to_pylist() == expected
    assert min(out.column("confidence").to_pylist()) >= 0.5


def test_short_ambiguous_and_letterless_text_is_undetermined_not_an_error(
    language: TextLanguage,
) -> None:
    out = language.extract(
        _batch(
            [
                ("hi", "Hola", None),
                ("ok", "OK", None),
                ("digits", "2024", "  "),
                ("none", None, None),
            ]
        )
    )
    assert out.column("language").to_pylist() == [UNDETERMINED] * 4
    confidences = out.column("confidence").to_pylist()
    assert all(c < 0.25 for c in confidences)
    assert confidences[2:] == [0.0, 0.0]
    assert out.column(ERROR_COLUMN).to_pylist() == [None] * 4


def test_a_very_long_text_costs_no_more_than_its_first_pages() -> None:
    text = "She planted tomatoes along the fence and watered them every evening. " * 15_000
    assert detect_language(text)[0] == "en"  # one million characters; only the first 4,000 read


def test_the_contract_lists_exactly_the_languages_lingua_can_name(language: TextLanguage) -> None:
    from lingua import Language

    declared = get_signal("text_language@1").features["language"].isin
    lingua = {lang.iso_code_639_1.name.lower() for lang in Language.all()}
    assert set(declared) == lingua | {UNDETERMINED}
    assert language.full_version.startswith("1+")


def test_the_language_contract_accepts_the_extractor_output(language: TextLanguage) -> None:
    out = language.extract(_batch([("a", "Rain on a tin roof", "A quiet song."), ("b", "", None)]))
    _assert_contract_accepts(get_signal("text_language@1"), language, out)


# --------------------------------------------------------------------------------------------
# Zero-shot tags
# --------------------------------------------------------------------------------------------

# (content_type, title, description, genre, mood, topic); None where a person would not be sure.
# DEV was written first and the taxonomy's descriptions were adjusted while looking at it;
# HELD_OUT was written afterwards and not tuned on, so its precision is the honest estimate.
DEV = [
    (
        "track",
        "Blue Corner",
        "A jazz piano trio plays late-night standards with brushed drums and a walking upright bass, recorded live at the Village.",
        "jazz",
        "calm",
        None,
    ),
    (
        "track",
        "Fists Up",
        "Furious thrash metal: crushing riffs, blast beats and a singer screaming against the system.",
        "metal",
        "angry",
        None,
    ),
    (
        "track",
        "Saturday Lights",
        "A feel-good dance-pop anthem about partying all night with your friends.",
        "pop",
        "upbeat",
        "party_nightlife",
    ),
    (
        "track",
        "Concrete Verses",
        "The Brooklyn rapper spits fast verses over a hard boom-bap beat about growing up on the block.",
        "hip_hop",
        None,
        None,
    ),
    (
        "track",
        "Warehouse 4AM",
        "Pounding techno for the club: a four-on-the-floor kick, acid synth lines and a long DJ build.",
        "electronic",
        "energetic",
        "party_nightlife",
    ),
    (
        "track",
        "Sonata in E Minor",
        "A piano sonata by a Romantic-era composer, performed by a soloist with a chamber orchestra.",
        "classical",
        None,
        None,
    ),
    (
        "track",
        "Dirt Road Home",
        "A Nashville country song with pedal steel guitar about driving a pickup truck back to the farm.",
        "country",
        "nostalgic",
        None,
    ),
    (
        "track",
        "Cradle of the Tide",
        "Slow drifting ambient drones and soft textures with no beat, made for sleep and deep focus.",
        "ambient",
        "calm",
        None,
    ),
    (
        "track",
        "Sunday Soul",
        "Smooth soulful vocals and a warm Motown groove; an R&B love song about holding her close.",
        "rnb_soul",
        "romantic",
        "love_relationships",
    ),
    (
        "track",
        "Tears on the Platform",
        "A heartbroken acoustic folk ballad on fingerpicked guitar about a lover who left on the last train.",
        "folk",
        "melancholic",
        "love_relationships",
    ),
    (
        "track",
        "Kingston Morning",
        "Roots reggae from Jamaica with an offbeat skank guitar and a deep dub bassline.",
        "reggae",
        "calm",
        None,
    ),
    (
        "track",
        "Noche de Salsa",
        "A hot salsa number with congas, timbales and a brass section; sung in Spanish for the dance floor.",
        "latin",
        "upbeat",
        None,
    ),
    (
        "track",
        "Crossroads Shuffle",
        "A twelve-bar blues shuffle with howling harmonica and slide guitar.",
        "blues",
        None,
        None,
    ),
    (
        "track",
        "Amplifier Hearts",
        "A loud garage rock song with crunchy electric guitars and pounding drums from a four-piece band.",
        "rock",
        "energetic",
        None,
    ),
    (
        "track",
        "Neon Dreams",
        "A hazy, floating dream-pop song drenched in reverb and shimmering synths.",
        "pop",
        "dreamy",
        None,
    ),
    (
        "episode",
        "The Vanishing at Miller's Creek",
        "Episode 12: in this true-crime podcast we investigate the 1987 murder of a small-town sheriff and the suspect who walked free.",
        "true_crime",
        "tense",
        "crime",
    ),
    (
        "episode",
        "Morning Briefing",
        "The day's top news headlines in twenty minutes: the election results, the central bank and the war in the east.",
        "news_commentary",
        "serious",
        "politics",
    ),
    (
        "episode",
        "Two Idiots and a Microphone",
        "Two stand-up comedians riff, trade jokes and make each other laugh about their terrible first jobs.",
        "comedy",
        "funny",
        None,
    ),
    (
        "episode",
        "Founders Unfiltered",
        "The host sits down with the founder of a fintech startup to talk about raising money, investors and building a company.",
        "interview_talk",
        None,
        "business_finance",
    ),
    (
        "episode",
        "Inside the Machine",
        "How large language models work: a deep dive into artificial intelligence, GPUs and the software behind chatbots.",
        "documentary",
        "serious",
        "technology",
    ),
    (
        "episode",
        "The Long Run",
        "An Olympic marathon runner talks about training, injuries and winning the championship.",
        "interview_talk",
        "inspiring",
        "sports",
    ),
    (
        "episode",
        "Small Habits",
        "Practical advice to build better habits, beat procrastination and boost your productivity every day.",
        "self_help",
        "inspiring",
        "personal_growth",
    ),
    (
        "episode",
        "Kitchen Confidential",
        "A chef shares recipes for homemade pasta and the secrets of a great tomato sauce.",
        None,
        None,
        "food",
    ),
    (
        "episode",
        "Faith and Doubt",
        "A pastor and a Buddhist monk talk about prayer, meditation and finding God.",
        "interview_talk",
        None,
        "spirituality",
    ),
    (
        "episode",
        "Wild Planet",
        "Wolves, whales and disappearing rainforests: what climate change means for wildlife.",
        "documentary",
        None,
        "nature_environment",
    ),
    (
        "episode",
        "Empires of the Ancient World",
        "How Rome rose and fell: the emperors, the legions and the long centuries of the empire.",
        "documentary",
        None,
        "history",
    ),
    (
        "episode",
        "Raising Teens",
        "Parents of teenagers talk about screen time, school and staying close to your kids.",
        "interview_talk",
        None,
        "family",
    ),
    (
        "episode",
        "Backpacking Patagonia",
        "A three-week road trip across Chile and Argentina: glaciers, buses and the end of the world.",
        None,
        None,
        "travel",
    ),
    (
        "episode",
        "Sleep Better Tonight",
        "A sleep doctor explains insomnia, melatonin and how to get a good night's rest.",
        None,
        "calm",
        "health_wellness",
    ),
    (
        "audiobook",
        "The Dragon of Emberfall",
        "A young wizard and her dragon must cross the enchanted kingdom to stop a dark sorcerer.",
        "fantasy_scifi",
        None,
        None,
    ),
    (
        "audiobook",
        "Starship Meridian",
        "The crew of a starship stranded light-years from Earth makes first contact with an alien civilization.",
        "fantasy_scifi",
        "tense",
        "science",
    ),
    (
        "audiobook",
        "The Inspector and the Locked Room",
        "Detective Inspector Hale investigates a murder in a locked library in this twisting mystery thriller.",
        "mystery_thriller",
        "tense",
        "crime",
    ),
    (
        "audiobook",
        "Summer in Positano",
        "She came to the Italian coast to forget; she didn't expect to fall in love with the baker next door. A swoon-worthy romance novel.",
        "romance",
        "romantic",
        "love_relationships",
    ),
    (
        "audiobook",
        "A Life in Four Seasons",
        "The memoir of a nurse who grew up poor in Glasgow and became a pioneer of modern medicine.",
        "biography_memoir",
        "inspiring",
        None,
    ),
    (
        "audiobook",
        "Goodnight, Little Bear",
        "Gentle bedtime stories for kids: a little bear, a friendly owl and a journey through the forest.",
        "childrens",
        "calm",
        None,
    ),
    (
        "audiobook",
        "The Trenches",
        "A history of the First World War told through the letters of soldiers on the Western Front.",
        None,
        "dark",
        "war",
    ),
]
HELD_OUT = [
    ("track", "Midnight at the Blue Note", "Saxophone solos and a swinging rhythm section: a live bebop jazz quartet.", "jazz", None, None),
    ("track", "Trap Lord", "Rapper drops hard-hitting bars over booming 808s and trap hi-hats.", "hip_hop", None, None),
    ("track", "Requiem for Strings", "A mournful requiem for string orchestra and choir by a contemporary composer.", "classical", "melancholic", None),
    ("track", "Highway Cowboy", "Boots, whiskey and a pickup truck: a twangy country anthem from Tennessee.", "country", None, None),
    ("track", "Bass Drop City", "Festival EDM with huge synth drops and a relentless house beat for the dance floor.", "electronic", "energetic", "party_nightlife"),
    ("track", "Iron Throne", "Crushing heavy metal riffs, thunderous double-kick drums and a roaring vocalist.", "metal", "angry", None),
    ("track", "Reggaeton Caliente", "A reggaeton hit sung in Spanish with a dembow rhythm to dance all night.", "latin", "upbeat", "party_nightlife"),
    ("track", "Goodbye, My Love", "A sad piano ballad about a breakup and a broken heart.", None, "melancholic", "love_relationships"),
    ("track", "Weightless", "Floating ambient pads and gentle drones for meditation and sleep.", "ambient", "calm", None),
    ("track", "Back to '69", "A wistful song remembering summers of youth and old friends long gone.", None, "nostalgic", None),
    ("track", "Garage Days", "Distorted electric guitars and a snarling punk rock chorus from a three-piece band.", "rock", "energetic", None),
    ("track", "Sweet Soul Sister", "Velvet soul vocals over a slow R&B groove with a horn section.", "rnb_soul", "romantic", None),
    ("episode", "Cold Case Files", "Detectives reopen an unsolved double homicide from 1994 in this true-crime series.", "true_crime", "tense", "crime"),
    ("episode", "Laugh Track", "Comedians swap ridiculous stories and silly jokes in this weekly comedy podcast.", "comedy", "funny", None),
    ("episode", "The Daily Wire Roundup", "Today's headlines: parliament votes on the budget and the prime minister faces a confidence vote.", "news_commentary", "serious", "politics"),
    ("episode", "Money Moves", "How to invest in index funds, pay off debt and understand the stock market.", None, None, "business_finance"),
    ("episode", "Game Day", "Breaking down last night's basketball playoff game and the team's title chances.", None, None, "sports"),
    ("episode", "The Quantum World", "A physicist explains quantum mechanics, black holes and the origin of the universe.", None, None, "science"),
    ("episode", "Code and Coffee", "Software engineers discuss programming languages, cloud computing and the future of AI.", None, None, "technology"),
    ("episode", "In Conversation with Ava Lin", "The host interviews the award-winning film director about her life and career.", "interview_talk", None, "arts_culture"),
    ("episode", "Mindful Minutes", "Guided meditation, breathing exercises and tips for reducing stress and anxiety.", None, "calm", "health_wellness"),
    ("episode", "Battlefields", "The story of D-Day: soldiers, generals and the battle that turned the Second World War.", "documentary", None, "war"),
    ("audiobook", "The Silent Witness", "A detective races to catch a serial killer before he strikes again in this gripping thriller.", "mystery_thriller", "tense", "crime"),
    ("audiobook", "Love in the Time of Letters", "Two pen pals slowly fall in love across an ocean in this heartwarming romance.", "romance", "romantic", "love_relationships"),
    ("audiobook", "The Mage's Apprentice", "An orphan discovers magic and joins a guild of wizards to fight an ancient evil.", "fantasy_scifi", None, None),
    ("audiobook", "Becoming Myself", "The memoir of a celebrated chef, from a childhood in poverty to her first restaurant.", "biography_memoir", None, "food"),
    ("audiobook", "The Power of Tiny Changes", "A practical guide to building good habits, staying motivated and reaching your goals.", "self_help", "inspiring", "personal_growth"),
    ("audiobook", "Bedtime for Bunny", "A soothing bedtime story for young children about a sleepy little rabbit.", "childrens", "calm", None),
    ("chapter", "Chapter 7: The Body in the Library", "The inspector examines the victim and questions the butler.", "mystery_thriller", None, "crime"),
    ("episode", "Around the World in 80 Trains", "A travel podcast riding the rails from Lisbon to Beijing.", None, None, "travel"),
    ("episode", "The Ghost of Harrow House", "A haunted house, strange noises at midnight and a chilling ghost story.", None, "dark", None),
    ("episode", "Family Matters", "A podcast about parenting toddlers, sibling rivalry and raising kids.", None, None, "family"),
]  # fmt: skip
FACETS = ("genre", "mood", "topic")


def _tag(tags: TextTags, examples: list[tuple]) -> pa.Table:
    return tags.extract(
        pa.table(
            {
                "content_id": [f"item-{i}" for i in range(len(examples))],
                "content_type": [e[0] for e in examples],
                "language": ["en"] * len(examples),
                "title": [e[1] for e in examples],
                "description": [e[2] for e in examples],
            }
        )
    )


def _hits(tags: TextTags, examples: list[tuple]) -> dict[str, list[bool]]:
    """Per facet, whether each labelled example got its label (unlabelled ones left out)."""
    out = _tag(tags, examples)
    hits: dict[str, list[bool]] = {}
    for f, facet in enumerate(FACETS):
        said = out.column(facet).to_pylist()
        hits[facet] = [s == e[3 + f] for s, e in zip(said, examples, strict=True) if e[3 + f]]
    return hits


def test_obvious_items_get_their_genre_mood_and_topic(tags: TextTags) -> None:
    """Measured (CPU): genre 47/54, mood 30/43, topic 38/40 — 115/137 = 0.84 overall (95 %
    Wilson lower bound 0.77); held out alone 52/59 = 0.88. Chance is 1/12–1/19 per facet.

    Each bound leaves at least as many items of slack as that facet has near-ties (top-two margin
    under 0.01: genre 3, mood 5, topic 0), so rounding differences on another device (CUDA)
    cannot fail it, while a broken prompt, taxonomy or similarity, which falls towards chance,
    does. Mood is the weak facet: the model reads what a text is about far better than how it
    feels.
    """
    dev, held_out = _hits(tags, DEV), _hits(tags, HELD_OUT)
    per_facet = {f: dev[f] + held_out[f] for f in FACETS}
    everything = [h for f in FACETS for h in per_facet[f]]
    held = [h for f in FACETS for h in held_out[f]]
    assert len(everything) >= 120 and len(held) >= 50
    assert np.mean(everything) >= 0.78
    assert np.mean(held) >= 0.8
    assert np.mean(per_facet["genre"]) >= 0.8
    assert np.mean(per_facet["topic"]) >= 0.85
    assert np.mean(per_facet["mood"]) >= 0.55


def test_a_jazz_piano_trio_is_jazz_and_a_true_crime_podcast_is_crime(tags: TextTags) -> None:
    out = _tag(tags, [DEV[0], DEV[15]])
    assert out.column("genre").to_pylist() == ["jazz", "true_crime"]
    assert out.column("topic").to_pylist()[1] == "crime"
    assert min(out.column("genre_score").to_pylist()) > 0.3


def test_music_genres_go_to_music_and_spoken_genres_to_spoken_word(tags: TextTags) -> None:
    taxonomy = load_taxonomy()
    genre = next(f for f in taxonomy.facets if f.name == "genre")
    kind_of_label = dict(zip(genre.labels, genre.kinds, strict=True))
    # A jazz documentary podcast and a song about a murder: the words pull across the divide.
    text = "A history of jazz piano and the murder trial that shocked New Orleans."
    types = ["track", "video", "episode", "audiobook", "chapter"]
    out = tags.extract(
        pa.table(
            {
                "content_id": types,
                "content_type": types,
                "language": ["en"] * 5,
                "title": ["Storyville"] * 5,
                "description": [text] * 5,
            }
        )
    )
    labels = out.column("genre").to_pylist()
    for content_type, label in zip(types, labels, strict=True):
        kinds = kind_of_label[label]
        assert kinds is None or taxonomy.kind_of_type[content_type] in kinds, (content_type, label)
    assert {kind_of_label[label] for label in labels} == {
        frozenset({"music"}),
        frozenset({"spoken"}),
    }


def test_empty_text_is_an_error_row_and_the_rest_of_the_batch_is_tagged(tags: TextTags) -> None:
    out = tags.extract(
        _batch(
            [("ok", "Blue Corner", "A jazz piano trio."), ("blank", "  ", None), ("x", None, "")]
        )
    )
    assert out.column(ERROR_COLUMN).to_pylist() == [None, EMPTY_TEXT, EMPTY_TEXT]
    assert out.column("genre").to_pylist() == ["jazz", None, None]
    assert -1 <= out.column("mood_score").to_pylist()[0] <= 1


def test_items_in_languages_the_model_cannot_read_get_no_tags_and_no_error(
    tags: TextTags,
) -> None:
    rows = [("x", "Blue Corner", "A jazz piano trio plays late-night standards.")]
    spanish = tags.extract(_batch(rows, language="es"))
    assert spanish.column(ERROR_COLUMN).to_pylist() == [None]
    assert [spanish.column(name)[0].as_py() for name in spanish.column_names[1:-1]] == [None] * 6
    for language in ("en", "en-GB", None):  # English, or nothing declared: tagged
        assert tags.extract(_batch(rows, language=language)).column("genre").to_pylist() == ["jazz"]
    _assert_contract_accepts(get_signal("text_tags@1"), tags, spanish)


def test_tags_contract_admits_exactly_the_taxonomy_and_refuses_other_labels(
    tags: TextTags,
) -> None:
    signal = get_signal("text_tags@1")
    assert taxonomy_labels() == {f.name: f.labels for f in tags.taxonomy.facets}
    for facet in FACETS:
        assert signal.features[facet].isin == taxonomy_labels()[facet]
    out = _tag(tags, DEV[:6] + HELD_OUT[-6:])
    _assert_contract_accepts(signal, tags, out)

    rows = _signal_rows(signal, out).to_pydict()
    rows["genre"][0] = "polka"
    _, violations = split_valid(pa.table(rows, schema=signal.arrow_schema()), signal.contract())
    assert list(violations) == [0] and "genre" in violations[0]


def test_editing_the_taxonomy_changes_the_version_so_every_item_is_recomputed(
    tags: TextTags, tmp_path: Path
) -> None:
    data = yaml.safe_load(TAXONOMY_PATH.read_text())
    data["facets"]["mood"]["labels"]["calm"]["description"] = "Quiet music for a rainy afternoon."
    edited = tmp_path / "taxonomy.yaml"
    edited.write_text(yaml.safe_dump(data))
    other = TextTags(device="cpu", taxonomy=load_taxonomy(edited))
    assert other.full_version != tags.full_version
    batch = _batch([("a", "Title", "Desc")])
    assert other.input_hashes(batch) != tags.input_hashes(batch)
    # the content type is an input: the same words are tagged differently for a track and a book
    assert tags.input_hashes(batch) != tags.input_hashes(
        _batch([("a", "Title", "Desc")], "chapter")
    )


def test_a_malformed_taxonomy_fails_when_loaded(tmp_path: Path) -> None:
    data = yaml.safe_load(TAXONOMY_PATH.read_text())
    data["facets"]["genre"]["labels"]["jazz"]["kinds"] = ["musik"]
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="unknown kinds"):
        load_taxonomy(bad)
    data["facets"]["genre"]["labels"]["jazz"] = {"kinds": ["music"]}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"genre\.jazz has no description"):
        load_taxonomy(bad)


# --------------------------------------------------------------------------------------------
# Quality flags
# --------------------------------------------------------------------------------------------

MOJIBAKE = ["CafÃ©", "donâ€™t stop", "Ã¼ber alles", "naÃ¯ve", "CafÃƒÂ©", "ZaÅ¼Ã³Å‚Ä‡ gÄ™Å›lÄ…",
            "BucureÈ™ti", "caf\ufffd", "price\x80list", "Â\xa0Live"]  # fmt: skip
CLEAN = ["Ça va", "Ärger im Paradies", "São Paulo", "SÃO PAULO", "Ålesund", "Straße…", "«Amélie»",
         "¿Qué?", "Motörhead", "£5 – €6", "naïve", "Beyoncé", "Sigur Rós", "PERCHÈ…", "Zażółć",
         "Ελληνικά", "日本語のタイトル", "Bucureşti"]  # fmt: skip


@pytest.mark.parametrize("text", MOJIBAKE)
def test_mojibake_is_flagged(text: str) -> None:
    assert has_mojibake(text)


@pytest.mark.parametrize("text", CLEAN)
def test_accented_and_non_latin_text_is_not_mojibake(text: str) -> None:
    assert not has_mojibake(text)


def test_all_caps_needs_a_shouting_field_not_an_acronym() -> None:
    assert is_all_caps("DANCING QUEEN (LIVE)")
    assert is_all_caps("ΚΑΛΗΜΕΡΑ ΚΟΣΜΕ")
    assert not is_all_caps("ABBA")
    assert not is_all_caps("NPR News Now")
    assert not is_all_caps("日本語のタイトル")


def test_quality_flags_on_crafted_items(quality: TextQuality) -> None:
    out = quality.extract(
        _batch(
            [
                ("fine", "Midnight Ferry", "A slow song about leaving home by sea."),
                ("empty", "   ", None),
                ("short", "Hi", None),
                ("caps", "DANCING QUEEN LIVE", "Recorded at the arena in 1979."),
                ("moji", "CafÃ© del Mar", "Chill-out classics."),
            ]
        )
    )
    flags = {
        name: dict(
            zip(out.column("content_id").to_pylist(), out.column(name).to_pylist(), strict=True)
        )
        for name in ("length_chars", "is_empty", "is_too_short", "is_all_caps", "has_mojibake")
    }
    assert flags["length_chars"] == {"fine": 54, "empty": 0, "short": 2, "caps": 50, "moji": 34}
    assert [k for k, v in flags["is_empty"].items() if v] == ["empty"]
    assert [k for k, v in flags["is_too_short"].items() if v] == ["empty", "short"]
    assert [k for k, v in flags["is_all_caps"].items() if v] == ["caps"]
    assert [k for k, v in flags["has_mojibake"].items() if v] == ["moji"]
    assert out.column(ERROR_COLUMN).null_count == out.num_rows  # empty text is a flag, not an error
    assert MIN_TEXT_CHARS == 20
    _assert_contract_accepts(get_signal("text_quality@1"), quality, out)


def test_the_sample_catalog_in_seven_languages_raises_no_false_flags(quality: TextQuality) -> None:
    rows = generate_catalog_rows(2000, seed=5)
    out = quality.extract(rows)
    assert not any(out.column("has_mojibake").to_pylist())
    assert not any(out.column("is_all_caps").to_pylist())
    blank = [not text for text in batch_texts(rows)]
    assert out.column("is_empty").to_pylist() == blank
    assert any(blank)  # the catalog plants an empty-text row


def test_every_text_signal_names_its_extractor_here() -> None:
    for ref, cls in (
        ("text_language@1", TextLanguage),
        ("text_tags@1", TextTags),
        ("text_quality@1", TextQuality),
    ):
        signal = get_signal(ref)
        assert signal.extractor == f"extractors.text:{cls.__name__}"
        assert signal.modality == "text"


def test_sample_catalog_genres_are_found_where_the_text_states_one(
    tags: TextTags, tmp_path: Path
) -> None:
    """The sample catalog states a genre in half of its tracks, episodes and audiobooks, amid
    album credits, guests and blurbs that say nothing of it; the ground truth holds it. v1 reads
    the English ones (every language: `tests/test_multilingual_text.py`).

    Measured (CPU, 2,000 items): top-1 accuracy 0.68 on the 238 English items (0.767 before the
    sample's episodes and audiobooks gained a synopsis sentence, which pulls the whole-text
    score away from the genre sentence; text_tags@2 scores sentence by sentence). Chance is
    1/6–1/14.
    """
    sample = write_sample_catalog(
        str(tmp_path / "snapshot"), tmp_path / "media", 2000, with_media=False
    )
    truth = pq.read_table(sample.ground_truth_uri, columns=["content_id", "genre", "language"])
    stated = truth.filter(pc.and_(pc.is_valid(truth.column("genre")),
                                  pc.equal(truth.column("language"), "en"))).drop_columns(["language"])  # fmt: skip
    catalog = pa.table(DeltaTable(sample.snapshot_uri).to_pyarrow_table())
    rows = catalog.filter(pc.is_in(catalog.column("content_id"), stated.column("content_id")))
    expected = dict(zip(*stated.to_pydict().values(), strict=True))
    out = tags.extract(rows)
    said = dict(
        zip(out.column("content_id").to_pylist(), out.column("genre").to_pylist(), strict=True)
    )
    assert len(said) >= 200
    hits = [said[cid] == genre for cid, genre in expected.items()]
    assert np.mean(hits) >= 0.65
    assert set(rows.column("content_type").to_pylist()) == {"track", "episode", "audiobook"}
