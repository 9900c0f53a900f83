"""RawOutputs -> Prediction, exactly as the official ``get_predictions_parts`` (rescale=False).

- score_k = softmax(class_logits)[k, 0] * sigmoid(exist_logits[0]) (a sigmoid of logit 0, not a
  softmax: the official quirk); ``score_weighted=False`` drops the existence factor.
- boxes: cxcywh -> xyxy in pixels of the evaluation resolution, clipped to the image.
- masks: the stride-4 logits upsampled bilinearly (align_corners=True), then sigmoid >= thr_m.
- selected queries: score > thr_q (strict); output mask: merge = global OR selected instance masks,
  global = global mask only, instance = OR of the selected instance masks.
- optional NMS (IoU threshold ``nms_iou``): suppressed queries are dropped from the prediction and
  cannot be selected.
Predictions list every (kept) query sorted by score, descending; metrics apply their own thresholds.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..boxes import box_cxcywh_to_xyxy, nms
from ..config import PostprocessConfig
from ..structures import Prediction, RawOutputs


def _tensor(x) -> torch.Tensor:
    return x.detach().float().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x)).float()


def query_scores(class_logits, exist_logits, score_weighted: bool = True) -> torch.Tensor:
    """[B, N] final query scores from class_logits [B, N, 2] and exist_logits [B, 2]."""
    scores = F.softmax(_tensor(class_logits), dim=-1)[..., 0]
    if score_weighted:
        scores = scores * _tensor(exist_logits)[:, :1].sigmoid()
    return scores


def postprocess(raw: RawOutputs, cfg: PostprocessConfig, image_size: int,
                keep_instance_masks: bool = True) -> list[Prediction]:
    """One Prediction per sample of the batch at image_size x image_size.

    raw: RawOutputs with torch tensors or numpy arrays (see structures.RawOutputs for shapes).
    """
    size = int(image_size)
    scores = query_scores(raw.class_logits, raw.exist_logits, cfg.score_weighted)
    exist_prob = _tensor(raw.exist_logits)[:, 0].sigmoid()
    boxes = (box_cxcywh_to_xyxy(_tensor(raw.boxes)) * size).clamp(0, size)
    points = _tensor(raw.points) * size
    inst = F.interpolate(_tensor(raw.instance_mask_logits), size=(size, size), mode="bilinear",
                         align_corners=True).sigmoid() >= cfg.thr_m
    glob = F.interpolate(_tensor(raw.global_mask_logits), size=(size, size), mode="bilinear",
                         align_corners=True).sigmoid()[:, 0] >= cfg.thr_m
    predictions = []
    for b in range(scores.shape[0]):
        if cfg.nms:
            order = nms(boxes[b], scores[b], cfg.nms_iou)
        else:
            order = torch.argsort(scores[b], descending=True, stable=True)
        s = scores[b][order]
        selected = s > cfg.thr_q
        masks = inst[b][order]
        chosen = masks[selected].any(dim=0) if bool(selected.any()) else torch.zeros_like(glob[b])
        if cfg.out_mask == "merge":
            mask = glob[b] | chosen
        elif cfg.out_mask == "global":
            mask = glob[b]
        else:
            mask = chosen
        predictions.append(Prediction(
            boxes=boxes[b][order].numpy(), scores=s.numpy(), mask=mask.numpy(), selected=selected.numpy(),
            instance_masks=masks.numpy() if keep_instance_masks else None, points=points[b][order].numpy(),
            exist_prob=float(exist_prob[b]), query_index=order.numpy()))
    return predictions


def rescale_prediction(pred: Prediction, height: int, width: int) -> Prediction:
    """Map a prediction at the square evaluation resolution back to an H x W original image (official
    demo path: boxes scaled, masks resized with nearest neighbour)."""
    import cv2

    size_y, size_x = pred.mask.shape
    sx, sy = width / size_x, height / size_y
    scale = np.array([sx, sy, sx, sy], dtype=np.float32)

    def resize(m):
        return cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)

    instance_masks = pred.instance_masks
    if instance_masks is not None:
        instance_masks = np.stack([resize(m) for m in instance_masks]) if len(instance_masks) else \
            np.zeros((0, height, width), dtype=bool)
    return Prediction(
        boxes=pred.boxes * scale, scores=pred.scores, mask=resize(pred.mask), selected=pred.selected,
        instance_masks=instance_masks, points=None if pred.points is None else pred.points * scale[:2],
        exist_prob=pred.exist_prob, query_index=pred.query_index)
