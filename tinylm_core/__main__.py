"""Command line: `python -m tinylm_core <command> ...` (or `tinylm <command> ...` once installed).

Written by hand (not generated): it only dispatches to the commands the lessons export.
"""

import argparse
import importlib
import sys

from tinylm_core import __version__

# command -> (module, one-line help, example)
COMMANDS = {
    "train": (
        "tinylm_core.cli",
        "train a model on a corpus and write checkpoints",
        "python -m tinylm_core train --corpus tinyshakespeare --recipe shakespeare-char "
        "--out runs/shakespeare",
    ),
    "generate": (
        "tinylm_core.generate_cli",
        "generate text from a checkpoint, streaming to the terminal",
        'python -m tinylm_core generate --checkpoint runs/shakespeare --prompt "ROMEO:" '
        "--strategy top-p --max-new-tokens 200",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    examples = "\n".join(f"  {example}" for _, _, example in COMMANDS.values())
    parser = argparse.ArgumentParser(
        prog="python -m tinylm_core",
        description="tinylm: train and sample small language models built from scratch.",
        epilog=f"examples:\n{examples}\n\n`python -m tinylm_core COMMAND --help` explains each flag.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tinylm_core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text, example) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        getattr(module, f"add_{name}_arguments")(sub)
        sub.set_defaults(run=getattr(module, f"run_{name}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
