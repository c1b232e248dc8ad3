#!/usr/bin/env python3
"""World-cache / preview figures of issue 19 (same as `voyager-pipe bench --cache`); see
voyager_pipe/commands/bench_cache.py."""

from voyager_pipe.commands.bench_cache import main

if __name__ == "__main__":
    raise SystemExit(main())
