"""Tokenizer ids against sentencepiece directly; cleaning, truncation, padding; image preprocessing."""
import numpy as np
import pytest
import sentencepiece as spm

from instancevg import bundled
from instancevg.config import IMAGE_MEAN, IMAGE_STD
from instancevg.data.tokenizer import Tokenizer, clean_expression
from instancevg.data.transforms import preprocess_image, read_image


def reference_ids(spm_path, text):
    """Official ids from SentencePiece itself: piece id + 1, SentencePiece's unk (0) -> 3."""
    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
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
