"""``vssid-gateway prompts build|check``: render the hotline's prompts, or check they are there.

``build`` writes ``<out>/<language>/vssid/*.wav`` and ``<out>/<language>/digits/0..9.wav`` (8 kHz
mono 16-bit WAV, Asterisk's layout) from the texts in ``[ivr.prompts]`` and ``[ivr.digits]``;
unchanged texts are not rendered again. ``check`` exits non-zero, naming the missing files, if
the IVR could not start with the current ``[ivr] sounds_dir``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from gateway.config import Settings
from ivr import prompts


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "prompts", parents=parents, help="render or check the hotline's voice prompts"
    )
    actions = parser.add_subparsers(dest="prompts_action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", parents=parents, help="render prompt texts to 8 kHz WAV files"
    )
    build.add_argument(
        "--engine",
        choices=prompts.ENGINES,
        default=None,
        help="text-to-speech engine (default: [ivr] prompt_engine)",
    )
    build.add_argument(
        "--out", metavar="DIR", default=None, help="sounds folder (default: [ivr] sounds_dir)"
    )
    build.set_defaults(handler=run_build)
    check = actions.add_parser(
        "check", parents=parents, help="check every prompt the dialog uses exists"
    )
    check.set_defaults(handler=run_check)


def run_build(args: argparse.Namespace, settings: Settings) -> int:
    ivr = settings.ivr
    engine_name, why = prompts.choose_engine(
        args.engine or ivr.prompt_engine, ffmpeg=shutil.which("ffmpeg")
    )
    if why != "as asked":
        print(f"prompt engine: {engine_name} ({why})")
    out = Path(args.out or ivr.sounds_dir)
    try:
        engine = prompts.engine_named(engine_name, ivr.language)
        rendered = prompts.build(prompts.prompt_texts(ivr), out, ivr.language, engine, engine_name)
    except prompts.PromptError as error:
        print(f"vssid-gateway prompts: {error}", file=sys.stderr)
        return 1
    total = len(prompts.prompt_texts(ivr))
    print(
        f"{len(rendered)} of {total} prompts rendered with {engine_name} into {out / ivr.language}"
        f" ({total - len(rendered)} unchanged)"
    )
    return 0


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    try:
        prompts.require_prompts(settings.ivr)
    except prompts.PromptError as error:
        print(f"vssid-gateway prompts: {error}", file=sys.stderr)
        return 1
    print(f"all prompts present under {settings.ivr.sounds_dir}/{settings.ivr.language}")
    return 0
