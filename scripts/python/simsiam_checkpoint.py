"""Load a SimSiam Lab checkpoint in Keras 3 / TensorFlow and embed images as the engine does.

A checkpoint folder (<run>/checkpoints/step-NNNNNNNN/) holds a TensorFlow.js LayersModel:
model.json (the Keras topology under "modelTopology", the weights' names, shapes and order under
"weightsManifest") and weights.bin (every weight as little-endian float32, back to back in the
manifest's order). See docs/PYTHON.md for the contract this module follows.

Usage as a script (a small example):
    python simsiam_checkpoint.py <run folder> <image> [<image> ...]
prints each image's embedding's first values and its cosine to the first image.
"""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

# ImageNet statistics the engine normalises with (src/training/data/augment.ts).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Outputs of the model, in order (src/training/model/simsiam.ts): backbone features (the
# embedding), projector output z, predictor output p.
EMBEDDING_OUTPUT = 0


def checkpoint_folder(path: str) -> str:
    """The checkpoint folder `path` names: a checkpoint folder itself, or a run folder (its current one)."""
    if os.path.isfile(os.path.join(path, "model.json")):
        return path
    pointer = os.path.join(path, "checkpoint.json")
    if not os.path.isfile(pointer):
        raise FileNotFoundError(f"{path} is neither a checkpoint folder (no model.json) nor a run folder with a checkpoint "
                                "(no checkpoint.json): pass <run> or <run>/checkpoints/step-NNNNNNNN.")
    with open(pointer, encoding="utf-8") as f:
        return os.path.join(path, json.load(f)["dir"])


def read_weights(folder: str) -> dict[str, np.ndarray]:
    """The checkpoint's weights by their tfjs names ("<layer>/<weight>", e.g. "stem_bn/moving_mean")."""
    with open(os.path.join(folder, "model.json"), encoding="utf-8") as f:
        model_json = json.load(f)
    values: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        # A group's shards are one byte stream cut into files; tfjs writes one shard, weights.bin.
        data = b"".join(open(os.path.join(folder, shard), "rb").read() for shard in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] != "float32":
                raise ValueError(f"{folder}/model.json: weight {spec['name']} is {spec['dtype']}; checkpoints hold float32 only.")
            count = math.prod(spec["shape"])
            values[spec["name"]] = np.frombuffer(data, dtype="<f4", count=count, offset=offset).reshape(spec["shape"])
            offset += 4 * count
        if offset != len(data):
            raise ValueError(f"{folder}: the weight files hold {len(data)} bytes, model.json describes {offset}.")
    return values


def load_model(path: str):
    """The whole SimSiam model (three outputs) as a keras.Model with the checkpoint's weights."""
    from keras.src.legacy.saving import saving_utils

    folder = checkpoint_folder(path)
    with open(os.path.join(folder, "model.json"), encoding="utf-8") as f:
        topology = json.load(f)["modelTopology"]
    # tfjs writes a Keras 2-style functional config: only standard layers (InputLayer, Conv2D,
    # BatchNormalization, ReLU, Add, MaxPooling2D, GlobalAveragePooling2D, Dense), so no
    # custom_objects are needed.
    model = saving_utils.model_from_config(topology)
    values = read_weights(folder)
    unused = set(values)
    for layer in model.layers:
        for weight in layer.weights:
            name = f"{layer.name}/{weight.name}"
            if name not in values:
                raise KeyError(f"{folder}/model.json has no weight {name} for layer {layer.name}.")
            weight.assign(values[name])
            unused.discard(name)
    if unused:
        raise KeyError(f"{folder}/model.json holds weights no layer takes: {sorted(unused)[:5]}")
    return model


def embedding_model(model):
    """A keras.Model from images to the embedding: l2-normalised backbone features (eval mode)."""
    import keras

    features = model.outputs[EMBEDDING_OUTPUT]
    # x / max(|x|, 1e-12): the engine's l2Normalize, x / sqrt(max(|x|², 1e-24)). A built-in layer,
    # so the embedding model saves to .keras and loads back without custom objects.
    normalised = keras.layers.UnitNormalization(axis=-1, name="l2_normalize")(features)
    return keras.Model(model.inputs, normalised, name="simsiam_embedding")


