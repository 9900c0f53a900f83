"""instancevg-predict on the bundled sample image."""
import json

import numpy as np
from PIL import Image

from instancevg import bundled
from instancevg.cli.predict import main
from instancevg.data.transforms import read_image


def test_refuses_without_checkpoint_unless_random_weights(tmp_path, capsys):
    # gres-base has no bundled checkpoint: the command must refuse rather than run random weights
    args = ["--config", "gres-base", "--tokenizer", str(bundled.TINY_TOKENIZER), "-o", str(tmp_path / "p")]
    assert main(args) == 2
    assert "--random-weights" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_bundled_checkpoint_is_the_default_and_finds_the_sample_targets(tmp_path):
    assert bundled.default_checkpoint("tiny") is not None
    assert main(["-o", str(tmp_path / "pred")]) == 0
    record = json.loads((tmp_path / "pred.json").read_text())
    assert record["random_weights"] is False and record["checkpoint"].endswith("tiny.pth")
    # the bundled sample names two shapes ("all orange shapes"): the trained model selects two queries
    assert sum(q["selected"] for q in record["queries"]) == json.loads(bundled.SAMPLE_META.read_text())["targets"]


def test_writes_png_and_json_on_the_bundled_sample(tmp_path):
    assert main(["--random-weights", "--thr-q", "0.0", "-o", str(tmp_path / "pred")]) == 0
    record = json.loads((tmp_path / "pred.json").read_text())
    image = Image.open(tmp_path / "pred.png")
    h, w = record["size"]
    assert record["size_order"] == ["height", "width"] and (record["height"], record["width"]) == (h, w)
    assert (h, w) == read_image(bundled.sample()[0]).shape[:2]
    assert image.size[0] == w and image.size[1] > h and image.mode == "RGB"  # the caption band below
    assert record["expression"] == bundled.sample()[1] and record["random_weights"] is True
    assert len(record["queries"]) == 5 and all(q["selected"] for q in record["queries"])  # thr_q 0: all > 0
    scores = [q["score"] for q in record["queries"]]
    assert scores == sorted(scores, reverse=True)
    for q in record["queries"]:
        x1, y1, x2, y2 = q["box_xyxy"]
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
    assert record["mask"]["size"] == [h, w] and isinstance(record["mask"]["counts"], str)
    assert np.asarray(image).std() > 0


def test_no_target_is_labelled_in_the_picture(tmp_path):
    from instancevg.visualize import NO_TARGET_FILL

    # thr_q 1.0: no query can be selected (strict >), whatever the weights
    assert main(["--thr-q", "1.0", "-o", str(tmp_path / "none")]) == 0
    record = json.loads((tmp_path / "none.json").read_text())
    assert record["no_target"] is True and not any(q["selected"] for q in record["queries"])
    picture = np.asarray(Image.open(tmp_path / "none.png"))[: record["height"]]
    assert (picture == NO_TARGET_FILL).all(-1).sum() > 100


def test_bad_arguments(tmp_path, capsys):
    assert main(["only-an-image.jpg", "--random-weights", "-o", str(tmp_path / "p")]) == 2
    assert "both IMAGE and EXPRESSION" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.jpg"), "x", "--random-weights", "-o", str(tmp_path / "p")]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    assert main(["--config", "gres-base", "--random-weights", "-o", str(tmp_path / "p")]) == 2
    assert "needs --tokenizer" in capsys.readouterr().err
