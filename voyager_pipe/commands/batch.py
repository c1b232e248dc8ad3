"""`voyager-pipe batch`: many `gen` jobs from a JSON Lines manifest, as Ray tasks."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "batch", help="run many gen jobs (a JSON Lines manifest) on a local or existing Ray cluster",
        description="Run one gen job per manifest line as Ray tasks. Each line is a JSON object with name, image, "
                    "trajectory and optional depth, prompt, seed, config (YAML path) and overrides "
                    "({\"generate.steps\": 4}); paths are relative to the manifest. Finished outputs are skipped, "
                    "interrupted ones resumed; a failing job does not stop the others. Writes DIR/<name>/ per job "
                    "and DIR/batch.json; exits 1 if any job failed.")
    parser.add_argument("manifest", metavar="MANIFEST", help="JSON Lines file, one job per line")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the jobs' output folders and batch.json")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="concurrent jobs of the local Ray instance (default: one per GPU, or 1 on CPU); "
                             "ignored with --address")
    parser.add_argument("--address", metavar="ADDR",
                        help="existing Ray cluster (host:port, ray://host:port, or auto); default: start a local one")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from voyager_pipe.batch import format_table, read_manifest, run_batch

    jobs = read_manifest(args.manifest)
    results = run_batch(jobs, args.out, workers=args.workers, address=args.address, progress=not args.no_progress,
                        manifest=str(args.manifest))
    print(format_table(results))
    failed = sum(r.status == "failed" for r in results)
    print(f"voyager-pipe batch: {len(results) - failed}/{len(results)} jobs ok or skipped, {failed} failed "
          f"-> {args.out}/batch.json")
    return 1 if failed else 0
