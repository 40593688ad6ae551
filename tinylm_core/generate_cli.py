# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "STRATEGIES",
    "COMMON",
    "COMMAND_DEFAULTS",
    "add_generate_arguments",
    "generation_config",
    "run_generate",
]


# cell 106
import argparse
import re
import sys
import warnings

from tinylm_core.cli import add_config_arguments, config_from_args, fail
from tinylm_core.generation import GenerationConfig, Generator

# What each --strategy reads besides the common settings, and whether it samples.
STRATEGIES = {
    "greedy": (False, ()),
    "sample": (True, ("temperature", "seed")),
    "top-k": (True, ("temperature", "top_k", "seed")),
    "top-p": (True, ("temperature", "top_p", "seed")),
    "beam": (False, ("num_beams", "length_penalty")),
}
COMMON = ("max_new_tokens", "repetition_penalty", "stop", "use_cache")
# Where the command's defaults differ from GenerationConfig's, on purpose: someone at a terminal
# wants text that reads well (sampling at t = 0.8, a nucleus or a top-k) and long enough to judge.
COMMAND_DEFAULTS = dict(max_new_tokens=200, temperature=0.8, top_k=50, top_p=0.9, num_beams=4)


# cell 107
def _one_line_error(message: str):
    sys.exit(fail(message))


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `python -m tinylm_core generate`: the settings are GenerationConfig's fields
    (help and defaults from there, or from COMMAND_DEFAULTS); --help shows every default."""
    parser.error = _one_line_error  # argparse's own errors: one line too, exit status 2
    add = parser.add_argument
    add("--checkpoint", required=True, help="checkpoint file or run directory")
    add("--prompt", default="", help="text to continue (default: empty, start from BOS)")
    add("--strategy", choices=STRATEGIES, default="top-p", help="how to decode (default: top-p)")
    add(
        "--device", default="auto", help="auto (CUDA if there is one), cpu, cuda... (default: auto)"
    )
    add(
        "--interactive",
        action="store_true",
        help="load once, read prompts line by line (default: off)",
    )
    add(
        "--stop",
        action="append",
        default=[],
        help="stop once this text appears; repeatable (default: none)",
    )
    exclude = ("do_sample", "num_return_sequences", "eos_token_id", "stop")
    group = add_config_arguments(
        parser, GenerationConfig, exclude=exclude, aliases={"use_cache": ["--cache"]},
        title="generation settings (GenerationConfig; each --strategy reads its own)",
    )  # fmt: skip
    for action in group._group_actions:  # show the command's own defaults where they differ
        if action.dest in COMMAND_DEFAULTS:
            shown = f"(default: {COMMAND_DEFAULTS[action.dest]})"
            action.help = re.sub(r"\(default: [^)]*\)", shown, action.help)


def generation_config(args: argparse.Namespace) -> GenerationConfig:
    """The GenerationConfig for --strategy: its own settings and the common ones, as given or by
    default (ValueError naming the setting when one is bad)."""
    do_sample, own = STRATEGIES[args.strategy]
    used = COMMON + own
    given = argparse.Namespace(
        **{name: value for name, value in vars(args).items() if name in used}
    )
    defaults = {name: value for name, value in COMMAND_DEFAULTS.items() if name in used}
    return config_from_args(GenerationConfig, given, do_sample=do_sample, **defaults)


# cell 108
def _continue(generator: Generator, prompt: str, config: GenerationConfig) -> None:
    """Print `prompt` and its continuation (streamed unless beam search), then a summary line."""
    print(prompt, end="", flush=True)
    if config.num_beams > 1:  # the best beam is only known at the end: print it whole
        ids = generator.generate(prompt, config=config, return_dict=True).rows()[0]
        out = generator.last_output
        new = ids[len(ids) - out.new_tokens[0] :][: -1 if out.finish_reason == "eos" else None]
        print(generator.tokenizer.decode(new), end="")
    else:
        for piece in generator.stream(prompt, config=config):
            print(piece, end="", flush=True)
    print()
    out = generator.last_output
    print(f"[{out.new_tokens[0]} tokens, stopped by {out.finish_reason}]", file=sys.stderr)


def run_generate(args: argparse.Namespace) -> int:
    """Load the checkpoint once, then continue --prompt (or each line read, with --interactive)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = lambda message, *_, **__: print(
                f"warning: {message}", file=sys.stderr
            )
            config = generation_config(args)
            generator = Generator.from_checkpoint(args.checkpoint, device=args.device)
            if not args.interactive:
                _continue(generator, args.prompt, config)
                return 0
            print("one prompt per line; an empty line or Ctrl-D ends", file=sys.stderr)
            for line in iter(lambda: input("> "), ""):
                _continue(generator, line.replace("\\n", "\n"), config)
    except (ValueError, TypeError, OSError) as e:  # bad settings, a missing or broken file
        return fail(str(e))
    except EOFError:
        pass
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, with the shell's status for SIGINT
        print(file=sys.stderr)
        return 130
    return 0
