"""How tests/data/golden/ was made from the full golden folder (39 MB; not shipped): every array of at most
128 KiB as it is; larger float arrays as a fixed subset of their elements plus their full max |value|;
binary masks bit-packed; pixels whose golden mask logit lies within 1e-4 of the threshold as bit-packed
"near" masks; the input image replaced by its recipe and checksum (tests/golden.py rebuilds it).

    python tests/data/golden/trim_golden.py FULL_GOLDEN_DIR FULL_STATE_DICT_JSON_DIR
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
from tests.golden import FULL_LIMIT, SUBSET_SIZE, subset_indices  # noqa: E402

NEAR = 1e-4  # |logit| below which a binary mask pixel may flip (golden README, fair tolerances)


def trim(golden: Path) -> dict[str, np.ndarray]:
    full = np.load(golden / "golden_gres_base.npz")
    out: dict[str, np.ndarray] = {}
    for name in full.files:
        a = full[name]
        if name == "input_image":
            out["input_image__sha256"] = np.array(hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest())
            out["input_image__shape"] = np.array(a.shape)
        elif a.dtype == np.uint8:  # binary masks
            out[f"{name}__bits"] = np.packbits(a.astype(bool).ravel())
            out[f"{name}__shape"] = np.array(a.shape)
        elif a.nbytes <= FULL_LIMIT:
            out[name] = a
        else:
            out[f"{name}__subset"] = a.ravel()[subset_indices(name, a.size)]
            out[f"{name}__shape"] = np.array(a.shape)
            out[f"{name}__maxabs"] = np.array(np.abs(a).max(), dtype=np.float64)
    for name, logits in (("near_instance_320", full["instance_mask_logits_320"]),
                         ("near_global_320", full["global_mask_logits_320"][:, 0])):
        out[f"{name}__bits"] = np.packbits((np.abs(logits) < NEAR).ravel())
        out[f"{name}__shape"] = np.array(logits.shape)
    return out


def main(golden: str, facts: str) -> None:
    golden, facts = Path(golden), Path(facts)
    np.savez_compressed(HERE / "golden_gres_base.npz", **trim(golden))
    shutil.copyfile(golden / "golden_gres_base_train.npz", HERE / "golden_gres_base_train.npz")
    shutil.copyfile(golden / "weights_checksums.json", HERE / "weights_checksums.json")
    for name in ("gres_base", "gres_large", "refcoco_base"):
        keys = json.loads((facts / f"official_state_dict_{name}.json").read_text())["keys"]
        (HERE.parent / "official" / f"state_dict_{name}.json").write_text(json.dumps({"keys": keys}, indent=0) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
