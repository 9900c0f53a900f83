"""Mask helpers agree with pycocotools and OpenCV."""
import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from instancevg.data.masks import (SegmentationError, decode_segmentation, encode_mask, is_empty_segmentation,
                                   resize_masks_nearest, segmentation_to_rle, uncompressed_rle)

# pycocotools 2.0.x's decode warns under numpy 2; the warning is theirs, not ours
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

H, W = 37, 53
POLYGONS = [[3.5, 4.0, 30.2, 6.1, 20.0, 30.7], [35.0, 10.0, 50.0, 10.0, 50.0, 25.0, 35.0, 25.0]]


def _random_mask(rng, first_pixel=None):
    mask = rng.random((H, W)) < 0.4
    if first_pixel is not None:
        mask[0, 0] = first_pixel
    return mask


def test_polygons_match_pycocotools():
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(POLYGONS, H, W))).astype(bool)
    assert expected.sum() > 0
    np.testing.assert_array_equal(decode_segmentation(POLYGONS, H, W), expected)


@pytest.mark.parametrize("first_pixel", [False, True])
def test_rle_forms_match_pycocotools(first_pixel):
    mask = _random_mask(np.random.default_rng(int(first_pixel)), first_pixel)
    compressed = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    direct = mask_utils.decode(compressed).astype(bool)
    np.testing.assert_array_equal(direct, mask)
    # bytes counts, str counts (as JSON stores them) and the uncompressed list form
    np.testing.assert_array_equal(decode_segmentation(compressed, H, W), direct)
    np.testing.assert_array_equal(decode_segmentation(encode_mask(mask), H, W), direct)
    unc = uncompressed_rle(mask)
    assert isinstance(unc["counts"], list) and sum(unc["counts"]) == H * W
    np.testing.assert_array_equal(mask_utils.decode(mask_utils.frPyObjects(unc, H, W)).astype(bool), mask)
    np.testing.assert_array_equal(decode_segmentation(unc, H, W), mask)


def test_empty_and_degenerate_segmentations():
    assert is_empty_segmentation([]) and is_empty_segmentation(None) and is_empty_segmentation([[1, 2, 3, 4]])
    assert not decode_segmentation([], H, W).any()
    # a 2-point part would be read by pycocotools as a box: it is dropped, the valid part kept
    np.testing.assert_array_equal(decode_segmentation([[1, 1, 9, 9], POLYGONS[0]], H, W),
                                  decode_segmentation([POLYGONS[0]], H, W))


def test_bad_segmentations_raise():
    with pytest.raises(SegmentationError, match="differs from the image size"):
        segmentation_to_rle({"size": [H + 1, W], "counts": "abc"}, H, W)
    with pytest.raises(SegmentationError, match="polygon list or an RLE"):
        segmentation_to_rle(42, H, W)


def test_nearest_resize_matches_cv2_and_commutes_with_union():
    rng = np.random.default_rng(3)
    masks = rng.random((3, H, W)) < 0.3
    out = resize_masks_nearest(masks, 64, 48)
    assert out.shape == (3, 64, 48) and out.dtype == bool
    for m, o in zip(masks, out):
        np.testing.assert_array_equal(o, cv2.resize(m.astype(np.uint8), (48, 64),
                                                    interpolation=cv2.INTER_NEAREST) > 0)
    np.testing.assert_array_equal(out.any(0), resize_masks_nearest(masks.any(0), 64, 48))
