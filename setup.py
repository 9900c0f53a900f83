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
    package_data={"instancevg": ["assets/*"], "engines": ["triton/model_templates/*.py"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.4",
        "numpy>=1.24",
        "scipy>=1.10",
        "transformers>=4.40",
        "sentencepiece>=0.2",
        "pycocotools>=2.0.7",
        "opencv-python-headless>=4.8",
        "pillow>=10",
        "tqdm>=4.60",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "onnxscript>=0.2",
    ],
    # Triton clients and the model-config schema: tritonclient's own "grpc" extra pins protobuf < 7, which
    # transformers' SentencePiece reader (protobuf 7 gencode) refuses, so its gRPC needs are listed here
    # without that pin (tritonclient.grpc works with protobuf 7).
    extras_require={
        "triton": TRITON,
        "test": ["pytest>=8", *TRITON],
    },
    entry_points={
        "console_scripts": [
            "instancevg-predict=instancevg.cli.predict:main",
            "instancevg-train=instancevg.cli.train:main",
            "instancevg-convert=instancevg.cli.convert:main",
            "instancevg-synthetic=instancevg.cli.make_synthetic:main",
            "instancevg-export=export.cli:main",
            "instancevg-eval=evaluation.cli:main",
            "instancevg-build-engine=engines.cli:main",
            "instancevg-triton=engines.triton.cli:main",
            "instancevg-bench=evaluation.bench:main",
            "instancevg-demo=evaluation.demo:main",
        ],
    },
)
