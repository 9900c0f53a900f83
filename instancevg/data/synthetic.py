"""Synthetic grounding data: coloured shapes with exact masks, written in every dataset format.

``generate(output, num_images, seed)`` draws ``num_images`` scenes (2-5 non-overlapping shapes on a grey
background), then builds every benchmark's original release from them (refer pickles / grefs JSON +
``instances.json``), and converts those into the official unified JSONs with ``instancevg-convert``'s
function. Layout under ``output`` (the data root of ``open_dataset``)::

    images/mscoco/train2014/COCO_train2014_%012d.jpg     every scene, JPEG quality 95
    images/mscoco/trainval2014/COCO_train2014_%012d.jpg  the same images for Ref-ZOM
    refcoco/ refcoco+/ refcocog/ grefcoco/ ref-zom/ rrefcoco/ rrefcoco+/ rrefcocog/   original releases
    annotations/mixed-seg/instances_nogoogle.json  annotations/grefs/instances.json
    annotations/ref-zom/instance.json  annotations/rrefcoco/instance.json (+ instance_index.json)

Every benchmark uses every scene, with its own split partition (like RefCOCO and RefCOCO+, which share
images). Segmentations in ``instances.json`` are polygons, compressed RLE and uncompressed RLE (about
one in six each for the RLE kinds); masks are painted from the decoded segmentation, so the image shows
exactly the GT. Expressions name one shape ("the red circle", "the circle on the left"), several
("all blue shapes", "both squares") or none ("the green triangle" when there is none). Everything is a
function of ``seed``: the same seed writes byte-identical files.
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import cv2
import numpy as np
from tqdm import tqdm

from instancevg.data.datasets.registry import BENCHMARKS, Benchmark
from instancevg.data.masks import coco_mask, decode_segmentation, encode_mask, uncompressed_rle
from instancevg.data.tokenizer import clean_expression
from instancevg.io import atomic_path

SHAPES = ("circle", "square", "triangle", "diamond", "hexagon")
PLURALS = {shape: shape + "s" for shape in SHAPES}
COLORS = {  # RGB
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (240, 210, 40), "purple": (140, 60, 180), "orange": (245, 135, 30),
}
FUNCTION_WORDS = ("the", "a", "all", "every", "both", "two", "three", "shape", "shapes", "one", "that", "is",
                  "on", "at", "in", "left", "right", "top", "bottom", "leftmost", "rightmost", "picture")
# Every word an expression can hold after cleaning (lowercase, punctuation removed): the corpus of the
# tiny SentencePiece tokenizer.
VOCABULARY: tuple[str, ...] = tuple(sorted(set(FUNCTION_WORDS) | set(COLORS) | set(SHAPES)
                                           | set(PLURALS.values())))
FORMAT_CHOICES = ("unified", "original")
BACKGROUND = (200, 200, 200)
JPEG_QUALITY = 95
EVAL_FRACTION = 0.1  # share of the images in each evaluation split (at least one image each)
IMAGE_NAME = "COCO_train2014_%012d.jpg"
FIRST_IMAGE_ID = 1000


@dataclass(frozen=True)
class ShapeObject:
    """One shape: its COCO annotation (ann_id, bbox [x,y,w,h], segmentation as stored) and attributes."""

    ann_id: int
    shape: str
    color: str
    center: tuple[float, float]
    radius: float
    segmentation: Any
    bbox: list
    area: int


@dataclass(frozen=True)
class Scene:
    image_id: int
    width: int
    height: int
    objects: tuple[ShapeObject, ...]

    @property
    def file_name(self) -> str:
        return IMAGE_NAME % self.image_id


# ------------------------------------------------------------------------------------------ scenes
def _polygon(shape: str, cx: float, cy: float, r: float, width: int, height: int) -> list[float]:
    """Vertices [x1, y1, ...] of a shape of circumradius r (2-decimal coordinates inside the image)."""
    count, phase = {"circle": (24, 0.0), "square": (4, np.pi / 4), "triangle": (3, -np.pi / 2),
                    "diamond": (4, 0.0), "hexagon": (6, 0.0)}[shape]
    angles = phase + np.arange(count) * 2 * np.pi / count
    xs = np.clip(np.round(cx + r * np.cos(angles), 2), 0, width)
    ys = np.clip(np.round(cy + r * np.sin(angles), 2), 0, height)
    return [float(v) for xy in zip(xs, ys) for v in xy]


def _stored_segmentation(polygon: list[float], mask: np.ndarray, kind: int) -> Any:
    """The object's segmentation in one of three COCO forms (kind 0: compressed RLE, 3: uncompressed)."""
    if kind == 0:
        return encode_mask(mask)
    if kind == 3:
        return uncompressed_rle(mask)
    return [polygon]


