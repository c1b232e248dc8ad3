"""`voyager-pipe convert`: official Voyager weights -> diffusers folder (see docs/voyager_convert.md)."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert the official Voyager checkpoint into a diffusers folder",
        description="Convert the official HunyuanWorld-Voyager release (DeepSpeed .pt transformer + "
        "HunyuanVideo-I2V VAE) into a diffusers-style folder loadable with from_pretrained.",
    )
    parser.add_argument("--src", required=True, metavar="CKPT_DIR",
                        help="the release's ckpts/ folder (holding Voyager/transformers and hunyuan-video-i2v-720p/vae)")
    parser.add_argument("--dst", required=True, metavar="OUT_DIR", help="output folder (transformer/, vae/, model_index.json)")
    parser.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"),
                        help="storage dtype of the transformer (default bf16; the VAE is stored in fp32)")
    context = parser.add_mutually_exclusive_group()
    context.add_argument("--no-context", action="store_true",
                         help="convert the plain transformer even when the _context variant is present")
    context.add_argument("--context", action="store_true",
                         help="require the _context transformer (default: use it when present)")
    parser.add_argument("--no-vae", action="store_true", help="skip the VAE")
    parser.add_argument("--load-key", default="module", help="entry of the .pt file holding the state dict (module | ema)")
    parser.add_argument("--max-shard-size", default="5GB", help="safetensors shard size (default 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace a --dst folder that a previous convert wrote")
    parser.set_defaults(func=run)


def run(args) -> int:
    from voyager_pipe.models.convert import convert_checkpoint

    include_context = False if args.no_context else (True if args.context else "auto")
    report = convert_checkpoint(
        args.src,
        args.dst,
        dtype=args.dtype,
        include_context=include_context,
        include_vae=not args.no_vae,
        load_key=args.load_key,
        max_shard_size=args.max_shard_size,
        overwrite=args.overwrite,
    )
    print(f"transformer: {report.transformer_source} ({report.transformer_tensors} tensors, "
          f"{report.transformer_parameters / 1e9:.2f} B parameters, context block: {report.use_context_block}) "
          f"-> {report.dst_dir / 'transformer'} [{report.dtype}]")
    if report.vae_source is not None:
        print(f"vae: {report.vae_source} ({report.vae_tensors} tensors) -> {report.dst_dir / 'vae'} [fp32]")
    for note in report.notes:
        print(f"note: {note}")
    return 0
