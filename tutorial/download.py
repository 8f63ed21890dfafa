"""`pixi run weights`: fetch pretrained GPT-2 into the local HF cache, once.

The checks and `generate` then find it there and never touch the network.
"""

import os
import argparse
import sys

os.environ["HF_HUB_OFFLINE"] = "0"  # the one command allowed to use the network

from tutorial.reference import PRETRAINED, pretrained_file  # noqa: E402
from tutorial import options

FILES = ["config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt", "generation_config.json"]


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="pixi run weights", description=__doc__).parse_args(argv)  # --help only
    if found := pretrained_file():
        print(f"pretrained GPT-2 is already cached: {found}")
        return 0
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(PRETRAINED, allow_patterns=FILES)
    except Exception as error:  # offline, proxy, disk full: say which, without a traceback
        print(f"could not download {PRETRAINED}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"pretrained GPT-2 saved to {path}; checks and generate now use it")
    return 0


if __name__ == "__main__":
    sys.exit(options.run(main, "weights"))
