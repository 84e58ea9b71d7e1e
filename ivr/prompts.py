"""Prompt texts to sound files Asterisk can play, and the check that they are all there.

Asterisk looks a prompt up by name in the channel's language folder, so ``STREAM FILE
vssid/menu`` on a ``vi`` channel plays ``<sounds>/vi/vssid/menu.wav`` and ``SAY DIGITS 48``
plays ``<sounds>/vi/digits/4.wav`` then ``8.wav``. We render exactly that layout as 8 kHz mono
16-bit WAV (what Asterisk's ``wav`` format reads without transcoding).

Only fixed texts from the settings are ever rendered: the password and anything about a
caller are spoken with the digit files, never sent to a text-to-speech service. Rendering is
cached by text (a manifest of hashes next to the files), so an unchanged prompt is not
rendered again; gTTS is online, espeak-ng (``-v vi``) is the offline engine.

A missing prompt is worse than a silent one: ``STREAM FILE`` of a missing file ends AsyncAGI
for the call (see the transcripts). :func:`require_prompts` lets the service refuse to enable
the IVR, with a clear message, when a file the dialog uses is missing.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gtts import gTTS

from ivr.dialog import PROMPT_FOLDER, prompts_used
from ivr.settings import IvrSettings

RATE: Final = 8000
DIGIT_FOLDER: Final = "digits"
MANIFEST: Final = ".vssid-prompts.json"
ENGINES: Final = ("auto", "gtts", "espeak")
"""``auto``: gTTS where it can work here (the internet reachable, ffmpeg installed), else
espeak-ng; see :func:`choose_engine`."""
GTTS_HOST: Final = ("translate.google.com", 443)

Engine = Callable[[str, Path], None]
"""Renders one text into a WAV file (any rate, mono, 16-bit); converted to 8 kHz afterwards."""


class PromptError(Exception):
    """Rendering failed, or prompts the dialog needs are missing; the message says what to do."""


@dataclass(frozen=True, slots=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def prompt_texts(settings: IvrSettings) -> dict[str, str]:
    """Every file to render (relative path without ``.wav``) and its text."""
    texts = {f"{PROMPT_FOLDER}/{name}": text for name, text in settings.prompts.by_name().items()}
    words = settings.digits.words
    if len(words) != 10:
        raise PromptError("[ivr.digits] words must name the ten digits 0 to 9")
    texts.update({f"{DIGIT_FOLDER}/{digit}": word for digit, word in enumerate(words)})
    return texts


def espeak_engine(voice: str = "vi", speed: int = 150) -> Engine:
    """espeak-ng (Debian package ``espeak-ng``); the text goes on stdin, never on argv."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise PromptError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")

    def render(text: str, target: Path) -> None:
        subprocess.run(  # noqa: S603 - fixed program, text on stdin
            [program, "-v", voice, "-s", str(speed), "--stdin", "-w", str(target)],
            input=text.encode("utf-8"),
            check=True,
            capture_output=True,
            timeout=60,
        )

    return render


