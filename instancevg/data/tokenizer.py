"""BEiT-3 text tokenizer: SentencePiece with the official ids and the official cleaning.

The official code wraps BEiT-3's SentencePiece model in transformers' XLMRobertaTokenizer; its ids are
``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3 and, for every other piece, its SentencePiece id + 1
(SentencePiece's own unknown id -> 3). We encode with ``sentencepiece`` itself, which gives those ids for
every input (recent transformers releases depart from SentencePiece on tabs, newlines and runs of unknown
characters). Sequences are ``<s> pieces[:max_tokens-2] </s>`` padded with ``<pad>``; the padding mask is
True on padding only (BOS/EOS are real tokens).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..notices import warn_once

_DELETED = re.compile(r"[.,'!?\"()*#:;]")
BOS_ID, PAD_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
PIECE_OFFSET = 1  # official id = SentencePiece id + 1 (fairseq's dictionary layout)
UNKNOWN_REPORTS = 5  # distinct mostly-unknown expressions reported per run


def clean_expression(text: str) -> str:
    """Official cleaning: lowercase, delete . , ' ! ? " ( ) * # : ; and turn - and / into spaces."""
    return _DELETED.sub("", text.lower()).replace("-", " ").replace("/", " ")


class Tokenizer:
    """Tokenize expressions to fixed-length id / padding-mask arrays.

    Args:
        spm_path: the SentencePiece model (BEiT-3's ``beit3.spm``, or the bundled tiny model).
        max_tokens: sequence length including BOS and EOS (50 gRefCOCO family, 20 RefCOCO family).

    Warnings (stderr, once per process): the first expression longer than the budget (how many tokens
    were dropped; ``truncated`` counts them all), and each expression (up to 5) of which more than half
    the pieces (bare word boundaries aside) are unknown to the SentencePiece model.
    """

    def __init__(self, spm_path: str | Path, max_tokens: int):
        import sentencepiece

        spm_path = Path(spm_path)
        if not spm_path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {spm_path} (expected a SentencePiece model, "
                                    "e.g. beit3.spm)")
        if max_tokens < 3:
            raise ValueError(f"max_tokens must be >= 3 (BOS, one piece, EOS), got {max_tokens}")
        self.spm_path = spm_path
        self.max_tokens = max_tokens
        self.truncated = 0  # expressions cut to the budget so far
        self._sp = sentencepiece.SentencePieceProcessor()
        try:
            self._sp.load(str(spm_path))
        except (OSError, RuntimeError) as exc:  # a corrupt or non-SentencePiece file
            raise ValueError(f"{spm_path} is not a readable SentencePiece model: {exc}") from None
        if self._sp.get_piece_size() <= 3:
            raise ValueError(f"{spm_path}: the SentencePiece model holds no vocabulary beyond its special pieces")
        self._sp_unk = self._sp.unk_id()
        # SentencePiece emits a bare word boundary before a character it cannot join to it ("\u2581", <unk>);
        # such pieces carry no content and are left out of the unknown-token share
        boundary = self._sp.piece_to_id("\u2581")
        self._boundary_id = None if boundary == self._sp_unk else boundary + PIECE_OFFSET
        self.bos_id, self.pad_id, self.eos_id, self.unk_id = BOS_ID, PAD_ID, EOS_ID, UNK_ID

    @property
    def vocab_size(self) -> int:
        """Size of the official id space: the SentencePiece pieces shifted by one, plus XLM-R's ``<mask>``
        (never emitted); the text embedding must have at least this many rows."""
        return self._sp.get_piece_size() + PIECE_OFFSET + 1

    def pieces(self, expression: str) -> list[int]:
        """Official ids of the cleaned expression's pieces, without BOS/EOS or truncation."""
        return [UNK_ID if i == self._sp_unk else i + PIECE_OFFSET
                for i in self._sp.encode(clean_expression(expression))]

    def encode(self, expression: str) -> tuple[np.ndarray, np.ndarray]:
        """ids [max_tokens] int64 and pad_mask [max_tokens] bool for one expression."""
        ids = self.pieces(expression)
        if not ids:
            raise ValueError(f"expression {expression!r} has no tokens after cleaning")
        self._check(expression, ids)
        ids = [self.bos_id] + ids[: self.max_tokens - 2] + [self.eos_id]
        n = len(ids)
        ids = np.array(ids + [self.pad_id] * (self.max_tokens - n), dtype=np.int64)
        pad_mask = np.arange(self.max_tokens) >= n
        return ids, pad_mask

    def encode_batch(self, expressions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """ids [B, max_tokens] int64 and pad_mask [B, max_tokens] bool."""
        pairs = [self.encode(e) for e in expressions]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _check(self, expression: str, ids: list[int]) -> None:
        """The warnings of the class docstring."""
        budget = self.max_tokens - 2
        if len(ids) > budget:
            self.truncated += 1
            warn_once(("tokens-dropped", self.max_tokens),
                      f"expression {expression!r} has {len(ids)} tokens but {self.max_tokens}-token inputs keep "
                      f"{budget} (plus BOS and EOS): its last {len(ids) - budget} tokens were dropped; later "
                      "truncated expressions are not reported")
        unknown = ids.count(UNK_ID)
        content = len(ids) - ids.count(self._boundary_id)
        if 2 * unknown > content:
            warn_once(("mostly-unknown", expression),
                      f"expression {expression!r}: {unknown} of its {content} tokens are unknown to "
                      f"{self.spm_path.name} (<unk>), not counting bare word boundaries; the model sees little "
                      "of it",
                      group="mostly-unknown", limit=UNKNOWN_REPORTS,
                      after_limit=f"more expressions made mostly of unknown tokens are not reported "
                                  f"(shown: the first {UNKNOWN_REPORTS})")
