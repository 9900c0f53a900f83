"""The predictions file: JSON Lines, written atomically.

Line 1, the header::

    {"format": "instancevg-predictions", "version": 1, "dataset": str, "split": str, "backend": str,
     "resolution": [H, W], "thr_q": float, "thr_m": float, ...extra keys kept as they are}

Then one object per sample, in the order written (dataset order for the runner)::

    {"sample_id": int | str, "boxes": [[x1, y1, x2, y2], ...], "scores": [...],
     "mask": {"size": [H, W], "counts": "<COCO compressed RLE>"}}

- boxes and scores: every query, sorted by score descending (non-increasing), xyxy pixels of the
  evaluation resolution; scores are the final existence-weighted scores. Values are float32 written as
  the ``repr`` of the Python float of each float32 value, so reading them back gives the same float32
  bits (exact round trip). NaN and infinities are refused.
- mask: the final output mask [H, W] (H, W = header resolution), COCO RLE from pycocotools with the
  ``counts`` bytes as an ASCII string. The reader parses and checks the counts (valid characters, no
  negative run, runs summing to H*W) and decodes them itself (pycocotools' C decoder does not
  bound-check its input); tests check the decoding against pycocotools.

Writing (``PredictionsWriter`` / ``write_predictions``) goes to a temporary file in the target's
directory, renamed over the target with ``os.replace`` only when every sample was written: after an
exception no file (and no partial file) is left at the target path, and an existing file is untouched.

Reading (``read_predictions``) validates the header at once and returns it with a lazy iterator of
``(sample_id, Prediction)``; every problem raises ``PredictionsFileError`` naming the file, the line, the
sample (when known) and the field. Duplicate sample ids are errors. ``load_predictions`` also checks the
set of sample ids against the dataset's (missing or unexpected samples are errors naming them).
Predictions read back carry boxes, scores and mask; selected / instance_masks / points are None.
"""
from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from instancevg.data.masks import encode_mask
from instancevg.structures import Prediction

FORMAT = "instancevg-predictions"
VERSION = 1
HEADER_FIELDS = ("format", "version", "dataset", "split", "backend", "resolution", "thr_q", "thr_m")
SAMPLE_FIELDS = ("sample_id", "boxes", "scores", "mask")
SampleId = Union[int, str]


class PredictionsFileError(ValueError):
    """A predictions file that cannot be read or written; the message names file, line, sample, field."""

    def __init__(self, path: Union[str, os.PathLike], message: str, line: Optional[int] = None,
                 sample_id: Optional[SampleId] = None, field_name: Optional[str] = None) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if sample_id is not None:
            where += f" (sample {sample_id!r})"
        if field_name is not None:
            where += f", field '{field_name}'"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.sample_id, self.field_name = str(path), line, sample_id, field_name


@dataclass
class PredictionsHeader:
    """Header of a predictions file. resolution = (H, W) of boxes and masks."""

    dataset: str
    split: str
    backend: str
    resolution: tuple[int, int]
    thr_q: float = 0.7
    thr_m: float = 0.5
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        clash = sorted(set(self.extra) & set(HEADER_FIELDS))
        if clash:
            raise ValueError(f"predictions header: extra keys {clash} clash with the standard fields")
        obj = {"format": FORMAT, "version": VERSION, "dataset": self.dataset, "split": self.split,
               "backend": self.backend, "resolution": [int(self.resolution[0]), int(self.resolution[1])],
               "thr_q": float(self.thr_q), "thr_m": float(self.thr_m)}
        obj.update(self.extra)
        return obj

    @classmethod
    def from_json(cls, obj: Any, path: Union[str, os.PathLike] = "<header>", line: int = 1) -> "PredictionsHeader":
        def fail(message, name=None):
            raise PredictionsFileError(path, message, line=line, field_name=name)

        if not isinstance(obj, dict):
            fail(f"the header must be a JSON object, got {type(obj).__name__}")
        missing = [k for k in HEADER_FIELDS if k not in obj]
        if missing:
            fail(f"the header lacks {missing}; expected the fields {list(HEADER_FIELDS)}", missing[0])
        if obj["format"] != FORMAT:
            fail(f"expected {FORMAT!r}, got {obj['format']!r}", "format")
        if obj["version"] != VERSION or isinstance(obj["version"], bool):
            fail(f"unsupported version {obj['version']!r}; this reader knows version {VERSION}", "version")
        for name in ("dataset", "split", "backend"):
            if not isinstance(obj[name], str):
                fail(f"expected a string, got {obj[name]!r}", name)
        resolution = obj["resolution"]
        if (not isinstance(resolution, list) or len(resolution) != 2
                or not all(_is_int(v) and v > 0 for v in resolution)):
            fail(f"expected [H, W] with positive integers, got {resolution!r}", "resolution")
        for name in ("thr_q", "thr_m"):
            if not _is_number(obj[name]):
                fail(f"expected a finite number, got {obj[name]!r}", name)
        extra = {k: v for k, v in obj.items() if k not in HEADER_FIELDS}
        return cls(obj["dataset"], obj["split"], obj["backend"], (resolution[0], resolution[1]),
                   float(obj["thr_q"]), float(obj["thr_m"]), extra)


