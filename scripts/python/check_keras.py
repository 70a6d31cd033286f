"""Checks that Keras, given a SimSiam Lab checkpoint, reproduces the CLI's exported embeddings.

    python check_keras.py <run folder> <embeddings.npy> [--root <dataset folder>] [--tolerance 1e-4] [--json]

Builds the model from the run's current checkpoint (model.json's topology through Keras 3's
legacy model_from_config, weights from weights.bin), embeds every image the export lists with
the engine's preprocessing (simsiam_checkpoint.py), and compares with the export row by row.
Exit status: 0 when every value is within the tolerance, 1 when not, 2 on a usage or input error,
3 when TensorFlow or Keras is not installed (the message says so). --json prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.dont_write_bytecode = True  # leave no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MISSING_TENSORFLOW = 3


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run folder (its current checkpoint is used) or a checkpoint folder")
    parser.add_argument("embeddings", help="the .npy of `simsiam export <run> --format npy` (its .paths.json beside it)")
    parser.add_argument("--root", help="dataset folder the paths are relative to (default: the run's, from run.json)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed absolute difference (default 1e-4)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)

    try:
        import numpy as np
        import keras
        import tensorflow as tf
    except ImportError as error:
        print(f"TensorFlow/Keras is not installed for {sys.executable} ({error}): "
              "pip install tensorflow-cpu (or run scripts/prepare/python-tensorflow.sh).", file=sys.stderr)
        return MISSING_TENSORFLOW
    import simsiam_checkpoint as sc

    try:
        exported, paths = sc.load_npy_export(args.embeddings)
        root = args.root or sc.dataset_root(args.run)
        model = sc.embedding_model(sc.load_model(args.run))
    except (OSError, ValueError, KeyError) as error:
        print(f"check_keras: {error}", file=sys.stderr)
        return 2
    size = int(model.inputs[0].shape[1])
    files = [os.path.join(root, *p.split("/")) for p in paths]
    embedded = sc.embed(model, files, size)
    difference = np.abs(embedded - exported)
    worst = int(difference.max(axis=1).argmax()) if len(paths) else -1
    result = {
        "ok": bool(len(paths) == 0 or difference.max() <= args.tolerance),
        "images": len(paths),
        "dims": int(exported.shape[1]),
        "imageSize": size,
        "maxAbsDifference": float(difference.max()) if len(paths) else 0.0,
        "worstImage": paths[worst] if worst >= 0 else None,
        "minCosine": float((embedded * exported).sum(axis=1).min()) if len(paths) else 1.0,
        "tolerance": args.tolerance,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "reproduces" if result["ok"] else "does NOT reproduce"
        print(f"Keras {result['keras']} (TensorFlow {result['tensorflow']}) {verdict} {result['images']} exported embeddings "
              f"of {result['dims']} dims: largest difference {result['maxAbsDifference']:.3g} (tolerance {args.tolerance:g}), "
              f"at {result['worstImage']}; lowest cosine {result['minCosine']:.6f}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
