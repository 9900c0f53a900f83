"""instancevg-synthetic: write a synthetic data root (coloured shapes) in every dataset format.

    instancevg-synthetic -o DATA --num-images 300 --seed 0 --formats unified,original --image-size 160

The layout is described in instancevg/data/synthetic.py; open_dataset(name, split, DATA) reads it.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from instancevg.cli.arguments import (add_output_argument, add_progress_argument, check_writable, make_parser,
                                     run_command)
from instancevg.data.synthetic import FORMAT_CHOICES, generate


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("instancevg-synthetic", __doc__)
    add_output_argument(parser, "data root to write (created if needed)", required=True)
    parser.add_argument("--num-images", type=int, default=40, help="number of scenes (default: 40, minimum 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    parser.add_argument("--formats", default=",".join(FORMAT_CHOICES),
                        help="comma-separated subset of unified,original (default: both)")
    parser.add_argument("--image-size", type=int, default=160, help="long image side in pixels (default: 160)")
    add_progress_argument(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    check_writable(args.output, "-o", "folder")
    start = time.perf_counter()
    summary = generate(args.output, num_images=args.num_images, seed=args.seed, formats=formats,
                       image_size=args.image_size, progress=not args.no_progress)
    refs = ", ".join(f"{name} {count}" for name, count in summary["benchmarks"].items())
    print(f"wrote {summary['scenes']} images and {'/'.join(formats)} annotations to {args.output} in "
          f"{time.perf_counter() - start:.1f} s (refs: {refs})")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    return run_command("instancevg-synthetic", run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
