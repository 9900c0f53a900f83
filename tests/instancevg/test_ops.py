"""The reference ops against direct, independent implementations."""
import math

import numpy as np
import pytest
import torch

from instancevg import ops


# ---------------------------------------------------------------- select_points
def shrinking_set_greedy(s: np.ndarray, num: int, w_dist: float) -> list[int]:
    """The official formulation: a shrinking list of remaining cells, distances recomputed each step."""
    h, w = s.shape
    cells = [(r, c) for r in range(h) for c in range(w)]
    flat = s.reshape(-1)
    chosen = [int(np.argmax(flat))]
    scale = np.float32(w_dist / math.sqrt(h * h + w * w))
    for _ in range(1, num):
        remaining = [i for i in range(h * w) if i not in chosen]
        best, best_val = None, -np.inf
        for i in remaining:  # row-major order: the first maximum wins
            r, c = cells[i]
            d = min(math.sqrt((r - cells[j][0]) ** 2 + (c - cells[j][1]) ** 2) for j in chosen)
            val = np.float32(flat[i]) + scale * np.float32(d)
            if val > best_val:
                best, best_val = i, val
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("w_dist", [0.003, 0.1])
def test_select_points_matches_shrinking_set_greedy(seed, w_dist):
    g = torch.Generator().manual_seed(seed)
    h, w = (20, 20) if seed < 3 else (7, 9)
    # sigmoid of attention probabilities, the real range of the map (values ~ 0.5 + p / 4)
    probs = torch.rand(2, h, w, generator=g).softmax(-1) if seed % 2 else torch.rand(2, h, w, generator=g) / 100
    scores = probs.sigmoid()
    idx, pts = ops.select_points(scores, 6, w_dist)
    for b in range(2):
        ref = shrinking_set_greedy(scores[b].numpy(), 6, w_dist)
        assert idx[b].tolist() == ref
        rows, cols = np.divmod(np.array(ref), w)
        np.testing.assert_allclose(pts[b].numpy(), np.stack([(cols + 0.5) / w, (rows + 0.5) / h], -1), rtol=0, atol=1e-7)


def test_select_points_ties_take_first_row_major_index():
    scores = torch.full((1, 4, 4), 0.5)
    idx, _ = ops.select_points(scores, 3, 0.0)
    assert idx.tolist() == [[0, 1, 2]]  # all equal, no distance bonus: row-major order
    scores = torch.zeros((1, 5, 5))
    scores[0, 2, 2] = 1.0
    idx, _ = ops.select_points(scores, 3, 1.0)
    # the corners tie on distance to the centre: the first in row-major order wins each time
    assert idx.tolist() == [[12, 0, 4]]
    assert idx.tolist()[0] == shrinking_set_greedy(scores[0].numpy(), 3, 1.0)


def test_select_points_distance_term_changes_the_order():
    scores = torch.tensor([[[0.50, 0.49, 0.0, 0.0, 0.48]]])
    assert ops.select_points(scores, 2, 0.0)[0].tolist() == [[0, 1]]
    assert ops.select_points(scores, 2, 1.0)[0].tolist() == [[0, 4]]


def test_select_points_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[B, h, w\]"):
        ops.select_points(torch.rand(4, 4), 2, 0.1)
    with pytest.raises(ValueError, match=r"num_points must lie in \[1, 16\]"):
        ops.select_points(torch.rand(1, 4, 4), 17, 0.1)


# ---------------------------------------------------------------- ms_deform_attn
def bilinear_zero_pad(img: np.ndarray, x: float, y: float) -> np.ndarray:
    """img [H, W, D]; (x, y) normalised; pixel = loc * size - 0.5; outside pixels read zero."""
    H, W, D = img.shape
    px, py = x * W - 0.5, y * H - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = np.zeros(D)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < H and 0 <= xx < W:
                out += wy * wx * img[yy, xx]
    return out


