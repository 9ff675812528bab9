"""Sentence embeddings with all-MiniLM-L6-v2: tokenize, encode in length-sorted batches, pool.

This is what ``SentenceTransformer("all-MiniLM-L6-v2").encode(texts)`` does, without torch:

1. tokenize with the model's own ``tokenizer.json`` (the ``tokenizers`` package, the same Rust
   tokenizer transformers uses), ``[CLS] ... [SEP]``, truncated to ``max_seq_length`` (256);
2. run the BERT encoder (:mod:`._bert`) on right-padded batches;
3. mean-pool the token vectors over the attention mask;
4. L2-normalise.

Inputs are sorted by token count before batching so that a batch carries little padding; results
come back in input order. The loaded model is shared by the whole process (:func:`get_encoder`).
One ``encode`` call runs at a time, with one worker thread per core, each on its own batches and
with a single-threaded BLAS. numpy releases the GIL in BLAS and in its elementwise loops, so the
softmax and GELU run in parallel too, not only the matmuls. Multi-threaded OpenBLAS is avoided on
purpose: its threads spin while they wait, and on a busy 2-core machine that measured 5-8x slower
than two single-threaded workers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController
from tokenizers import Encoding, Tokenizer

from ._bert import BertEncoder
from ._files import ModelFilesError, ModelSpec, load_spec

MODEL_ID = "all-minilm-l6-v2"
"""The model's id on the embeddings API (and in ``/v1/models``)."""

DEFAULT_BATCH_SIZE = 16
"""Sequences per forward pass; 8 to 32 cost the same per sequence on a 2-core machine."""


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class EncodeResult:
    vectors: NDArray[np.float32]
    """(len(texts), dimension), L2-normalised, in input order."""
    token_counts: list[int]
    """Tokens the model processed per input, including [CLS] and [SEP], after truncation."""
    truncated: int
    """How many inputs were longer than ``max_seq_length`` tokens and were cut."""

    @property
    def total_tokens(self) -> int:
        return sum(self.token_counts)


class SentenceEncoder:
    """all-MiniLM-L6-v2 (or a same-architecture model directory) as a numpy runtime."""

    def __init__(self, model_dir: Path | None = None) -> None:
        self.spec: ModelSpec = load_spec(model_dir)
        try:
            tokenizer = Tokenizer.from_file(str(self.spec.tokenizer_path))
        except Exception as exc:  # the Rust tokenizer raises a bare Exception
            raise ModelFilesError(f"cannot read the tokenizer {self.spec.tokenizer_path} ({exc}).") from None
        # tokenizer.json ships with fixed padding to 128 and truncation at 128; sentence-transformers
        # overrides both: no padding at tokenization time, truncation at max_seq_length.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.spec.max_seq_length)
        self._tokenizer = tokenizer
        self._bert = BertEncoder(self.spec)
        self._lock = threading.Lock()
        # Inspecting the loaded BLAS libraries once, not per call, saves ~1 ms per encode.
        self._threadpools = ThreadpoolController()

    @property
    def dimension(self) -> int:
        return self.spec.hidden_size

    @property
    def max_seq_length(self) -> int:
        return self.spec.max_seq_length

    def tokenize(self, texts: Sequence[str]) -> list[Encoding]:
        # sentence-transformers strips surrounding whitespace before tokenizing.
        return self._tokenizer.encode_batch([t.strip() for t in texts], add_special_tokens=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenize(texts)]

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> EncodeResult:
        """Embed ``texts``; ``progress(n)`` is called after each batch with the number of texts it held."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        encodings = self.tokenize(texts)
        counts = [len(e.ids) for e in encodings]
        truncated = sum(1 for e in encodings if e.overflowing)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Longest first: the most expensive batches start first, so parallel workers finish together.
        order = sorted(range(len(encodings)), key=lambda i: counts[i], reverse=True)
        workers = max(1, min(threads or default_threads(), len(order)))
        # Small inputs are split so every worker gets a batch.
        size = max(1, min(batch_size, -(-len(order) // workers)))
        batches = [order[start : start + size] for start in range(0, len(order), size)]

        def run(batch: list[int]) -> tuple[list[int], NDArray[np.float32]]:
            return batch, self._encode_batch([encodings[i] for i in batch])

        # The BLAS thread limit is process-wide; holding self._lock keeps other encodes out meanwhile.
        with self._lock, self._threadpools.limit(limits=1, user_api="blas"):
            if workers <= 1 or len(batches) <= 1:
                for batch in batches:
                    _, vectors[batch] = run(batch)
                    if progress is not None:
                        progress(len(batch))
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="minilm") as pool:
                    for future in as_completed([pool.submit(run, b) for b in batches]):
                        batch, batch_vectors = future.result()
                        vectors[batch] = batch_vectors
                        if progress is not None:
                            progress(len(batch))
        return EncodeResult(vectors=vectors, token_counts=counts, truncated=truncated)

    def _encode_batch(self, encodings: Sequence[Encoding]) -> NDArray[np.float32]:
        length = max(len(e.ids) for e in encodings)
        batch = len(encodings)
        ids = np.zeros((batch, length), dtype=np.int64)  # [PAD] is id 0
        mask = np.zeros((batch, length), dtype=np.int64)
        type_ids = np.zeros((batch, length), dtype=np.int64)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            type_ids[row, :n] = enc.type_ids
        hidden = self._bert.forward(ids, mask, type_ids)
        # Mean pooling over real tokens (sentence-transformers clamps the count at 1e-9).
        weights = mask.astype(np.float32)[:, :, None]
        summed = (hidden * weights).sum(axis=1)
        pooled = summed / np.maximum(weights.sum(axis=1), np.float32(1e-9))
        # torch.nn.functional.normalize: x / max(||x||, 1e-12)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)


_shared: SentenceEncoder | None = None
_shared_lock = threading.Lock()


def get_encoder() -> SentenceEncoder:
    """The process-wide encoder, loaded on first use (about a second; ~90 MB of weights)."""
    global _shared
    encoder = _shared
    if encoder is None:
        with _shared_lock:
            if _shared is None:
                _shared = SentenceEncoder()
            encoder = _shared
    return encoder


def is_loaded() -> bool:
    return _shared is not None
