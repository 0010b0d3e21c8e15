"""LLM-written metadata: what a language model reads in an item's text, under a contract.

The model answers in the contract's terms: genre, mood and topic take the tag taxonomy's labels
(the same ones `text_tags` uses, so the two can be compared and disagreements reviewed), content
warnings are flags, and the summary is one sentence. `extractors/llm.py` sends this contract as
the answer's JSON schema and validates every answer against it.
"""

from __future__ import annotations

from datetime import timedelta

from features.labels import taxonomy_labels
from features.signal import Signal
from features.types import Bool, Float, String

_TAGS = taxonomy_labels()
WARNINGS = {
    "violence": "violence, abuse or gore",
    "strong_language": "profanity or slurs",
    "substance_use": "drugs or alcohol use",
    "sexual_content": "sexual content",
}

llm_metadata = Signal(
    name="llm_metadata",
    version=1,
    description=(
        "Genre, mood, topic, content warnings and a one-sentence summary, written by a language "
        "model (any OpenAI-compatible chat-completions endpoint) from the item's type, language, "
        "title and description. Labels come from extractors/taxonomy.yaml, or null when the text "
        "gives no evidence. confidence is the model's own probability that the labels are right: "
        "answers under the review threshold go to the annotation queue. The model and the prompt "
        "version are in extractor_version."
    ),
    owner="content-understanding",
    tags={
        "modality": "text",
        "model": "SIGNALS_LLM_MODEL",
        "prompt": "extractors/prompts/llm_metadata.v1",
    },
    consumers=(),  # served to no one until `signals evaluate` has judged it against the gold set
    extractor="extractors.llm:LLMEnrichment",
    features={
        "genre": String(isin=_TAGS["genre"], nullable=True, description="Taxonomy genre."),
        "mood": String(isin=_TAGS["mood"], nullable=True, description="Taxonomy mood."),
        "topic": String(isin=_TAGS["topic"], nullable=True, description="Taxonomy topic."),
        **{
            f"warning_{name}": Bool(description=f"The text states or implies {what}.")
            for name, what in WARNINGS.items()
        },
        "summary": String(description="One plain sentence, at most 30 words, in English."),
        "confidence": Float(
            ge=0, le=1, description="The model's probability the labels are right."
        ),
    },
    ttl=timedelta(days=365),
    freshness=timedelta(days=30),
)