def make_scene(rng: np.random.Generator, image_id: int, image_size: int) -> Scene:
    """2-5 non-overlapping shapes; the first one's (color, shape) pair is unique in the scene, so every
    scene has a single-target expression without location words."""
    short = int(rng.integers(int(0.7 * image_size), image_size + 1))
    width, height = (image_size, short) if rng.random() < 0.5 else (short, image_size)
    palette = rng.choice(list(COLORS), size=int(rng.integers(2, 4)), replace=False)
    kinds = rng.choice(SHAPES, size=int(rng.integers(2, 4)), replace=False)
    objects: list[ShapeObject] = []
    placed: list[tuple[float, float, float]] = []
    for k in range(int(rng.integers(2, 6))):
        color, shape = str(rng.choice(palette)), str(rng.choice(kinds))
        if k > 0 and (color, shape) == (objects[0].color, objects[0].shape):
            continue
        r = float(rng.uniform(0.09, 0.17) * min(width, height))
        for _ in range(40):
            cx, cy = float(rng.uniform(r + 1, width - r - 1)), float(rng.uniform(r + 1, height - r - 1))
            if all((cx - x) ** 2 + (cy - y) ** 2 > (r + q + 3) ** 2 for x, y, q in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        polygon = _polygon(shape, cx, cy, r, width, height)
        mask = decode_segmentation([polygon], height, width)
        ann_id = image_id * 10 + k
        rle = coco_mask().encode(np.asfortranarray(mask.astype(np.uint8)))
        objects.append(ShapeObject(
            ann_id=ann_id, shape=shape, color=color, center=(round(cx, 2), round(cy, 2)), radius=r,
            segmentation=_stored_segmentation(polygon, mask, (image_id + k) % 6),
            bbox=[float(v) for v in coco_mask().toBbox(rle)], area=int(mask.sum())))
    return Scene(image_id=image_id, width=width, height=height, objects=tuple(objects))


def render(scene: Scene) -> np.ndarray:
    """Image [H,W,3] uint8 RGB: a soft grey gradient, each shape painted over its decoded GT mask."""
    ramp = np.linspace(-12, 12, scene.width, dtype=np.float32)[None, :, None]
    image = np.clip(np.asarray(BACKGROUND, np.float32)[None, None] + ramp, 0, 255)
    image = np.repeat(image, scene.height, axis=0).astype(np.uint8)
    for obj in scene.objects:
        image[decode_segmentation(obj.segmentation, scene.height, scene.width)] = COLORS[obj.color]
    return image


def encode_jpeg(image_rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()


# ------------------------------------------------------------------------------------------ language
def _unique(objects: Iterable[ShapeObject], **attrs) -> list[ShapeObject]:
    return [o for o in objects if all(getattr(o, k) == v for k, v in attrs.items())]


def _extreme(objects: list[ShapeObject], axis: int, gap: float) -> tuple[Optional[ShapeObject], Optional[ShapeObject]]:
    """(lowest, highest) object along an axis when each stands clear of the next by ``gap`` pixels."""
    if len(objects) < 2:
        return None, None
    ordered = sorted(objects, key=lambda o: o.center[axis])
    low = ordered[0] if ordered[1].center[axis] - ordered[0].center[axis] > gap else None
    high = ordered[-1] if ordered[-1].center[axis] - ordered[-2].center[axis] > gap else None
    return low, high


def single_expressions(scene: Scene, obj: ShapeObject, locations: bool = True) -> list[str]:
    """Expressions naming exactly ``obj`` (attributes, then location words when ``locations``)."""
    objs, out = scene.objects, []
    c, s = obj.color, obj.shape
    if len(_unique(objs, color=c, shape=s)) == 1:
        out += [f"the {c} {s}", f"the {s} that is {c}"]
    if len(_unique(objs, shape=s)) == 1:
        out.append(f"the {s}")
    if len(_unique(objs, color=c)) == 1:
        out += [f"the {c} shape", f"the {c} one"]
    if locations:
        same = _unique(objs, shape=s)
        for axis, words, size in ((0, ("on the left", "on the right"), scene.width),
                                  (1, ("at the top", "at the bottom"), scene.height)):
            low, high = _extreme(same, axis, 0.08 * size)
            if low is obj:
                out.append(f"the {s} {words[0]}")
            if high is obj:
                out.append(f"the {s} {words[1]}")
        low, high = _extreme(list(objs), 0, 0.08 * scene.width)
        if low is obj:
            out.append("the leftmost shape")
        if high is obj:
            out.append("the rightmost shape")
    return out


def group_referents(scene: Scene) -> list[tuple[tuple[int, ...], list[str]]]:
    """(object indices, expressions) for sets of two or more shapes (same colour, same shape, all)."""
    out = []
    count_word = {2: "two", 3: "three"}
    for c in COLORS:
        idx = tuple(i for i, o in enumerate(scene.objects) if o.color == c)
        if len(idx) >= 2:
            exprs = [f"all {c} shapes", f"every {c} shape", f"the {c} shapes"]
            exprs += [f"both {c} shapes"] if len(idx) == 2 else []
            exprs += [f"the {count_word[len(idx)]} {c} shapes"] if len(idx) in count_word else []
            out.append((idx, exprs))
    for s in SHAPES:
        idx = tuple(i for i, o in enumerate(scene.objects) if o.shape == s)
        if len(idx) >= 2:
            exprs = [f"all {PLURALS[s]}", f"the {PLURALS[s]}", f"every {s}"]
            exprs += [f"both {PLURALS[s]}"] if len(idx) == 2 else []
            exprs += [f"the {count_word[len(idx)]} {PLURALS[s]}"] if len(idx) in count_word else []
            out.append((idx, exprs))
    if len(scene.objects) >= 2:
        out.append((tuple(range(len(scene.objects))), ["all shapes", "every shape", "all the shapes"]))
    return out


def absent_expressions(scene: Scene) -> list[str]:
    """Expressions that name nothing in the scene (a colour/shape pair, colour or shape absent)."""
    out = []
    for c in COLORS:
        if not _unique(scene.objects, color=c):
            out += [f"the {c} shape", f"all {c} shapes"]
        for s in SHAPES:
            if not _unique(scene.objects, color=c, shape=s):
                out.append(f"the {c} {s}")
    for s in SHAPES:
        if not _unique(scene.objects, shape=s):
            out += [f"the {s}", f"all {PLURALS[s]}"]
    return out


# ------------------------------------------------------------------------------------------ releases
class _Counter:
    def __init__(self):
        self.value = 0

    def __call__(self) -> int:
        self.value += 1
        return self.value


def _sentences(rng: np.random.Generator, exprs: list[str], count: int, next_id: _Counter,
               style: str = "", **extra) -> list[dict]:
    """refer sentences {sent_id, raw, sent, tokens}: ``count`` distinct expressions; a quarter of the raw
    texts are capitalised with a full stop (the tokenizer's cleaning removes that again)."""
    picked = rng.choice(len(exprs), size=min(count, len(exprs)), replace=False)
    out = []
    for i in sorted(int(p) for p in picked):
        text = exprs[i] + (" in the picture" if style == "long" else "")
        raw = text[0].upper() + text[1:] + "." if rng.random() < 0.25 else text
        sent = clean_expression(raw)
        out.append({"sent_id": next_id(), "raw": raw, "sent": sent, "tokens": sent.split(), **extra})
    return out


def _ref(ref_id: int, scene: Scene, split: str, ann_id: Any, category_id: Any, sentences: list[dict],
         tag: int, **extra) -> dict:
    return {"ref_id": ref_id, "image_id": scene.image_id, "split": split, "ann_id": ann_id,
            "category_id": category_id, "file_name": "COCO_train2014_%012d_%d.jpg" % (scene.image_id, tag),
            "sent_ids": [s["sent_id"] for s in sentences], "sentences": sentences, **extra}


def _category(obj: ShapeObject) -> int:
    return SHAPES.index(obj.shape) + 1


def assign_splits(benchmark: Benchmark, scenes: list[Scene], rng: np.random.Generator) -> dict[int, str]:
    """image_id -> split: each evaluation split gets max(1, round(EVAL_FRACTION * N)) images, train the rest."""
    order = [scenes[int(i)].image_id for i in rng.permutation(len(scenes))]
    per_split = max(1, int(round(EVAL_FRACTION * len(scenes))))
    assignment, start = {}, 0
    for split in benchmark.splits:
        for image_id in order[start:start + per_split]:
            assignment[image_id] = split
        start += per_split
    for image_id in order[start:]:
        assignment[image_id] = benchmark.train_split
    return assignment


def build_refs(benchmark: Benchmark, scenes: list[Scene], rng: np.random.Generator) -> list[dict]:
    """The refs list of one benchmark's original release (scene order; ids count from 1)."""
    splits = assign_splits(benchmark, scenes, rng)
    ref_ids, sent_ids, refs = _Counter(), _Counter(), []
    locations = benchmark.name not in ("refcoco+", "rrefcoco+")  # RefCOCO+ forbids location words
    style = "long" if benchmark.name in ("refcocog", "rrefcocog") else ""
    for scene in scenes:
        split = splits[scene.image_id]
        singles = [(o, single_expressions(scene, o, locations)) for o in scene.objects]
        singles = [(o, e) for o, e in singles if e][:3]
        absent = absent_expressions(scene)
        groups = group_referents(scene)
        if benchmark.family == "refcoco":
            for obj, exprs in singles:
                refs.append(_ref(ref_ids(), scene, split, obj.ann_id, _category(obj),
                                 _sentences(rng, exprs, int(rng.integers(1, 3)), sent_ids, style), obj.ann_id))
        elif benchmark.family == "rrefcoco":
            for obj, exprs in singles[:2]:
                positives = _sentences(rng, exprs, int(rng.integers(1, 3)), sent_ids, style)
                for k, sent in enumerate(positives):
                    if k % 2:  # a missing "exist" means positive; write it on every other one
                        sent["exist"] = True
                negatives = _sentences(rng, absent, int(rng.integers(1, 3)), sent_ids, style, exist=False)
                refs.append(_ref(ref_ids(), scene, split, obj.ann_id, _category(obj), positives + negatives,
                                 obj.ann_id))
        elif benchmark.family == "grefcoco":
            obj, exprs = singles[0]
            targets = [((obj,), exprs)]
            if groups:
                idx, gexprs = groups[int(rng.integers(len(groups)))]
                targets.append((tuple(scene.objects[i] for i in idx), gexprs))
            for objs, exprs in targets:
                refs.append(_ref(ref_ids(), scene, split, [o.ann_id for o in objs], [_category(o) for o in objs],
                                 _sentences(rng, exprs, int(rng.integers(1, 3)), sent_ids), objs[0].ann_id,
                                 no_target=False))
            refs.append(_ref(ref_ids(), scene, split, [-1], [-1],
                             _sentences(rng, absent, int(rng.integers(1, 3)), sent_ids), -1, no_target=True))
        elif benchmark.family == "refzom":
            obj, exprs = singles[0]
            refs.append(_ref(ref_ids(), scene, split, obj.ann_id, _category(obj),
                             _sentences(rng, exprs, 1, sent_ids), obj.ann_id, source="one"))
            if groups:
                idx, gexprs = groups[int(rng.integers(len(groups)))]
                objs = [scene.objects[i] for i in idx]
                refs.append(_ref(ref_ids(), scene, split, [o.ann_id for o in objs], [_category(o) for o in objs],
                                 _sentences(rng, gexprs, 1, sent_ids), objs[0].ann_id, source="many"))
            refs.append(_ref(ref_ids(), scene, split, [], [], _sentences(rng, absent, 1, sent_ids), 0,
                             source="zero"))
    return refs


def coco_instances(scenes: list[Scene]) -> dict:
    """The COCO ``instances.json`` of the scenes (images, annotations, categories)."""
    return {
        "images": [{"id": s.image_id, "file_name": s.file_name, "width": s.width, "height": s.height}
                   for s in scenes],
        "annotations": [{"id": o.ann_id, "image_id": s.image_id, "category_id": _category(o),
                         "bbox": o.bbox, "area": o.area, "iscrowd": 0, "segmentation": o.segmentation}
                        for s in scenes for o in s.objects],
        "categories": [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)],
    }


# ------------------------------------------------------------------------------------------ writing
def _write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_original_release(root: str, benchmark: Benchmark, refs: list[dict], instances: bytes) -> None:
    """refs file (pickle protocol 2, or gRefCOCO's JSON) + instances.json in ``root/<original_dir>``."""
    import json

    folder = os.path.join(root, benchmark.original_dir)
    refs_name = benchmark.original_refs[0]
    if refs_name.endswith(".json"):
        _write_bytes(os.path.join(folder, refs_name), json.dumps(refs).encode("utf-8"))
    else:
        _write_bytes(os.path.join(folder, refs_name), pickle.dumps(refs, protocol=2))
    _write_bytes(os.path.join(folder, "instances.json"), instances)


def generate(output: str, num_images: int = 40, seed: int = 0, formats: Iterable[str] = FORMAT_CHOICES,
             image_size: int = 160, progress: bool = False) -> dict[str, Any]:
    """Write a synthetic data root at ``output``; returns {"scenes", "benchmarks": {name: ref count}}.

    formats: any of "unified" and "original" (the unified JSONs are converted from the original
    releases, written to a temporary folder when "original" is not asked for).
    """
    import json

    from instancevg.cli.convert import convert_release

    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMAT_CHOICES]
    if unknown or not formats:
        raise ValueError(f"formats {formats!r}: expected a non-empty subset of {FORMAT_CHOICES}")
    min_images = 1 + max(len(b.splits) for b in BENCHMARKS.values())
    if num_images < min_images:
        raise ValueError(f"num_images={num_images}: at least {min_images} are needed (one per split)")
    if image_size < 48:
        raise ValueError(f"image_size={image_size}: expected at least 48 pixels")
    rng = np.random.default_rng(seed)
    scenes = [make_scene(rng, FIRST_IMAGE_ID + i, image_size) for i in range(num_images)]
    for scene in tqdm(scenes, desc="synthetic images", unit="image", leave=False, disable=not progress):
        data = encode_jpeg(render(scene))
        _write_bytes(os.path.join(output, "images/mscoco/train2014", scene.file_name), data)
        _write_bytes(os.path.join(output, "images/mscoco/trainval2014", scene.file_name), data)

    instances = json.dumps(coco_instances(scenes)).encode("utf-8")
    original_root = output if "original" in formats else tempfile.mkdtemp(prefix="instancevg-synthetic-")
    counts = {}
    try:
        for b, benchmark in enumerate(BENCHMARKS.values()):
            refs = build_refs(benchmark, scenes, np.random.default_rng([seed, b]))
            write_original_release(original_root, benchmark, refs, instances)
            counts[benchmark.name] = len(refs)
        if "unified" in formats:
            families: dict[str, list[str]] = {}
            for benchmark in BENCHMARKS.values():
                families.setdefault(benchmark.family, []).append(benchmark.name)
            for names in families.values():
                convert_release(names, original_root, output, progress=progress)
    finally:
        if original_root != output:
            shutil.rmtree(original_root, ignore_errors=True)
    return {"scenes": len(scenes), "benchmarks": counts}


def train_tokenizer(output: str, vocab_size: int = 96) -> str:
    """Train the tiny model's SentencePiece tokenizer on the synthetic vocabulary (deterministic).

    Every vocabulary word becomes a whole piece (``user_defined_symbols``); the character pieces cover
    any other word. Identity normalisation keeps the file small (the expressions are cleaned and
    lowercased before tokenisation anyway). Returns ``output``.
    """
    import io

    import sentencepiece as spm

    letters = sorted(set("".join(VOCABULARY)) | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    corpus = [" ".join(VOCABULARY)] + [" ".join(letters)] * 4
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        user_defined_symbols=[f"\u2581{w}" for w in VOCABULARY], character_coverage=1.0,
        normalization_rule_name="identity", hard_vocab_limit=False, num_threads=1, minloglevel=2)
    _write_bytes(output, model.getvalue())
    return output
