"""instancevg: InstanceVG from PyTorch to TensorRT, with parity proven benchmark by benchmark."""
from setuptools import find_packages, setup

TRITON = ["tritonclient[http]>=2.51", "grpcio>=1.63", "packaging>=14.1", "protobuf>=6.30"]

setup(
    name="instancevg",
    version="0.1.0",
    description="Deployment toolchain for InstanceVG (generalized visual grounding): PyTorch model, "
                "ONNX export, TensorRT plugins and engines, evaluation on the paper's benchmarks",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["instancevg", "instancevg.*", "export", "export.*", "engines",
                                    "engines.*", "evaluation", "evaluation.*"]),
    package_data={"instancevg": ["assets/*"], "engines": ["data/*.json", "triton/model_templates/*.py"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.6",
        "numpy>=1.24",
        "scipy>=1.10",
        "sentencepiece>=0.2",
        "pycocotools>=2.0.7",
        "opencv-python-headless>=4.8",
        "pillow>=10.1",
        "tqdm>=4.60",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "onnxruntime-extensions>=0.15",  # the plugin kernels as ONNX Runtime custom operators
        "onnxscript>=0.2",
        "polygraphy>=0.49",
    ],
    # Triton clients and the model-config schema: tritonclient's own "grpc" extra pins protobuf < 7, which
    # sentencepiece's generated code (protobuf 7) refuses, so its gRPC needs are listed here without that pin
    # (tritonclient.grpc works with protobuf 7).
    extras_require={
        "test": ["pytest>=8", *TRITON],
        # TensorRT engines (instancevg-build-engine, --engine of instancevg-debug-precision, the tensorrt backend)
        "tensorrt": ["tensorrt>=10,<12", "polygraphy>=0.49"],
        # ONNX Runtime's CUDA provider; it replaces onnxruntime (uninstall that first: both own the module)
        "gpu": ["onnxruntime-gpu>=1.18"],
        "triton": TRITON,
    },
    entry_points={
        "console_scripts": [
            "instancevg-predict=instancevg.cli.predict:main",
            "instancevg-train=evaluation.train_cli:main",
            "instancevg-convert=instancevg.cli.convert:main",
            "instancevg-synthetic=instancevg.cli.make_synthetic:main",
            "instancevg-export=export.cli:main",
            "instancevg-eval=evaluation.cli:main",
            "instancevg-build-engine=engines.cli:main",
            "instancevg-triton=engines.triton.cli:main",
            "instancevg-bench=evaluation.bench:main",
            "instancevg-demo=evaluation.demo:main",
            "instancevg-debug-precision=export.debug_precision:main",
        ],
    },
)