def direct_msda(value, shapes, locs, weights):
    B, S, M, D = value.shape
    _, Q, _, L, P, _ = locs.shape
    starts = np.cumsum([0] + [h * w for h, w in shapes])
    out = np.zeros((B, Q, M * D))
    for b in range(B):
        for q in range(Q):
            for m in range(M):
                acc = np.zeros(D)
                for lvl, (h, w) in enumerate(shapes):
                    img = value[b, starts[lvl]:starts[lvl + 1], m].reshape(h, w, D)
                    for p in range(P):
                        x, y = locs[b, q, m, lvl, p]
                        acc += weights[b, q, m, lvl, p] * bilinear_zero_pad(img, x, y)
                out[b, q, m * D:(m + 1) * D] = acc
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_ms_deform_attn_matches_direct_bilinear_loop(seed):
    g = torch.Generator().manual_seed(seed)
    shapes = [(6, 5), (3, 4), (2, 2)]
    B, Q, M, D, P = 2, 3, 2, 4, 3
    S = sum(h * w for h, w in shapes)
    value = torch.randn(B, S, M, D, generator=g, dtype=torch.float64)
    # locations in [-0.3, 1.3]: some samples fall outside the map, partly or wholly
    locs = torch.rand(B, Q, M, len(shapes), P, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3
    locs[0, 0, 0, 0, 0] = torch.tensor([0.0, 1.0], dtype=torch.float64)  # exact borders
    locs[0, 0, 0, 1, 0] = torch.tensor([-0.5, 0.5], dtype=torch.float64)  # fully outside
    weights = torch.rand(B, Q, M, len(shapes), P, generator=g, dtype=torch.float64)
    out = ops.ms_deform_attn(value, torch.tensor(shapes), torch.tensor([0, 30, 42]), locs, weights)
    ref = direct_msda(value.numpy(), shapes, locs.numpy(), weights.numpy())
    assert out.shape == (B, Q, M * D)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)  # float64: summation order only


def test_ms_deform_attn_checks_shapes():
    value = torch.zeros(1, 10, 1, 2)
    locs = torch.zeros(1, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="spatial_shapes"):
        ops.ms_deform_attn(value, [(3, 3)], torch.tensor([0]), locs, torch.zeros(1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="level_start_index"):
        ops.ms_deform_attn(torch.zeros(1, 13, 1, 2), [(3, 3), (2, 2)], torch.tensor([0, 8]),
                           torch.zeros(1, 1, 1, 2, 1, 2), torch.zeros(1, 1, 1, 2, 1))


# ---------------------------------------------------------------- select_text_tokens
def test_select_text_tokens_topk_branch():
    feats = torch.zeros(1, 8, 2)
    feats[0, :, 0] = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.3, 5.0, 6.0, 7.0])  # positions >= 5 are padding
    pad = torch.tensor([[False] * 5 + [True] * 3])
    sel, valid, idx = ops.select_text_tokens(feats, pad, 3)
    assert torch.equal(idx, ops.text_token_indices(feats, pad, 3)[0])
    assert idx.tolist() == [[1, 3, 2]]  # top-3 of the valid scores, descending; padding never chosen
    assert valid.tolist() == [[True, True, True]]
    assert torch.equal(sel, feats[:, [1, 3, 2]])


def test_select_text_tokens_too_few_branch():
    feats = torch.randn(1, 8, 4)
    pad = torch.tensor([[False] * 2 + [True] * 6])
    sel, valid, idx = ops.select_text_tokens(feats, pad, 4)
    assert idx.tolist() == [[0, 1, 2, 3]]  # sequence order
    assert valid.tolist() == [[True, True, False, False]]
    assert torch.equal(sel[0, :2], feats[0, :2]) and torch.count_nonzero(sel[0, 2:]) == 0  # padding masked


def test_select_text_tokens_batch_mixes_branches_and_honours_a_forced_selection():
    feats = torch.randn(2, 6, 3)
    pad = torch.tensor([[False] * 6, [False, False, True, True, True, True]])
    idx, valid = ops.text_token_indices(feats, pad, 3)
    scores = feats[0].mean(-1)
    assert idx[0].tolist() == scores.topk(3).indices.tolist()
    assert idx[1].tolist() == [0, 1, 2] and valid[1].tolist() == [True, True, False]
    forced = torch.tensor([[5, 4, 3], [2, 1, 0]])
    with ops.forced_selection(text_index=forced):
        sel, forced_valid, index = ops.select_text_tokens(feats, pad, 3)
    assert torch.equal(index, forced) and torch.equal(forced_valid, valid)  # validity by the same rule
    assert torch.equal(sel[0], feats[0, [5, 4, 3]]) and torch.count_nonzero(sel[1, 0]) == 0
