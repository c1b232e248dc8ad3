#!/usr/bin/env python3
"""The benchmark suite (gen + eval over synthetic scenes); same as `voyager-pipe bench`.

    python tools/benchmark.py [--quick] [--work DIR] [--size WxH] [--cases LIST] [--backend warp] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import sys

from voyager_pipe.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
