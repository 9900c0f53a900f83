"""Tokenizer ids against sentencepiece directly (natural text and random Unicode/whitespace strings);
cleaning, truncation, padding, the tokenizer's warnings; image preprocessing."""
import functools
import io
import random
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from instancevg import bundled, notices
from instancevg.config import IMAGE_MEAN, IMAGE_STD
from instancevg.data.tokenizer import Tokenizer, clean_expression
from instancevg.data.transforms import preprocess_image, read_image


@functools.lru_cache(maxsize=4)
def processor(spm_path):
    return spm.SentencePieceProcessor(model_file=str(spm_path))


def reference_ids(spm_path, text):
    """Official ids from SentencePiece itself: piece id + 1, SentencePiece's unk (0) -> 3."""
    sp = processor(str(spm_path))
    return [3 if i == sp.unk_id() else i + 1 for i in sp.encode(clean_expression(text))]


def test_cleaning_follows_the_official_rules():
    assert clean_expression("The Man's (left) hand: red/blue-ish; #1*!?\"") == "the mans left hand red blue ish 1"


@pytest.mark.parametrize("text", ["the red circle on the left", "All BLUE shapes!", "a zebra-like thing 42"])
def test_ids_match_sentencepiece(text):
    tok = Tokenizer(bundled.TINY_TOKENIZER, 16)
    assert tok.pieces(text) == reference_ids(bundled.TINY_TOKENIZER, text)


def test_unknown_characters_map_to_unk_3():
    tok = Tokenizer(bundled.TINY_TOKENIZER, 16)
    assert 3 in tok.pieces("the é circle") and tok.pieces("the é circle") == reference_ids(bundled.TINY_TOKENIZER, "the é circle")


def test_bos_eos_padding_and_truncation():
    tok = Tokenizer(bundled.TINY_TOKENIZER, 8)
    ids, pad = tok.encode("red circle")
    pieces = tok.pieces("red circle")
    assert ids.tolist() == [0] + pieces + [2] + [1] * (8 - 2 - len(pieces))
    assert pad.tolist() == [False] * (len(pieces) + 2) + [True] * (8 - 2 - len(pieces))
    long = " ".join(["circle"] * 20)
    ids, pad = tok.encode(long)
    assert ids[0] == 0 and ids[-1] == 2 and not pad.any() and ids[1:-1].tolist() == tok.pieces(long)[:6]
    with pytest.raises(ValueError, match="no tokens after cleaning"):
        tok.encode("?!.")


# Characters that tell a SentencePiece-faithful tokenizer from an approximation: ASCII, the whitespace that
# SentencePiece folds or keeps, Unicode spaces, characters outside the vocabulary (CJK, emoji, controls),
# combining marks, letters whose lowercase changes length.
POOLS = {
    "ascii": "abcdefghijklmnopqrstuvwxyz ABCDEFXYZ0123456789",
    "punct": ".,'!?\"()*#:;-/_+=<>[]{}@$%^&~`|\\",
    "space": " \t\n\r\x0b\x0c",
    "unicode-space": "\u00a0\u1680\u2000\u2003\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\ufeff\x85",
    "cjk": "\u732b\u72d7\u7ea2\u8272\u5706\u5f62\u5de6\u8fb9\u7684\u4e2d\u5927\u5c0f",
    "emoji": "\U0001f600\U0001f534\U0001f7e6\U0001f697\U0001f44d\U0001f3fd\U0001f389",
    "control": "\x00\x01\x07\x1b\x7f\x9f",
    "combining": "\u0301\u0308\u0327\u20dd",
    "latin": "\u00e9\u00e8\u00df\u00c0\u00c9\u0130\u0131\u00f8\u00e6\u0153\u00e7\u00f1",
    "other": "\u03b1\u03b2\u03b3\u0434\u0436\u2713\u2192\u221e\ufb01\u2460\u216b",
}
WORDS = ["red", "circle", "left", "the", "all", "blue", "square", "big", "small", "on", "right", "shapes"]


def random_expression(rng: random.Random) -> str:
    """1-8 chunks (vocabulary words or runs of 1-4 characters of one pool) with random separators."""
    parts = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice(["word", "word", *POOLS])
        parts.append(rng.choice(WORDS) if kind == "word"
                     else "".join(rng.choice(POOLS[kind]) for _ in range(rng.randint(1, 4))))
        parts.append(rng.choice(["", " ", " ", "  ", "\t", "\n"]))
    return "".join(parts)


@pytest.fixture(scope="module")
def nfkc_spm(tmp_path_factory):
    """A small SentencePiece model with SentencePiece's default normalisation (nmt_nfkc, like BEiT-3's
    beit3.spm), which folds Unicode spaces and compatibility characters the bundled tiny model keeps."""
    corpus = ["the red circle on the left", "all blue squares", "a big small shape right", "left of the box"] * 20
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=model, vocab_size=60,
                                   model_type="unigram", hard_vocab_limit=False, num_threads=1, minloglevel=2)
    path = tmp_path_factory.mktemp("spm") / "nfkc.spm"
    path.write_bytes(model.getvalue())
    return path


