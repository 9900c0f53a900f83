"""Sample: images, masks and to_target against direct computations."""
import cv2
import numpy as np
import pytest

from instancevg.data.masks import decode_segmentation, encode_mask
from instancevg.data.sample import ImageReadError, Sample

W, H = 40, 30
POLY = [[2.0, 3.0, 30.0, 3.0, 30.0, 25.0, 2.0, 25.0]]


def _sample(tmp_path=None, **kw):
    crowd_mask = np.zeros((H, W), bool)
    crowd_mask[20:28, 30:38] = True
    fields = dict(sample_id=0, image_path=str(tmp_path / "img.jpg") if tmp_path else "missing.jpg",
                  expression="the red square", width=W, height=H,
                  boxes=[[-3.0, 2.0, 50.0, 40.5], [30.0, 20.0, 38.0, 28.0]],
                  segmentations=(POLY, encode_mask(crowd_mask)), crowd=(False, True), empty=False,
                  dataset="grefcoco", split="val")
    fields.update(kw)
    return Sample(**fields)


@pytest.mark.parametrize("size", [16, 64, 97])
def test_to_target_scaling_clipping_and_nearest(size):
    s = _sample()
    t = s.to_target(size)
    clipped = np.array([[0.0, 2.0, W - 1, H - 1], [30.0, 20.0, 38.0, 28.0]])
    factor = np.array([size / W, size / H, size / W, size / H], dtype=np.float32)
    np.testing.assert_array_equal(t.boxes, (clipped * factor).astype(np.float32))
    assert t.boxes.dtype == np.float32
    inst = np.stack([decode_segmentation(seg, H, W) for seg in s.segmentations])
    direct = np.stack([cv2.resize(m.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
                       for m in inst])
    np.testing.assert_array_equal(t.instance_masks, direct)
    np.testing.assert_array_equal(t.mask, direct[0])  # the crowd instance stays out of the union
    assert t.mask.shape == (size, size) and not t.empty and t.extras["sample_id"] == 0


def test_to_target_original_resolution_variant():
    s = _sample()
    t = s.to_target(None)
    np.testing.assert_array_equal(t.boxes, np.array([[0, 2, W - 1, H - 1], [30, 20, 38, 28]], np.float32))
    assert t.mask.shape == (H, W) and t.instance_masks.shape == (2, H, W)
    np.testing.assert_array_equal(t.mask, decode_segmentation(POLY, H, W))


def test_empty_sample_target():
    s = _sample(boxes=np.zeros((0, 4)), segmentations=(), crowd=(), empty=True, group=4)
    t = s.to_target(32)
    assert t.boxes.shape == (0, 4) and t.instance_masks.shape == (0, 32, 32)
    assert t.mask.shape == (32, 32) and not t.mask.any() and t.empty and t.group == 4


def test_inconsistent_sample_is_rejected():
    with pytest.raises(ValueError, match="empty=True but 2 instances"):
        _sample(empty=True)
    with pytest.raises(ValueError, match="2 boxes, 1 segmentations"):
        _sample(segmentations=(POLY,), crowd=(False,))


def test_load_image_rgb_and_errors(tmp_path):
    bgr = np.zeros((H, W, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "img.png"), bgr)
    s = _sample(tmp_path, image_path=str(tmp_path / "img.png"))
    rgb = s.load_image()
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8 and rgb[0, 0].tolist() == [0, 0, 255]
    with pytest.raises(ImageReadError, match="image file not found: missing.jpg"):
        _sample().load_image()
    (tmp_path / "img.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="cannot read image .*img.jpg"):
        _sample(tmp_path).load_image()
    with pytest.raises(ImageReadError, match="annotation says 41x30"):
        _sample(tmp_path, image_path=str(tmp_path / "img.png"), width=41).load_image()
