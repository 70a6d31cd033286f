"""Checks a projector folder (`simsiam export <run> --format projector`) with TensorBoard's own
projector plugin: the plugin reads projector_config.pbtxt as `tensorboard --logdir <folder>`
would, and this asks it for what the projector's web client asks for (runs, config, tensor,
metadata, sprite image), then checks the answers against each other and, given --npy, against
the embeddings of `simsiam export --format npy`.

    python check_projector.py <projector folder> [--npy embeddings.npy] [--json]

Exit status 0 when it loads and everything agrees, 1 when not, 3 when tensorboard (or the
TensorFlow it reads files with) is not installed.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.dont_write_bytecode = True  # leave no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The projector's web client refuses larger sprite images (vz_projector's data provider).
MAX_SPRITE_SIDE = 8192


def plugin_client(folder: str):
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.projector import projector_plugin
    from werkzeug import test, wrappers

    context = base_plugin.TBContext(logdir=folder, data_provider=None)
    plugin = projector_plugin.ProjectorPlugin(context)
    apps = plugin.get_plugin_apps()

    def get(route: str, **query):
        client = test.Client(apps[route], wrappers.Response)
        response = client.get(route, query_string=query)
        return response.status_code, response.get_data()
    return get


def check(folder: str, npy: str | None) -> dict:
    import numpy as np
    import tensorflow as tf

    problems: list[str] = []
    get = plugin_client(folder)
    status, body = get("/runs")
    runs = json.loads(body) if status == 200 else []
    if runs != ["."]:
        return {"ok": False, "problems": [f"the plugin found runs {runs} (status {status}), not the folder itself"]}
    status, body = get("/info", run=".")
    config = json.loads(body) if status == 200 else {}
    embeddings = config.get("embeddings", [])
    if len(embeddings) != 1:
        return {"ok": False, "problems": [f"the config lists {len(embeddings)} embeddings (status {status}: {body[:200]!r})"]}
    embedding = embeddings[0]
    name = embedding["tensorName"]
    rows, dims = (int(v) for v in embedding["tensorShape"])

    status, body = get("/tensor", run=".", name=name)
    tensor = np.frombuffer(body, dtype="<f4") if status == 200 else np.zeros(0, np.float32)
    if tensor.size != rows * dims:
        problems.append(f"the tensor has {tensor.size} values (status {status}), the config says {rows} × {dims}")
    tensor = tensor.reshape(-1, dims) if tensor.size % dims == 0 else tensor.reshape(1, -1)
    max_difference = None
    if npy:
        import simsiam_checkpoint as sc
        exported, paths = sc.load_npy_export(npy)
        if exported.shape != tensor.shape:
            problems.append(f"the tensor's shape {tensor.shape} is not the npy export's {exported.shape}")
        else:
            max_difference = float(np.abs(exported - tensor).max()) if exported.size else 0.0
            if max_difference > 1e-6:
                problems.append(f"the tensor differs from the npy export by up to {max_difference:g}")

    status, body = get("/metadata", run=".", name=name)
    lines = body.decode("utf-8").split("\n") if status == 200 else []
    if lines and lines[-1] == "":
        lines.pop()
    header = lines[0].split("\t") if lines else []
    if header[:2] != ["path", "class"]:
        problems.append(f"metadata.tsv's header is {header} (status {status}), not path, class[, split]")
    if len(lines) - 1 != rows:
        problems.append(f"metadata.tsv has {len(lines) - 1} rows for {rows} points")
    if any(len(line.split("\t")) != len(header) for line in lines):
        problems.append("some metadata.tsv row has another number of fields than its header")
    if npy and not problems:
        metadata_paths = [line.split("\t")[0] for line in lines[1:]]
        if metadata_paths != [p.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r") for p in paths]:
            problems.append("metadata.tsv's paths are not the npy export's, in its order")

    sprite = embedding.get("sprite")
    sprite_size = None
    if sprite:
        status, body = get("/sprite_image", run=".", name=name)
        if status != 200:
            problems.append(f"the plugin did not serve the sprite (status {status}: {body[:200]!r})")
        else:
            image = tf.io.decode_image(body).numpy()
            sprite_size = [int(image.shape[1]), int(image.shape[0])]
            side_w, side_h = (int(v) for v in sprite["singleImageDim"])
            columns = math.ceil(math.sqrt(rows))
            if image.shape[1] != columns * side_w or image.shape[0] != math.ceil(rows / columns) * side_h:
                problems.append(f"the sprite is {sprite_size[0]}×{sprite_size[1]}; {rows} thumbnails of {side_w}×{side_h} "
                                f"on a {columns}-column grid need {columns * side_w}×{math.ceil(rows / columns) * side_h}")
            if max(sprite_size) > MAX_SPRITE_SIDE:
                problems.append(f"the sprite is {sprite_size[0]}×{sprite_size[1]}, over the projector's {MAX_SPRITE_SIDE} px")
    return {"ok": not problems, "problems": problems, "tensorName": name, "points": rows, "dims": dims, "columns": header,
            "sprite": sprite_size, "maxDifferenceToNpy": max_difference}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--npy", help="the same run's `simsiam export --format npy` file, to compare the tensor with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        import numpy  # noqa: F401
        import tensorboard
        import tensorflow  # noqa: F401
    except ImportError as error:
        print(f"tensorboard/tensorflow is not installed for {sys.executable} ({error}): pip install tensorflow-cpu tensorboard.", file=sys.stderr)
        return 3
    result = check(args.folder, args.npy)
    result["tensorboard"] = tensorboard.__version__
    if args.json:
        print(json.dumps(result))
    elif result["ok"]:
        print(f"TensorBoard {result['tensorboard']}'s projector plugin loads {args.folder}: {result['points']} points of "
              f"{result['dims']} dims, metadata columns {result['columns']}, sprite {result['sprite']}")
    else:
        print(f"TensorBoard {result['tensorboard']}'s projector plugin does not load {args.folder} as expected:\n  " +
              "\n  ".join(result["problems"]))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