def gtts_engine(language: str = "vi") -> Engine:
    """Google Translate's TTS through gTTS (online); its MP3 is decoded with ffmpeg."""
    decoder = shutil.which("ffmpeg")
    if decoder is None:
        raise PromptError("the gtts engine needs ffmpeg to decode MP3 (or use --engine espeak)")

    def render(text: str, target: Path) -> None:
        mp3 = target.with_suffix(".mp3")
        try:
            gTTS(text, lang=language).save(str(mp3))
        except Exception as error:  # gTTS raises its own errors and requests' ones
            raise PromptError(f"gTTS failed (is the internet reachable?): {error}") from error
        subprocess.run(  # noqa: S603 - fixed program and arguments
            [decoder, "-loglevel", "error", "-y", "-i", str(mp3), "-ac", "1", str(target)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        mp3.unlink(missing_ok=True)

    return render


def gtts_reachable(timeout: float = 3.0) -> bool:
    """Whether gTTS's server answers a TCP connection within ``timeout`` seconds."""
    try:
        socket.create_connection(GTTS_HOST, timeout=timeout).close()
    except OSError:
        return False
    return True


def choose_engine(
    name: str,
    *,
    ffmpeg: str | None = None,
    online: Callable[[], bool] = gtts_reachable,
) -> tuple[str, str]:
    """The engine ``name`` stands for, and why: ``auto`` is gTTS (the better voice) when
    ``ffmpeg`` is installed and ``online()`` says its server is reachable, else espeak-ng."""
    if name != "auto":
        return name, "as asked"
    if ffmpeg is None:
        return "espeak", "gtts needs ffmpeg, which is not installed"
    if not online():
        return "espeak", f"gtts's server {GTTS_HOST[0]} is not reachable"
    return "gtts", f"{GTTS_HOST[0]} is reachable"


def engine_named(name: str, language: str) -> Engine:
    if name == "espeak":
        return espeak_engine(language)
    if name == "gtts":
        return gtts_engine(language)
    raise PromptError(f"unknown prompt engine {name!r}; choose one of {', '.join(ENGINES)}")


def build(
    texts: Mapping[str, str], out: Path, language: str, engine: Engine, engine_name: str
) -> list[str]:
    """Render what changed into ``out/<language>/``; returns the names rendered this time."""
    folder = out / language
    manifest_path = folder / MANIFEST
    manifest: dict[str, str] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    rendered = []
    for name, text in texts.items():
        target = folder / f"{name}.wav"
        digest = hashlib.sha256(f"{engine_name}\0{language}\0{text}".encode()).hexdigest()
        if manifest.get(name) == digest and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            raw = Path(scratch) / "raw.wav"
            try:
                engine(text, raw)
            except (OSError, subprocess.SubprocessError) as error:
                raise PromptError(f"could not render {name}: {error}") from error
            to_asterisk_wav(raw, target)
        manifest[name] = digest
        rendered.append(name)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return rendered


def to_asterisk_wav(source: Path, target: Path) -> None:
    """Any mono/stereo 16-bit WAV to 8 kHz mono 16-bit (averaging filter, linear steps)."""
    with wave.open(str(source), "rb") as reader:
        rate, channels, width = reader.getframerate(), reader.getnchannels(), reader.getsampwidth()
        frames = reader.readframes(reader.getnframes())
    if width != 2:
        raise PromptError(f"{source}: expected 16-bit samples, got {8 * width}-bit")
    samples = array.array("h")
    samples.frombytes(frames)
    if sys.byteorder == "big":
        samples.byteswap()
    if channels > 1:
        samples = array.array("h", samples[::channels])
    out = _resample(samples, rate, RATE)
    if sys.byteorder == "big":
        out.byteswap()
    partial = target.with_suffix(".part")
    with wave.open(str(partial), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(RATE)
        writer.writeframes(out.tobytes())
    os.replace(partial, target)


def _resample(samples: array.array[int], rate: int, target: int) -> array.array[int]:
    if rate == target or not samples:
        return array.array("h", samples)
    step = rate / target
    width = max(int(step), 1)
    count = int(len(samples) / step)
    out = array.array("h", bytes(2 * count))
    for index in range(count):
        start = int(index * step)
        window = samples[start : start + width]
        out[index] = int(sum(window) / len(window)) if window else 0
    return out


def wav_info(path: Path) -> WavInfo:
    with wave.open(str(path), "rb") as reader:
        return WavInfo(
            reader.getframerate(),
            reader.getnchannels(),
            reader.getsampwidth(),
            reader.getnframes(),
        )


def required_files(language: str, names: Iterable[str] | None = None) -> list[str]:
    """The files the dialog may play, relative to the sounds folder."""
    prompts = [f"{language}/{PROMPT_FOLDER}/{n}.wav" for n in (names or prompts_used())]
    return prompts + [f"{language}/{DIGIT_FOLDER}/{d}.wav" for d in range(10)]


def missing_prompts(sounds_dir: Path | str, language: str) -> list[str]:
    """Files the dialog uses that are absent, empty or not 8 kHz mono 16-bit WAV."""
    missing = []
    for relative in required_files(language):
        path = Path(sounds_dir) / relative
        try:
            info = wav_info(path)
        except (OSError, EOFError, wave.Error):
            missing.append(relative)
            continue
        if (info.rate, info.channels, info.sample_width) != (RATE, 1, 2) or info.frames == 0:
            missing.append(relative)
    return missing


def require_prompts(settings: IvrSettings) -> None:
    """Raise :class:`PromptError` unless every prompt the dialog uses is ready to play."""
    missing = missing_prompts(settings.sounds_dir, settings.language)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise PromptError(
            f"the IVR cannot start: {len(missing)} prompt file(s) missing or not 8 kHz mono "
            f"16-bit WAV under {settings.sounds_dir}: {shown}. A missing file ends the call in "
            "Asterisk. Run: vssid-gateway prompts build"
        )


def durations(sounds_dir: Path | str, language: str) -> dict[str, float]:
    """Seconds of each rendered prompt (``vssid/menu`` -> 6.2), for cost estimates."""
    folder = Path(sounds_dir) / language
    return {
        str(path.relative_to(folder).with_suffix("")): wav_info(path).seconds
        for path in sorted(folder.glob("*/*.wav"))
    }
