"""The text-embedding extractor on its own: real MiniLM weights, no Ray."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from extractors.base import ERROR_COLUMN
from extractors.text import EMBEDDING_DIM, TextEmbedding, item_text


@pytest.fixture(scope="module")
def extractor() -> TextEmbedding:
    return TextEmbedding(device="cpu")


def _batch(rows: list[tuple[str, str | None, str | None]]) -> pa.Table:
    ids, titles, descriptions = zip(*rows, strict=True)
    return pa.table(
        {
            "content_id": list(ids),
            "title": pa.array(titles, pa.string()),
            "description": pa.array(descriptions, pa.string()),
        }
    )


def _vectors(table: pa.Table) -> np.ndarray:
    return np.array(table.column("embedding").to_pylist(), dtype=np.float32)


def test_embeddings_are_384_d_float32_unit_vectors(extractor: TextEmbedding) -> None:
    out = extractor.extract(_batch([("a", "Midnight Ferry", "A slow song about leaving by sea.")]))
    assert out.schema.field("embedding").type == pa.list_(pa.float32())
    vector = _vectors(out)[0]
    assert vector.shape == (EMBEDDING_DIM,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_similar_items_are_closer_than_unrelated_ones(extractor: TextEmbedding) -> None:
    out = extractor.extract(
        _batch(
            [
                ("jazz1", "Late night jazz piano", "Smooth jazz trio recorded live in a club."),
                ("jazz2", "Jazz piano after midnight", "A live jazz club set for piano trio."),
                ("news", "Quarterly earnings call", "Analysts discuss revenue and margins."),
            ]
        )
    )
    v = _vectors(out)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2


def test_empty_text_is_an_error_row_and_the_rest_of_the_batch_is_computed(
    extractor: TextEmbedding,
) -> None:
    out = extractor.extract(
        _batch([("ok", "Hola", "Un podcast en español"), ("blank", "  ", None), ("none", None, "")])
    )
    assert out.column("content_id").to_pylist() == ["ok", "blank", "none"]
    errors = out.column(ERROR_COLUMN).to_pylist()
    assert errors[0] is None
    assert errors[1] == errors[2] == "empty text: title and description are both empty"
    assert out.column("embedding").to_pylist()[1:] == [None, None]


def test_the_same_text_gives_the_same_vector_whatever_the_batch(extractor: TextEmbedding) -> None:
    alone = _vectors(extractor.extract(_batch([("x", "Rain on a tin roof", None)])))[0]
    mixed = extractor.extract(
        _batch([("y", "Something else entirely", "words"), ("x", "Rain on a tin roof", None)])
    )
    assert np.allclose(alone, _vectors(mixed)[1], atol=1e-5)


def test_version_includes_the_weights_hash_and_hashes_follow_the_text(
    extractor: TextEmbedding,
) -> None:
    assert extractor.full_version.startswith("1+")
    assert len(extractor.full_version) == len("1+") + 12
    batch = _batch([("a", "Title", "Desc"), ("b", "Title", "Desc"), ("c", "Title", "Desc 2")])
    hashes = extractor.input_hashes(batch)
    assert hashes[0] == hashes[1] != hashes[2]


def test_item_text_joins_title_and_description_and_drops_blanks() -> None:
    assert item_text("Title", "Description") == "Title. Description"
    assert item_text(" Title ", "  ") == "Title"
    assert item_text(None, None) == ""
