"""BEiT-3 text tokenizer: transformers' XLMRobertaTokenizer over a SentencePiece model, official cleaning.

Ids follow the official pipeline: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, a piece's id = its
SentencePiece id + 1. Sequences are ``<s> pieces[:max_tokens-2] </s>`` padded with ``<pad>``; the padding
mask is True on padding only (BOS/EOS are real tokens).
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

_DELETED = re.compile(r"[.,'!?\"()*#:;]")


def clean_expression(text: str) -> str:
    """Official cleaning: lowercase, delete . , ' ! ? " ( ) * # : ; and turn - and / into spaces."""
    return _DELETED.sub("", text.lower()).replace("-", " ").replace("/", " ")


class Tokenizer:
    """Tokenize expressions to fixed-length id / padding-mask arrays.

    Args:
        spm_path: the SentencePiece model (BEiT-3's ``beit3.spm``, or the bundled tiny model).
        max_tokens: sequence length including BOS and EOS (50 gRefCOCO family, 20 RefCOCO family).
    """

    def __init__(self, spm_path: str | Path, max_tokens: int):
        from transformers import XLMRobertaTokenizer

        spm_path = Path(spm_path)
        if not spm_path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {spm_path} (expected a SentencePiece model, "
                                    "e.g. beit3.spm)")
        if max_tokens < 3:
            raise ValueError(f"max_tokens must be >= 3 (BOS, one piece, EOS), got {max_tokens}")
        self.spm_path = spm_path
        self.max_tokens = max_tokens
        # XLMRobertaTokenizer(vocab_file=...) silently ignores the model with transformers 5.x (every piece
        # becomes <unk>); from_pretrained on a folder holding it as sentencepiece.bpe.model reads it.
        with tempfile.TemporaryDirectory() as folder:
            shutil.copyfile(spm_path, Path(folder) / "sentencepiece.bpe.model")
            try:
                self._tok = XLMRobertaTokenizer.from_pretrained(folder)
            except Exception as exc:  # a corrupt or non-SentencePiece file
                raise ValueError(f"{spm_path} is not a readable SentencePiece model: {exc}") from exc
        if len(self._tok) <= 5:
            raise ValueError(f"{spm_path}: the tokenizer read no vocabulary from this SentencePiece model")
        self.bos_id, self.pad_id, self.eos_id = self._tok.bos_token_id, self._tok.pad_token_id, \
            self._tok.eos_token_id

    @property
    def vocab_size(self) -> int:
        """Number of ids the tokenizer can emit (the text embedding must have at least this many rows)."""
        return len(self._tok)

    def pieces(self, expression: str) -> list[int]:
        """Ids of the cleaned expression's pieces, without BOS/EOS or truncation."""
        return self._tok.convert_tokens_to_ids(self._tok.tokenize(clean_expression(expression)))

    def encode(self, expression: str) -> tuple[np.ndarray, np.ndarray]:
        """ids [max_tokens] int64 and pad_mask [max_tokens] bool for one expression."""
        ids = self.pieces(expression)
        if not ids:
            raise ValueError(f"expression {expression!r} has no tokens after cleaning")
        ids = [self.bos_id] + ids[: self.max_tokens - 2] + [self.eos_id]
        n = len(ids)
        ids = np.array(ids + [self.pad_id] * (self.max_tokens - n), dtype=np.int64)
        pad_mask = np.arange(self.max_tokens) >= n
        return ids, pad_mask

    def encode_batch(self, expressions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """ids [B, max_tokens] int64 and pad_mask [B, max_tokens] bool."""
        pairs = [self.encode(e) for e in expressions]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
