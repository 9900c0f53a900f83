"""Post-processing shared by every backend: RawOutputs -> one Prediction per sample (FACTS.md §1)."""
from .postprocess import box_cxcywh_to_xyxy, nms, postprocess, query_scores, rescale_prediction

__all__ = ["postprocess", "query_scores", "box_cxcywh_to_xyxy", "nms", "rescale_prediction"]
