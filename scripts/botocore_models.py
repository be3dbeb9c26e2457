"""The service models botocore ships, for the scripts that generate the package's tables."""

import gzip
import json
import os

import botocore


def load_json(path):
    """A JSON file, gzip-compressed or not."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def latest_model(service_dir):
    """The service-2.json(.gz) of the newest API version of one service folder, or None."""
    for version in sorted(os.listdir(service_dir), reverse=True):
        for name in ("service-2.json.gz", "service-2.json"):
            path = os.path.join(service_dir, version, name)
            if os.path.isfile(path):
                return path
    return None


def service_models():
    """(folder, model): the newest model of every service botocore knows, in folder order."""
    data_dir = os.path.join(os.path.dirname(botocore.__file__), "data")
    for folder in sorted(os.listdir(data_dir)):
        service_dir = os.path.join(data_dir, folder)
        if not os.path.isdir(service_dir):
            continue
        path = latest_model(service_dir)
        if path is not None:
            yield folder, load_json(path)