# -- values --------------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed (non-finite number)")


def rle_counts(counts: str) -> list[int]:
    """Run lengths of a COCO compressed RLE string (pycocotools ``rleFrString``), checked.

    Each run is LEB128-like: 5-bit groups offset by 48 (characters '0'..'o'), 0x20 = more groups,
    0x10 in the last group = negative; runs after the second are stored as the difference to the run
    two places before. Raises ValueError on a bad character, a truncated run or a negative run.
    """
    runs: list[int] = []
    position, length = 0, len(counts)
    while position < length:
        value, shift, more = 0, 0, True
        while more:
            if position >= length:
                raise ValueError("the counts string ends inside a run")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"invalid character {counts[position]!r} at offset {position} of the counts")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError(f"run {len(runs)} of the counts is negative ({value})")
        runs.append(value)
    return runs


def decode_mask(rle: dict, size: Sequence[int]) -> np.ndarray:
    """Bool mask [H, W] of an RLE whose size must be ``size``; the counts are checked before decoding."""
    height, width = int(size[0]), int(size[1])
    runs = rle_counts(rle["counts"])
    total = sum(runs)
    if total != height * width:
        raise ValueError(f"the runs of the counts cover {total} pixels, expected H*W = {height * width}")
    # Runs alternate 0, 1, 0, ... over the column-major (Fortran) pixel order, as pycocotools decodes
    # them; decoding here avoids pycocotools' unchecked C decoder and its numpy 2 deprecation warning.
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(width, height).T.copy()


# -- one sample ----------------------------------------------------------------------------------------
def prediction_to_json(sample_id: SampleId, prediction: Prediction, resolution: Sequence[int]) -> dict:
    """The JSON object of one sample; raises ValueError naming the sample on bad input."""
    if isinstance(sample_id, np.integer):
        sample_id = int(sample_id)
    if not (_is_int(sample_id) or isinstance(sample_id, str)):
        raise ValueError(f"sample {sample_id!r}: sample_id must be an int or a str")
    scores = np.asarray(prediction.scores, dtype=np.float32)
    boxes = np.asarray(prediction.boxes, dtype=np.float32)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if scores.ndim != 1 or boxes.ndim != 2 or boxes.shape != (len(scores), 4):
        raise ValueError(f"sample {sample_id!r}: expected boxes [N,4] and scores [N], got {boxes.shape} "
                         f"and {scores.shape}")
    if not (np.isfinite(scores).all() and np.isfinite(boxes).all()):
        raise ValueError(f"sample {sample_id!r}: boxes and scores must be finite")
    if (scores[:-1] < scores[1:]).any():
        raise ValueError(f"sample {sample_id!r}: scores must be sorted descending (boxes in the same order)")
    mask = np.asarray(prediction.mask)
    if mask.shape != tuple(resolution):
        raise ValueError(f"sample {sample_id!r}: mask has shape {mask.shape}, expected the header resolution "
                         f"{tuple(resolution)}")
    if mask.dtype != bool:
        raise ValueError(f"sample {sample_id!r}: mask must be bool, got {mask.dtype}")
    # tolist() turns each float32 into the Python float of the same value; json writes its repr.
    return {"sample_id": sample_id, "boxes": boxes.tolist(), "scores": scores.tolist(),
            "mask": encode_mask(mask)}


