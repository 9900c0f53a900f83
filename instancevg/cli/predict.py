"""instancevg-predict: ground one expression in one image with the PyTorch model.

    instancevg-predict IMAGE "the two people on the left" --config gres-base --checkpoint CKPT \
        --tokenizer beit3.spm -o out/pred

Writes PREFIX.png (overlay: merged mask, selected instance masks in distinct colours, their boxes
with score labels, selected points, a "no target" label when nothing is selected, and a caption band
under the image with the expression and the outcome) and PREFIX.json (every query's box, score,
point and selection flag in original-image pixels, the merged mask as COCO RLE, the existence
probability; the image size as "height" and "width", and as "size" in the order "size_order" names,
height first like the RLE's "size").
Without IMAGE/EXPRESSION the bundled sample is used; without --checkpoint the bundled checkpoint of the
config (tiny) is used, and where none is bundled the command refuses unless --random-weights.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import bundled
from ..data.masks import encode_mask
from ..data.tokenizer import Tokenizer
from ..data.transforms import read_image
from ..inference import Predictor, load_model, resolve_files
from ..model.precision import apply_fp16_policy
from ..io import atomic_path, write_json_atomic
from ..postprocess import rescale_prediction
from ..visualize import draw_overlay
from .arguments import (CommandError, add_model_arguments, add_output_argument, add_plugins_argument,
                        add_runtime_arguments, apply_plugins, check_writable, make_parser, model_config,
                        run_command)


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-predict", __doc__)
    p.add_argument("image", nargs="?", help="image file (default: the bundled sample)")
    p.add_argument("expression", nargs="?", help="referring expression (default: the sample's)")
    add_output_argument(p, "output prefix: writes PREFIX.png and PREFIX.json", default="prediction")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-weights (default: 0)")
    post = p.add_argument_group("post-processing")
    post.add_argument("--thr-q", type=float, help="query score threshold, strict > (default: the config's, 0.7)")
    post.add_argument("--thr-m", type=float, help="mask probability threshold, >= (default: the config's, 0.5)")
    post.add_argument("--out-mask", choices=("merge", "global", "instance"),
                      help="output mask mode (default: the config's, merge)")
    post.add_argument("--nms", action="store_true", help="apply NMS (IoU 0.7) before selecting queries")
    add_model_arguments(p)
    add_runtime_arguments(p)
    add_plugins_argument(p)
    return p


def output_paths(prefix: str) -> tuple[Path, Path]:
    """PREFIX.png, PREFIX.json."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".png"), prefix.with_name(prefix.name + ".json")


def run(args: argparse.Namespace) -> dict:
    if (args.image is None) != (args.expression is None):
        raise CommandError("give both IMAGE and EXPRESSION, or neither (bundled sample)")
    png, js = output_paths(args.output)
    for path in (png, js):
        check_writable(path, "-o")
    apply_plugins(args)
    image_path, expression = (args.image, args.expression) if args.image else bundled.sample()
    cfg, checkpoint, tokenizer_path = resolve_files(model_config(args), args.checkpoint, args.tokenizer,
                                                    args.random_weights)
    changes = {k: v for k, v in (("thr_q", args.thr_q), ("thr_m", args.thr_m), ("out_mask", args.out_mask))
               if v is not None}
    if args.nms:
        changes["nms"] = True
    post = cfg.postprocess if not changes else type(cfg.postprocess)(**{**cfg.postprocess.__dict__, **changes})
    rgb = read_image(image_path)
    model = load_model(cfg, checkpoint, args.device, args.seed, trusted=args.trust_checkpoint)
    if args.precision == "fp16":
        apply_fp16_policy(model)
    predictor = Predictor(model, Tokenizer(tokenizer_path, cfg.max_tokens), post, args.device, args.ops, args.tf32)
    pred = rescale_prediction(predictor.predict([rgb], [expression])[0], rgb.shape[0], rgb.shape[1])
    record = {
        "image": str(image_path), "expression": expression, "config": cfg.name,
        "checkpoint": str(checkpoint) if checkpoint else None, "random_weights": checkpoint is None,
        "height": int(rgb.shape[0]), "width": int(rgb.shape[1]),
        "size": [int(rgb.shape[0]), int(rgb.shape[1])], "size_order": ["height", "width"], "thr_q": post.thr_q, "thr_m": post.thr_m,
        "out_mask": post.out_mask, "exist_prob": pred.exist_prob, "no_target": not bool(pred.selected.any()),
        "queries": [{"query": int(q), "score": float(s), "box_xyxy": [float(v) for v in b],
                     "point_xy": [float(v) for v in pt], "selected": bool(sel)}
                    for q, s, b, pt, sel in zip(pred.query_index, pred.scores, pred.boxes, pred.points,
                                                pred.selected)],
        "mask": encode_mask(pred.mask),
    }
    with atomic_path(png) as tmp:
        draw_overlay(rgb, pred, expression).save(tmp, format="PNG")
    write_json_atomic(js, record)
    n = int(pred.selected.sum())
    print(f"{image_path}: {expression!r} -> {n} target(s)" + (" (no target)" if n == 0 else "")
          + f"; wrote {png} and {js}")
    return record


def predict(args: argparse.Namespace) -> int:
    run(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-predict", predict, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
