"""The CLI reference page, generated from the argument parser of `jaxmodels`: every subcommand and every flag."""

from __future__ import annotations

import argparse

from jaxmodels.cli import _parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of `parser`, name -> its parser, in the order `--help` lists them."""
    (action,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(action.choices)


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    (action,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {choice.dest: choice.help or "" for choice in action._choices_actions}


def _text(value: str) -> str:
    """`value` as the text of a Markdown table cell (no column breaks, no emphasis, no HTML)."""
    return value.replace("|", "\\|").replace("*", "\\*").replace("<", "&lt;")


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if isinstance(action, argparse._StoreTrueAction) or action.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{action.default!r}`"


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    lines = ["| argument | default | choices | what it is |", "|---|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.metavar or action.dest}`"
        if action.option_strings and action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
        choices = ", ".join(f"`{choice}`" for choice in action.choices or ())
        lines.append(f"| {names} | {_default(action)} | {choices} | {_text(action.help or '')} |")
    return lines


def cli_page(parser: argparse.ArgumentParser | None = None) -> str:
    """The Markdown of the CLI reference: the command's usage, then a section per subcommand (target
    `cli-<name>`) with its summary, description, usage and a table of its arguments."""
    parser = parser or _parser()
    summaries = _summaries(parser)
    lines = [
        "# Command line reference",
        "",
        f"{_text(parser.description or '')} Generated from the argument parser; `jaxmodels COMMAND --help` prints",
        "the same.",
        "",
        "```text",
        parser.format_usage().strip(),
        "```",
        "",
        f"{_text(parser.epilog or '')}",
        "",
        "| command | what it does |",
        "|---|---|",
        *(f"| {{ref}}`{name} <cli-{name}>` | {_text(summaries.get(name, ''))} |" for name in subcommands(parser)),
    ]
    for name, command in subcommands(parser).items():
        lines += [
            "",
            f"(cli-{name})=",
            f"## `jaxmodels {name}`",
            "",
            _text(command.description or summaries.get(name, "")),
            "",
            "```text",
            command.format_usage().strip(),
            "```",
            "",
            *_options_table(command),
        ]
        if command.epilog:
            lines += ["", _text(command.epilog)]
    return "\n".join(lines) + "\n"
