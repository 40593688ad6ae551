# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "add_config_arguments",
    "config_from_args",
    "fail",
    "add_train_arguments",
    "train_settings",
    "RUN_FILES",
    "run_train",
]


# cell 145
import argparse
import json
import sys
from contextlib import nullcontext
from dataclasses import MISSING, asdict, fields
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tinylm_core.bpe_tokenizer import BPETokenizer
from tinylm_core.char_tokenizer import CharTokenizer
from tinylm_core.checkpoint import CHECKPOINT_NAME
from tinylm_core.datasets import TokenWindowDataset
from tinylm_core.downloads import load_corpus
from tinylm_core.files import atomic_file
from tinylm_core.metrics import plot_metrics
from tinylm_core.model import TransformerLM
from tinylm_core.model_config import ModelConfig
from tinylm_core.runtime import RunDirectoryInUse, RunLock, join_process_group
from tinylm_core.settings import RECIPES, TrainingConfig, TrainRun, field_type
from tinylm_core.trainer import Trainer


# cell 148
def _parse(kind, optional):
    """argparse `type` for a field: int, float or str, and 'none' for an optional field."""

    def parse(text):
        if optional and text.lower() == "none":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def _default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


# cell 149
def add_config_arguments(parser, config_class, *, exclude=(), aliases=None, title=None):
    """Add a flag for each field of the dataclass `config_class` (but those in `exclude`):
    --field-name (plus `aliases[name]`), typed and explained by the field, "(default: ...)" taken
    from it. Flags left out are absent from the parsed args. Returns the argument group."""
    group = parser.add_argument_group(title or config_class.__name__)
    for f in fields(config_class):
        if f.name in exclude:
            continue
        kind, optional = field_type(f)
        text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        options = dict(
            dest=f.name, default=argparse.SUPPRESS, help=f"{text} (default: {_default(f)})"
        )
        if kind is bool:  # --resume; --progress / --no-progress when it is on by default
            options["action"] = argparse.BooleanOptionalAction if f.default else "store_true"
        else:
            options.update(type=_parse(kind, optional), choices=f.metadata.get("choices"))
        flags = [f"--{f.name.replace('_', '-')}", *(aliases or {}).get(f.name, [])]
        group.add_argument(*flags, **options)
    return group


# cell 150
def config_from_args(config_class, args, **base):
    """config_class(**base), with every flag given on the command line on top. Errors become a
    ValueError that names the flag (--learning-rate) instead of the field."""
    given = {f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)}
    try:
        return config_class(**{**base, **given})
    except (TypeError, ValueError) as e:
        message = str(e)
        for f in sorted(fields(config_class), key=lambda f: -len(f.name)):
            flag = f"--{f.name.replace('_', '-')}"
            message = message.replace(f"{config_class.__name__}.{f.name}", flag)
        raise ValueError(message) from None


def fail(message):
    """Print one `error: ...` line to stderr; return exit status 2 (a usage error)."""
    print(f"error: {message}", file=sys.stderr)
    return 2


# cell 156
def add_train_arguments(parser):
    """The flags of `python -m tinylm_core train`, derived from TrainRun and TrainingConfig."""
    add_config_arguments(parser, TrainRun, title="the run")
    aliases = {"learning_rate": ["--lr"]}
    add_config_arguments(parser, TrainingConfig, aliases=aliases, title="training (TrainingConfig)")
    recipes = "".join(f"\n  {name}: {_describe(recipe)}" for name, recipe in RECIPES.items())
    parser.epilog = (parser.epilog or "") + (
        "\n\nrecipes (what each sets; a flag given explicitly overrides it):" + recipes
    )
    return parser


def _describe(recipe):
    flat = {**recipe["model"], **recipe["training"]}
    flat.update((k, v) for k, v in recipe.items() if k not in ("model", "training"))
    return ", ".join(f"{k}={v}" for k, v in flat.items())


# cell 157
def train_settings(args):
    """-> (TrainRun, model fields, TrainingConfig): flags given > the recipe > the defaults."""
    default = "none" if hasattr(args, "preset") else TrainRun.recipe  # --preset: no recipe
    name = getattr(args, "recipe", default)
    recipe = RECIPES.get(name, {})
    shape = {k: recipe[k] for k in ("block_size", "batch_size", "max_steps") if k in recipe}
    run = config_from_args(TrainRun, args, recipe=name, **shape)
    training = config_from_args(TrainingConfig, args, **recipe.get("training", {}))
    model = dict(recipe.get("model", {}))
    model.update(
        (k, getattr(run, k))
        for k in ("dropout", "positional_encoding")
        if getattr(run, k) is not None
    )
    return run, model, training


# cell 159
RUN_FILES = (CHECKPOINT_NAME, "metrics.jsonl", "config.json", "loss.png")