def _taps(start: float, length: float, out_size: int, limit: int) -> np.ndarray:
    """Weights (out_size × limit) of the engine's resampler along one axis: a triangle filter
    widened by the downscale factor (PIL's bilinear with its box argument), clamped to the image."""
    scale = length / out_size
    support = max(scale, 1.0)
    weights = np.zeros((out_size, limit), dtype=np.float64)
    for o in range(out_size):
        center = start + (o + 0.5) * scale
        lo = max(0, math.floor(center - support + 0.5))
        hi = min(limit, math.floor(center + support + 0.5))
        taps = np.array([max(0.0, 1 - abs((i - center + 0.5) / support)) for i in range(lo, hi)])
        weights[o, lo:hi] = taps / taps.sum()
    return weights


def _round_half_even(value: float) -> int:
    return int(round(value))  # Python's round() is half-to-even, as the engine's


def decode(path: str, size: int) -> np.ndarray:
    """uint8 RGB (H × W × 3) as the engine decodes: images whose shorter side exceeds `size` are
    first downscaled so that it equals `size`. The engine does this with libvips (lanczos3); here
    TensorFlow's lanczos3 stands in, so only such images differ slightly from the engine's pixels.
    Transparency is flattened onto black and grey becomes RGB, as in the engine; EXIF orientation
    is not applied here (the engine applies it)."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    if image.shape[-1] in (2, 4):  # transparency is flattened onto black, as the engine does
        colour, alpha = tf.cast(image[..., :-1], tf.float32), tf.cast(image[..., -1:], tf.float32)
        image = tf.cast(tf.floor(colour * alpha / 255.0), tf.uint8)  # libvips truncates
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    height, width = int(image.shape[0]), int(image.shape[1])
    short = min(width, height)
    if short > size:
        new_h, new_w = (size, round(width * size / height)) if height == short else (round(height * size / width), size)
        image = tf.image.resize(tf.cast(image, tf.float32), (new_h, new_w), method="lanczos3", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image.numpy()


def center_view(image: np.ndarray, size: int) -> np.ndarray:
    """The engine's evaluation view (src/training/data/augment.ts centerView): the shorter side
    resized to `size`, the centre square cut, as size × size × 3 float32 normalised with the
    ImageNet mean and std."""
    height, width = image.shape[:2]
    short = min(width, height)
    resized_w = size if width == short else (size * width) // short
    resized_h = size if height == short else (size * height) // short
    x_scale, y_scale = width / resized_w, height / resized_h
    left = _round_half_even((resized_w - size) / 2) * x_scale
    top = _round_half_even((resized_h - size) / 2) * y_scale
    wx = _taps(left, size * x_scale, size, width)
    wy = _taps(top, size * y_scale, size, height)
    pixels = np.einsum("oy,yxc,px->opc", wy, image.astype(np.float64) / 255.0, wx)
    return ((pixels.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def preprocess(path: str, size: int) -> np.ndarray:
    return center_view(decode(path, size), size)


def embed(model, files: list[str], size: int | None = None, batch: int = 64) -> np.ndarray:
    """Embeddings (len(files) × dims float32) of image files with an embedding_model."""
    size = size or int(model.inputs[0].shape[1])
    rows = []
    for start in range(0, len(files), batch):
        views = np.stack([preprocess(f, size) for f in files[start:start + batch]])
        rows.append(np.asarray(model([views], training=False)))
    return np.concatenate(rows) if rows else np.zeros((0, int(model.outputs[0].shape[1])), np.float32)


def load_npy_export(npy: str) -> tuple[np.ndarray, list[str]]:
    """`simsiam export --format npy` output: the vectors and, for row i, its image's path relative
    to the dataset root ('/'-separated), from <file without .npy>.paths.json."""
    vectors = np.load(npy)
    paths_file = (npy[:-4] if npy.lower().endswith(".npy") else npy) + ".paths.json"
    with open(paths_file, encoding="utf-8") as f:
        paths = json.load(f)
    if len(paths) != vectors.shape[0]:
        raise ValueError(f"{paths_file} lists {len(paths)} paths for the {vectors.shape[0]} rows of {npy}: export again.")
    return vectors, paths


def dataset_root(run: str) -> str:
    """The dataset folder a run trained on, from its run.json."""
    with open(os.path.join(run, "run.json"), encoding="utf-8") as f:
        return json.load(f)["dataset"]["root"]


def _main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().split("Usage as a script (a small example):")[1].strip(), file=sys.stderr)
        return 2
    model = embedding_model(load_model(argv[0]))
    vectors = embed(model, argv[1:])
    for file, vector in zip(argv[1:], vectors):
        print(f"{file}: [{', '.join(f'{v:.4f}' for v in vector[:4])}, ...] ({vector.size} dims), "
              f"cosine to the first {float(vector @ vectors[0]):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
