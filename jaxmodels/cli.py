"""`jaxmodels train | eval | sample | fill-mask | export | import | prepare | compile | compare | explain | sweep`.

    jaxmodels train --config experiments/mnist1d_cnn.py --workdir runs/cnn [--config.key=value ...]
    jaxmodels eval --workdir runs/cnn
    jaxmodels sample --workdir runs/shakespeare_char_gpt --prompt "ROMEO:" --num_tokens 300
    jaxmodels sample --model exports/gpt2 --prompt "To be, or not to be" --num_tokens 40 [--top_k 40 --seed 1]
    jaxmodels fill-mask --model exports/bert-base-uncased "Hello, my [MASK] is cute." [--top_k 5]
    jaxmodels export --workdir runs/cnn --out params/cnn [--step N | --best] [--format jaxmodels|hf]
    jaxmodels import --from gpt2 --out exports/gpt2
    jaxmodels compile --config experiments/mnist1d_cnn.py --config.parallel.strategy=fsdp [--json]
    jaxmodels compare runs/cnn runs/cnn_lr3e-3 [--metric test/accuracy] [--mode max|min] [--out DIR]
    jaxmodels explain --workdir runs/cnn --index 7 --method ig --out ig.png
    jaxmodels sweep --config experiments/mnist1d_cnn.py --space experiments/mnist1d_cnn_space.json \
        --workdir sweeps/cnn --trials 20 [--metric test/accuracy] [--mode max|min] [--storage URL] \
        [--sampler tpe|random] [--pruner median|halving|none] [--config.key=value ...]
    jaxmodels sweep --workdir sweeps/cnn [--report]
    jaxmodels prepare --out prepared/photos --config.data.name=images --config.data.dir=photos/ [--config FILE]

`compare` prints one Markdown table, a row per workdir sorted best first: the best value of the metric and its
step, the final value and its step, the steps trained, and the config keys whose values differ between the runs;
--out DIR also writes it as compare.md and compare.csv, with the metric's curves in compare.png.

`sweep` runs Optuna trials, each an ordinary workdir `sweeps/cnn/trial_K`, until exactly --trials have finished
(complete or pruned); the same command (or `--workdir` alone) resumes a stopped sweep, and several workers may run
it at once. It ends with the report (`--report` prints it alone): the trials best first, written as report.md,
report.csv and plots in the sweep dir. docs/sweeps.md has the details.

A user's mistake (bad config, missing data, incompatible checkpoint) prints one line,
`jaxmodels: error: ...`, and exits with status 2; no traceback. SIGTERM or Ctrl-C during training
saves a checkpoint, prints how to resume (the same command) and exits with status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
from typing import Any

from jaxmodels.errors import JaxmodelsError

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxmodels",
        description="Train and evaluate JAX/Flax models from one config file per experiment.",
        epilog="Config overrides: --config.section.key=value, e.g. --config.optimizer.learning_rate=3e-3",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train an experiment (resumes if WORKDIR holds a checkpoint)",
        description="Train an experiment; re-running on the same workdir resumes from its latest checkpoint.",
        epilog="Any number of --config.section.key=value overrides may follow.",
    )
    train.add_argument(
        "--config", required=True, help="experiment file defining get_config(), e.g. experiments/mnist1d_cnn.py"
    )
    train.add_argument(
        "--workdir", required=True, help="directory for checkpoints, config.json, metrics.jsonl, TensorBoard"
    )
    evaluate = commands.add_parser(
        "eval",
        help="evaluate the latest checkpoint of WORKDIR on the eval split",
        description="Restore the latest checkpoint of a workdir and evaluate it; prints one JSON line.",
    )
    evaluate.add_argument("--workdir", required=True, help="a workdir written by `jaxmodels train`")
    sample = commands.add_parser(
        "sample",
        help="generate text with a language model (a workdir's latest checkpoint, or an export)",
        description="Continue a prompt with a language model (task lm: gpt, char_rnn) of a workdir or an export, "
        "such as an imported GPT-2 (`jaxmodels import`), with its tokenizer.",
    )
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="a workdir written by `jaxmodels train` with task lm")
    source.add_argument(
        "--model", metavar="EXPORT", help="an export of a language model (`jaxmodels import`, `export`)"
    )
    sample.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    sample.add_argument("--num_tokens", type=int, default=500, help="how many tokens to generate")
    sample.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy")
    sample.add_argument("--top_k", type=int, default=None, help="sample among the k most likely tokens only")
    sample.add_argument("--seed", type=int, default=0)
    fill_mask = commands.add_parser(
        "fill-mask",
        help="print a masked language model's most probable tokens for each mask of a text",
        description="Fill each mask token of TEXT ([MASK] for a released BERT, <mask> for jaxmodels' own "
        "tokenizers) with a masked language model: its top tokens and their probabilities, per mask.",
    )
    source = fill_mask.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="EXPORT", help="an export of a masked LM (`jaxmodels import`, `export`)")
    source.add_argument("--workdir", help="a workdir written by `jaxmodels train` with task mlm")
    fill_mask.add_argument("text", help='the text, e.g. "Hello, my [MASK] is cute."')
    fill_mask.add_argument("--top_k", type=int, default=5, help="how many tokens to print per mask (default: 5)")
    export = commands.add_parser(
        "export",
        help="write the parameters of a checkpoint for inference or fine-tuning",
        description="Write params (and model state) of a workdir's checkpoint to OUT; prints one JSON line. "
        "A new run starts from them with --config.checkpoint.init_from=OUT.",
    )
    export.add_argument(
        "--workdir", required=True, help="a workdir written by `jaxmodels train` (with --format hf, also an export)"
    )
    export.add_argument("--out", required=True, help="new (or empty) directory for the exported parameters")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--step", type=int, help="the checkpoint at this step (default: the latest)")
    which.add_argument("--best", action="store_true", help="the best checkpoint (needs checkpoint.keep_best)")
    export.add_argument(
        "--format",
        choices=("jaxmodels", "hf"),
        default="jaxmodels",
        help="jaxmodels (default: for init_from, sample, fill-mask) or hf: config.json + model.safetensors + "
        "tokenizer files that transformers' from_pretrained reads (GPT, BERT and ViT models)",
    )
    import_ = commands.add_parser(
        "import",
        help="convert a released model (Hugging Face GPT-2, BERT, ViT; torchvision ResNet) into an export",
        description="Read a downloaded model directory (config.json + model.safetensors, or shards; a torchvision "
        "ResNet state dict in model.safetensors) and write a jaxmodels export of it, with its tokenizer files; "
        "prints one JSON line. docs/pretrained.md lists what is supported.",
    )
    import_.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="DIR",
        help="e.g. from `huggingface-cli download gpt2 --local-dir DIR`",
    )
    import_.add_argument("--out", required=True, help="new (or empty) directory for the export")
    compile_ = commands.add_parser(
        "compile",
        help="compile the train step ahead of time and print its FLOPs and memory per device",
        description="Lower and compile the train step for the config's batch, strategy and mesh without training; "
        "prints FLOPs and XLA's memory analysis per device, so you see whether it fits.",
        epilog="Any number of --config.section.key=value overrides may follow.",
    )
    compile_.add_argument("--config", required=True, help="experiment file defining get_config()")
    compile_.add_argument("--json", action="store_true", help="print the numbers as one JSON line")
    compare = commands.add_parser(
        "compare",
        help="compare workdirs: a metric's best and final value per run, and the config keys that differ",
        # nargs="*" below so that no workdir is our one-line error; the usage still says one is needed
        usage="jaxmodels compare [-h] [--metric METRIC] [--mode {max,min}] [--out DIR] RUN_DIR [RUN_DIR ...]",
        description="Compare runs by one metric: a Markdown table with a row per workdir (best first): the best "
        "value and its step, the final value and its step, the steps trained, and each config key that differs.",
    )
    compare.add_argument("workdirs", nargs="*", metavar="RUN_DIR", help="workdirs written by `jaxmodels train`")
    compare.add_argument("--metric", default="test/accuracy", help="a key of metrics.jsonl (default: test/accuracy)")
    compare.add_argument(
        "--mode", choices=("max", "min"), help="which direction is better (default: min for a *loss metric, else max)"
    )
    compare.add_argument(
        "--out", metavar="DIR", help="also write the table (compare.md, compare.csv) and the curves (compare.png) here"
    )
    explain = commands.add_parser(
        "explain",
        help="draw what a prediction rests on (saliency, integrated gradients) or a Transformer's attention",
        description="Explain example INDEX of a workdir's eval split with its latest checkpoint and write a PNG: "
        "gradient x input, integrated gradients (classifiers of signals or images) or attention maps.",
    )
    explain.add_argument("--workdir", required=True, help="a workdir written by `jaxmodels train`")
    explain.add_argument("--index", type=int, default=0, help="which example of the eval split (default: 0)")
    explain.add_argument("--method", choices=("ig", "saliency", "attention"), default="ig")
    explain.add_argument("--out", required=True, help="the PNG file to write")
    prepare = commands.add_parser(
        "prepare",
        help="convert your own data once into ArrayRecord shards, which stream through Grain at any size",
        description="Read the data that --config.data.* names (images, text, arrays, table, huggingface) record by "
        "record and write it to OUT as a TFDS builder directory; train from it with --config.data.name=tfds_dir "
        "--config.data.dir=OUT.",
        epilog="e.g. jaxmodels prepare --out prepared/photos --config.data.name=images --config.data.dir=photos/",
    )
    prepare.add_argument("--out", required=True, help="new (or empty) folder for the prepared dataset")
    prepare.add_argument("--config", help="experiment file whose data section is read (default: the defaults)")
    sweep = commands.add_parser(
        "sweep",
        help="search hyper-parameters with Optuna: trials are workdirs, pruned through the loop, resumable",
        description="Run (or resume, or join as another worker) a sweep until exactly --trials trials have finished, "
        "then print its report; with --report, only print and write the report.",
        epilog="Any number of --config.section.key=value overrides may follow; they apply to every trial.",
    )
    sweep.add_argument("--workdir", required=True, help="the sweep dir: sweep.json, study.db, trial_K/, report.*")
    sweep.add_argument("--config", help="experiment file defining get_config() (a new sweep)")
    sweep.add_argument("--space", help="search space file, .json or .yaml (a new sweep; docs/sweeps.md)")
    sweep.add_argument("--trials", type=int, help="how many finished trials the sweep ends with")
    sweep.add_argument("--metric", help="the eval metric to optimise (default: test/accuracy)")
    sweep.add_argument("--mode", choices=("max", "min"), help="default: min for a *loss metric, else max")
    sweep.add_argument("--storage", help="an Optuna RDB URL, e.g. postgresql+psycopg2://... (default: study.db)")
    sweep.add_argument("--sampler", choices=("tpe", "random"), help="default: tpe")
    sweep.add_argument("--pruner", choices=("median", "halving", "none"), help="default: median")
    sweep.add_argument(
        "--heartbeat", type=int, default=30, metavar="SECONDS", help="a trial silent for 4 beats is taken over"
    )
    sweep.add_argument("--report", action="store_true", help="only write and print the report of --workdir")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `jaxmodels` command."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    overrides = [item for item in extra if item.startswith("--config.")]
    unknown = [item for item in extra if not item.startswith("--config.")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (config overrides look like --config.key=value)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if overrides and (args.command in ("export", "import", "compare", "explain") or getattr(args, "report", False)):
        parser.error(f"{args.command}{' --report' if args.command == 'sweep' else ''} takes no --config overrides")
    from jaxmodels.preemption import Preempted, PreemptionGuard

    try:
        # train and sweep catch SIGTERM and Ctrl-C from here on, so that one arriving while JAX loads is not lost
        with PreemptionGuard() if args.command in ("train", "sweep") else contextlib.nullcontext():
            return _run_command(args, overrides)
    except Preempted as stop:
        command = shlex.join(["jaxmodels", *(sys.argv[1:] if argv is None else argv)])
        print(f"jaxmodels: {stop}. To resume, run the same command again: {command}", file=sys.stderr)
        return 0
    except JaxmodelsError as error:
        print(f"jaxmodels: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("jaxmodels: interrupted", file=sys.stderr)
        return 130


def _run_command(args: argparse.Namespace, overrides: list[str]) -> int:
    # Imported here so `jaxmodels --help` answers without loading JAX.
    from jaxmodels import run

    if args.command == "compile":
        from jaxmodels.compile_report import format_report

        report = run.compile(run.load_config(args.config, overrides))
        print(_json_line(report) if args.json else format_report(report))
    elif args.command == "train":
        trained = run.train(run.load_config(args.config, overrides), args.workdir)
        print(_json_line({"workdir": args.workdir, **trained.final}))
    elif args.command == "eval":
        loaded = run.load(args.workdir, overrides=overrides)
        print(_json_line({"workdir": args.workdir, "step": loaded.step, **run.evaluate(loaded)}))
    elif args.command == "compare":
        from jaxmodels.compare import compare_runs, format_markdown, write_outputs

        comparison = compare_runs(args.workdirs, args.metric, args.mode)
        if args.out:  # written first: a failure is then the only line printed
            write_outputs(comparison, args.out)
        print(format_markdown(comparison))
    elif args.command == "explain":
        from jaxmodels import explain

        loaded = run.load(args.workdir)
        inputs, explanation = explain.explain(loaded, args.index, args.method)
        title = f"{args.method}: example {args.index} of {loaded.experiment.view.eval_name}, step {loaded.step}"
        print(explain.plot(inputs, explanation, args.method, args.out, title=title))
    elif args.command == "sweep":
        print(_sweep(args, overrides).markdown())
    elif args.command == "prepare":
        print(_json_line(_prepare(args, overrides)))
    elif args.command == "sample":
        loaded = _model_or_run(args, overrides)
        print(run.sample(loaded, args.prompt, args.num_tokens, temperature=args.temperature, top_k=args.top_k,
                         seed=args.seed))  # fmt: skip
    elif args.command == "fill-mask":
        from jaxmodels.masked_lm import fill_mask, format_predictions

        print(format_predictions(args.text, fill_mask(_model_or_run(args, overrides), args.text, args.top_k)))
    elif args.command == "import":
        from jaxmodels.pretrained.importer import import_release

        info = import_release(args.source, args.out)
        print(_json_line({"out": args.out, **{key: value for key, value in info.items() if key != "pretrained"}}))
    elif args.format == "hf":
        from jaxmodels.pretrained.hf_export import export_hf

        print(_json_line(export_hf(args.workdir, args.out, step=args.step, best=args.best)))
    else:
        from jaxmodels.params_io import export_params

        info = export_params(args.workdir, args.out, step=args.step, best=args.best)
        print(_json_line({"out": args.out, **info}))
    return 0


def _model_or_run(args: argparse.Namespace, overrides: list[str]) -> Any:
    """The export of --model, or the latest checkpoint of --workdir (whose saved config the overrides change)."""
    from jaxmodels import exported, run

    if args.model is not None:
        if overrides:
            raise JaxmodelsError(f"{args.command} --model takes no --config overrides (they change a workdir's config)")
        return exported.load_export(args.model)
    return run.load(args.workdir, overrides=overrides)


def _sweep(args: argparse.Namespace, overrides: list[str]) -> Any:
    """`jaxmodels sweep`: run the sweep (its report at the end), or with --report only build and write the report."""
    if args.report:
        options = ("config", "space", "trials", "metric", "mode", "storage", "sampler", "pruner")
        if given := [f"--{name}" for name in options if getattr(args, name) is not None]:
            raise JaxmodelsError(f"sweep --report takes only --workdir; drop {', '.join(given)}")
        from jaxmodels.sweeps.report import write_report

        return write_report(args.workdir)
    from jaxmodels.sweeps.runner import sweep

    return sweep(
        args.workdir, args.config, args.space, num_trials=args.trials, overrides=overrides, metric=args.metric,
        mode=args.mode, storage=args.storage, sampler=args.sampler, pruner=args.pruner,
        heartbeat_interval=args.heartbeat,
    )  # fmt: skip


def _prepare(args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    """`jaxmodels prepare`: converts the data of the config (an experiment file's, or the defaults) with overrides."""
    from jaxmodels import config as config_lib
    from jaxmodels.data.prepare import prepare

    config = config_lib.load_config_file(args.config) if args.config else config_lib.lock(config_lib.base_config())
    prepared = prepare(config_lib.apply_overrides(config, overrides).data, args.out, progress=True)
    if prepared.skipped:
        print(f"jaxmodels: left out {len(prepared.skipped)} unreadable file(s) (data.skip_bad_files), e.g. "
              f"{prepared.skipped[0]}", file=sys.stderr)  # fmt: skip
    return {"out": str(prepared.out), "records": prepared.num_records, "skipped": len(prepared.skipped),
            "seconds": round(prepared.seconds, 1)}  # fmt: skip


def _json_line(value: dict[str, Any]) -> str:
    """`value` as one line of strict JSON: a non-finite metric (a diverged run's NaN loss) is written as null,
    since bare NaN and Infinity are not JSON and strict parsers (jq, JSON.parse) reject them."""
    return json.dumps(_finite_or_null(value), allow_nan=False)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