def prediction_from_json(obj: Any, resolution: Sequence[int], path: Union[str, os.PathLike] = "<predictions>",
                         line: Optional[int] = None) -> tuple[SampleId, Prediction]:
    """(sample_id, Prediction) of one sample object; raises PredictionsFileError naming the problem."""
    sample_id = obj.get("sample_id") if isinstance(obj, dict) else None
    sample_id = sample_id if _is_int(sample_id) or isinstance(sample_id, str) else None

    def fail(message, name=None):
        raise PredictionsFileError(path, message, line=line, sample_id=sample_id, field_name=name)

    if not isinstance(obj, dict):
        fail(f"a sample must be a JSON object, got {type(obj).__name__}")
    for name in SAMPLE_FIELDS:
        if name not in obj:
            fail(f"missing; a sample has the fields {list(SAMPLE_FIELDS)}", name)
    unknown = sorted(set(obj) - set(SAMPLE_FIELDS))
    if unknown:
        fail(f"unknown fields {unknown}; a sample has the fields {list(SAMPLE_FIELDS)}", unknown[0])
    if sample_id is None:
        fail(f"expected an int or a string, got {obj['sample_id']!r}", "sample_id")

    boxes, scores = obj["boxes"], obj["scores"]
    if not isinstance(boxes, list) or not all(
            isinstance(b, list) and len(b) == 4 and all(_is_number(v) for v in b) for b in boxes):
        fail("expected a list of [x1, y1, x2, y2] with finite numbers", "boxes")
    if not isinstance(scores, list) or not all(_is_number(v) for v in scores):
        fail("expected a list of finite numbers", "scores")
    if len(scores) != len(boxes):
        fail(f"{len(scores)} scores for {len(boxes)} boxes", "scores")
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.array(scores, dtype=np.float32)
    if (scores[:-1] < scores[1:]).any():
        fail("scores must be sorted descending", "scores")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        fail("boxes must satisfy x2 >= x1 and y2 >= y1 (xyxy)", "boxes")

    rle = obj["mask"]
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"} or not isinstance(rle["counts"], str):
        fail('expected {"size": [H, W], "counts": "<RLE string>"}', "mask")
    if rle["size"] != [int(resolution[0]), int(resolution[1])]:
        fail(f"size {rle['size']!r} differs from the header resolution {list(resolution)}", "mask")
    try:
        mask = decode_mask(rle, resolution)
    except ValueError as error:
        fail(str(error), "mask")
    return sample_id, Prediction(boxes=boxes, scores=scores, mask=mask)


# -- writing -------------------------------------------------------------------------------------------
class PredictionsWriter:
    """Streams samples to ``path`` atomically.

    Use as a context manager: the file appears at ``path`` when the block ends without an exception
    (``commit``); on an exception the temporary file is removed and ``path`` is left as it was.
    Duplicate sample ids and samples that do not match the header resolution raise ValueError.
    """

    def __init__(self, path: Union[str, os.PathLike], header: PredictionsHeader) -> None:
        self.path = os.fspath(path)
        self.header = header
        self.count = 0
        self._seen: set = set()
        directory = os.path.dirname(os.path.abspath(self.path))
        self._temp_path = os.path.join(
            directory, f".{os.path.basename(self.path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        header_line = json.dumps(header.to_json(), separators=(",", ":"), allow_nan=False)
        try:
            self._file = open(self._temp_path, "x", encoding="utf-8")
        except OSError as error:
            raise PredictionsFileError(self.path, f"cannot create the file: {error}") from error
        try:
            self._file.write(header_line + "\n")
        except BaseException:
            self.abort()
            raise

    def write(self, sample_id: SampleId, prediction: Prediction) -> None:
        self.write_encoded(prediction_to_json(sample_id, prediction, self.header.resolution))

    def write_encoded(self, obj: dict) -> None:
        """Write one sample already encoded by ``prediction_to_json`` (what distributed runs gather)."""
        sample_id = obj["sample_id"]
        key = int(sample_id) if isinstance(sample_id, np.integer) else sample_id
        if key in self._seen:
            raise ValueError(f"sample {sample_id!r}: written twice to {self.path}")
        self._file.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        self._seen.add(key)
        self.count += 1

    def commit(self) -> None:
        """Flush, fsync and rename the temporary file onto ``path``."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp_path, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written; ``path`` is not touched."""
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self._temp_path):
            os.remove(self._temp_path)

    def __enter__(self) -> "PredictionsWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_predictions(path: Union[str, os.PathLike], header: PredictionsHeader,
                      items: Iterable[tuple[SampleId, Prediction]]) -> int:
    """Write header and (sample_id, Prediction) items atomically; returns the number of samples."""
    with PredictionsWriter(path, header) as writer:
        for sample_id, prediction in items:
            writer.write(sample_id, prediction)
    return writer.count


