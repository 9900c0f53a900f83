"""Post-processing shared by every backend: RawOutputs -> one Prediction per sample (the official post-processing)."""
from ..boxes import box_cxcywh_to_xyxy, nms
from .postprocess import postprocess, query_scores, rescale_prediction

__all__ = ["postprocess", "query_scores", "box_cxcywh_to_xyxy", "nms", "rescale_prediction"]
