"""Readers of every benchmark in both input formats, and the registry (see ``registry`` for the layout)."""
from instancevg.data.datasets.base import DatasetError, SampleDataset
from instancevg.data.datasets.registry import (BENCHMARKS, FORMATS, ORIGINAL, UNIFIED, Benchmark,
                                               available_benchmarks, detect_format, get_benchmark,
                                               open_dataset)

__all__ = ["BENCHMARKS", "FORMATS", "ORIGINAL", "UNIFIED", "Benchmark", "DatasetError", "SampleDataset",
           "available_benchmarks", "detect_format", "get_benchmark", "open_dataset"]