# -- reading -------------------------------------------------------------------------------------------
def _parse_line(text: str, path, line: int) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise PredictionsFileError(path, f"invalid JSON: {error}", line=line) from None


def read_header(path: Union[str, os.PathLike]) -> PredictionsHeader:
    """The validated header (line 1) of a predictions file."""
    try:
        with open(path, encoding="utf-8") as file:
            first = file.readline()
    except OSError as error:
        raise PredictionsFileError(path, f"cannot read the file: {error}") from None
    except UnicodeDecodeError as error:
        raise PredictionsFileError(path, f"not UTF-8 text: {error}", line=1) from None
    if not first.strip():
        raise PredictionsFileError(path, "empty file; expected a header line", line=1)
    return PredictionsHeader.from_json(_parse_line(first, path, 1), path, 1)


def read_predictions(path: Union[str, os.PathLike]) -> tuple[PredictionsHeader, Iterator[tuple[SampleId, Prediction]]]:
    """(header, iterator of (sample_id, Prediction)); the header is checked now, samples as they are read."""
    header = read_header(path)
    return header, _iter_samples(path, header)


def _iter_samples(path, header: PredictionsHeader) -> Iterator[tuple[SampleId, Prediction]]:
    first_line_of: dict = {}
    with open(path, encoding="utf-8") as file:
        file.readline()
        line = 1
        while True:
            try:
                text = file.readline()
            except UnicodeDecodeError as error:
                raise PredictionsFileError(path, f"not UTF-8 text: {error}", line=line + 1) from None
            if not text:
                return
            line += 1
            if not text.strip():
                raise PredictionsFileError(path, "blank line; expected one JSON object per line", line=line)
            sample_id, prediction = prediction_from_json(_parse_line(text, path, line), header.resolution,
                                                         path, line)
            if sample_id in first_line_of:
                raise PredictionsFileError(path, f"duplicate sample, first on line {first_line_of[sample_id]}",
                                           line=line, sample_id=sample_id, field_name="sample_id")
            first_line_of[sample_id] = line
            yield sample_id, prediction


def load_predictions(path: Union[str, os.PathLike], expected_ids: Optional[Iterable[SampleId]] = None
                     ) -> tuple[PredictionsHeader, dict]:
    """(header, {sample_id: Prediction} in file order); with ``expected_ids``, the file must hold exactly
    those samples: missing or unexpected ones raise PredictionsFileError naming them."""
    header, samples = read_predictions(path)
    predictions = dict(samples)
    if expected_ids is not None:
        expected = list(expected_ids)
        expected_set = set(expected)
        missing = [s for s in expected if s not in predictions]
        if missing:
            raise PredictionsFileError(path, f"{len(missing)} samples of the dataset are missing, first "
                                             f"{missing[:5]!r}", sample_id=missing[0])
        unexpected = [s for s in predictions if s not in expected_set]
        if unexpected:
            raise PredictionsFileError(path, f"{len(unexpected)} samples are not in the dataset, first "
                                             f"{unexpected[:5]!r}", sample_id=unexpected[0])
    return header, predictions
