"""Entry point of the child processes the workloads start (``run_child``): sets the memory
limit, calls ``module:function(**args)`` and prints its result as one JSON line."""

from __future__ import annotations

import importlib
import json
import resource
import sys


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("mem"):
        resource.setrlimit(resource.RLIMIT_AS, (spec["mem"], spec["mem"]))
    mod, _, name = spec["func"].partition(":")
    result = getattr(importlib.import_module(mod), name)(**spec["args"])
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