@pytest.mark.parametrize("model", ["tiny", "nfkc"])
def test_ids_match_sentencepiece_on_random_unicode_and_whitespace(model, nfkc_spm):
    path = bundled.TINY_TOKENIZER if model == "tiny" else nfkc_spm
    tok = Tokenizer(path, 16)
    rng = random.Random(12)
    texts = [random_expression(rng) for _ in range(3000)]
    mismatches = [t for t in texts if tok.pieces(t) != reference_ids(path, t)]
    assert not mismatches, f"{len(mismatches)} of 3000 differ, e.g. {mismatches[:3]!r}"
    assert sum(3 in tok.pieces(t) for t in texts) > 1000  # the strings do exercise unknown characters
    for text in texts[:300]:  # and the fixed-length sequences are built from exactly those ids
        pieces = tok.pieces(text)
        if pieces:
            ids, pad = tok.encode(text)
            n = min(len(pieces), 14) + 2
            assert ids.tolist() == [0] + pieces[:14] + [2] + [1] * (16 - n) and int((~pad).sum()) == n


@pytest.fixture
def fresh_notices():
    """Warnings are printed once per process: forget earlier ones for this test."""
    notices.reset()
    yield
    notices.reset()


def test_truncation_warns_once_with_the_dropped_count(fresh_notices, capsys):
    tok = Tokenizer(bundled.TINY_TOKENIZER, 8)
    long = " ".join(["circle"] * 10)  # 10 pieces, 6 fit
    assert len(tok.pieces(long)) == 10
    tok.encode(long)
    tok.encode(long + " red")
    Tokenizer(bundled.TINY_TOKENIZER, 8).encode(long)  # once per run, not per tokenizer
    tok.encode("red circle")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"warning: expression {long!r} has 10 tokens but 8-token inputs keep 6 (plus BOS and EOS): "
                     "its last 4 tokens were dropped; later truncated expressions are not reported"]
    assert tok.truncated == 2


def test_mostly_unknown_expressions_warn_naming_them(fresh_notices, capsys):
    tok = Tokenizer(bundled.TINY_TOKENIZER, 16)
    tok.encode("the red circle")
    tok.encode("the \u00e9 circle")  # one unknown piece of four: no warning
    assert capsys.readouterr().err == ""
    cjk = "\u732b \u72d7 red"  # pieces: "\u2581" <unk> "\u2581" <unk> "\u2581red": 2 of 3 words unknown
    assert tok.pieces(cjk) == [42, 3, 42, 3, 27] and processor(str(bundled.TINY_TOKENIZER)).id_to_piece(41) == "\u2581"
    tok.encode(cjk)
    tok.encode(cjk)  # the same expression again: not repeated
    assert capsys.readouterr().err.splitlines() == [
        f"warning: expression {cjk!r}: 2 of its 3 tokens are unknown to tiny.spm (<unk>), not counting bare "
        "word boundaries; the model sees little of it"]
    wide = Tokenizer(bundled.TINY_TOKENIZER, 32)  # no truncation below; the limit is per run, not per tokenizer
    for i in range(2, 9):  # at most 5 distinct expressions (4 more here), then one line saying so, then nothing
        wide.encode("\u732b " * i + "red")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 5 and all("\u732b \u732b" in line for line in err[:4])
    assert err[-1] == "warning: more expressions made mostly of unknown tokens are not reported (shown: the first 5)"


def test_missing_or_bad_tokenizer_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="beit3.spm"):
        Tokenizer(tmp_path / "beit3.spm", 50)
    (tmp_path / "bad.spm").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.spm"):
        Tokenizer(tmp_path / "bad.spm", 50)


def test_preprocess_image_resizes_without_keeping_aspect_and_normalises():
    rgb = np.zeros((30, 60, 3), np.uint8)
    rgb[..., 0] = 255
    out = preprocess_image(rgb, 32)
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], (255 - IMAGE_MEAN[0]) / IMAGE_STD[0], rtol=1e-6)
    np.testing.assert_allclose(out[2], (0 - IMAGE_MEAN[2]) / IMAGE_STD[2], rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        preprocess_image(np.zeros((4, 4), np.uint8), 32)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_image(np.zeros((4, 4, 3), np.float32), 32)


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "x.jpg").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read image"):
        read_image(tmp_path / "x.jpg")
    assert read_image(bundled.SAMPLE_IMAGE).shape[2] == 3


def test_the_bundled_tokenizer_is_what_its_recipe_trains(tmp_path):
    """instancevg/assets/tiny.spm comes from instancevg.data.synthetic.train_tokenizer, byte for byte."""
    from instancevg import bundled
    from instancevg.data.synthetic import train_tokenizer

    assert Path(train_tokenizer(str(tmp_path / "tiny.spm"))).read_bytes() == bundled.TINY_TOKENIZER.read_bytes()