def _check_output(run):
    """-> the files of an earlier run in --out; refused unless --resume or --overwrite."""
    found = [name for name in RUN_FILES if (Path(run.out) / name).exists()]
    if found and not (run.resume or run.overwrite):
        raise ValueError(
            f"{run.out} already holds a run ({', '.join(found)}); pass --resume to continue it, "
            "--overwrite to start over, or another --out"
        )
    if run.resume and CHECKPOINT_NAME not in found:
        print(f"no checkpoint in {run.out} yet: starting a new run there", file=sys.stderr)
    return found


# cell 160
def _tokenize(run):
    """The corpus as one token tensor, and the tokenizer. Errors are ValueErrors naming the file."""
    try:
        text = load_corpus(run.corpus)
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{run.corpus} is not UTF-8 text ({e.reason}); convert it to UTF-8"
        ) from None
    except OSError as e:
        raise ValueError(
            f"cannot read the corpus {run.corpus} ({e.strerror or e}); check the path"
        ) from None
    if run.tokenizer == "char":
        tokenizer = CharTokenizer().build_vocab(text)
    else:
        tokenizer = BPETokenizer.from_gpt2_files()
    return torch.tensor(tokenizer.encode(text), dtype=torch.long), tokenizer


# cell 161
def _build_trainer(run, model_fields, training, tokens, tokenizer):
    train_set, val_set = TokenWindowDataset.train_val(tokens, run.block_size, run.val_fraction)
    config = ModelConfig.from_preset(
        run.preset, tokenizer.get_vocab_size(), max_seq_len=run.block_size, **model_fields
    )
    torch.manual_seed(training.seed)
    return Trainer(
        TransformerLM.from_config(config),
        DataLoader(train_set, batch_size=run.batch_size, shuffle=True),
        DataLoader(val_set, batch_size=run.batch_size),
        output_dir=run.out,
        tokenizer=tokenizer,
        config=training,
    )


def _describe_eval(trainer):
    val_tokens = len(trainer.eval_loader.dataset) * trainer.eval_loader.dataset.block_size
    if trainer.config.eval_batches is None:
        return f"the whole held-out split, {val_tokens:,} tokens"
    return f"the first {trainer.config.eval_batches} batches of the held-out split"


# cell 163
def _write_record(trainer, run):
    """OUT/config.json (every setting) and OUT/loss.png (if matplotlib is there) -> files written."""
    out = Path(run.out)
    settings = {"run": asdict(run), "model": asdict(trainer.raw_model.config)}
    settings["training"] = asdict(trainer.config)
    with atomic_file(out / "config.json") as f:
        f.write(json.dumps(settings, indent=1).encode("utf-8"))
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "note: matplotlib is not installed, so no loss.png (pip install matplotlib)",
            file=sys.stderr,
        )
        return [out / CHECKPOINT_NAME, out / "config.json"]
    fig = plot_metrics(out)
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)
    return [out / CHECKPOINT_NAME, out / "config.json", out / "loss.png"]


# cell 164
def _finish(trainer, run, summary):
    """Write the record of the run, then say what it reached and where everything is."""
    written = _write_record(trainer, run)
    number = lambda value: f"{value:.4f}" if value is not None else "not measured yet"
    print(
        f"step {summary['step']}: train loss {number(summary['train_loss'])}, val loss "
        f"{number(summary['val_loss'])} ({_describe_eval(trainer)}), {summary['elapsed_s']:.0f} s"
    )
    if summary["stopped_early"]:
        print("stopped early: continue with the same command plus --resume")
    print(f"wrote {', '.join(map(str, written))}; metrics: {Path(run.out) / 'metrics.jsonl'}")


# cell 165
def run_train(args):
    """`python -m tinylm_core train`. Exit status: 0 done (or stopped cleanly), 1 diverged,
    2 a usage error (one `error:` line on stderr)."""
    try:
        run, model_fields, training = train_settings(args)
        rank = join_process_group()[1]
        with RunLock(run.out) if rank == 0 else nullcontext():
            found = _check_output(run)
            tokens, tokenizer = _tokenize(run)
            trainer = _build_trainer(run, model_fields, training, tokens, tokenizer)
            if trainer.is_main:
                config = trainer.raw_model.config
                print(
                    f"{config.num_layers} layers x {config.d_model} dim, "
                    f"{trainer.raw_model.num_parameters():,} parameters, vocabulary "
                    f"{config.vocab_size}; {len(tokens):,} tokens; device {trainer.device}"
                )
                for name in found if run.overwrite else ():
                    (Path(run.out) / name).unlink()  # only now: every check has passed
            resume = run.resume and CHECKPOINT_NAME in found
            resume_from = Path(run.out) / CHECKPOINT_NAME if resume else None
            summary = trainer.train(max_steps=run.max_steps, resume_from=resume_from)
            if trainer.is_main:
                _finish(trainer, run, summary)
    except FloatingPointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, RunDirectoryInUse) as e:
        return fail(str(e))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0
