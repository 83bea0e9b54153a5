"""The `descent` command: parse options, build configs, call the library. Nothing else.

Heavy modules (OpenCV, numpy, ffmpeg-python) are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from descent.options import (
    SCRATCH_MAX_GB,
    AltitudeUnit,
    Border,
    Codec,
    Demosaic,
    HudCorner,
    StabiliseMode,
    Switch,
    TimeSource,
    Units,
)

app = typer.Typer(
    name="descent",
    help="Turn thousands of descent-camera frames into a landing video.\n\n"
    "Example: descent build frames/ -o landing.mp4",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


Inputs = Annotated[list[str], typer.Argument(help="Folders, files or quoted globs ('frames/*.png'): images "
                                              "(PNG, JPEG, TIFF, BMP), PDS3/PDS4 archive products, or video "
                                              "files (MP4, MOV, MKV, AVI, WebM, GIF; parts joined in time order).",
                                              show_default=False)]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Also look in sub-folders.")]
Times = Annotated[Path | None, typer.Option("--times", help="CSV of file,time giving each frame's capture time.",
                                            show_default=False)]
NamePattern = Annotated[str | None, typer.Option(
    "--name-pattern",
    help="Regex finding the time in file names, with a group (?P<time>...) and optionally (?P<counter>...). "
    "The time may be ISO 8601 or seconds with a fraction: 'ELM_\\d+_(?P<time>\\d{10}_\\d{3})'.",
    show_default=False)]
TimeSourceOpt = Annotated[TimeSource | None, typer.Option(
    "--time-source", help="Force where capture times come from (default: video presentation times for videos; "
    "else index, label, name, exif, mtime, the first that has a time for every frame; none = counter or natural "
    "name order).", show_default=False)]
Strict = Annotated[bool, typer.Option("--strict", help="Stop at the first unreadable frame instead of skipping it, "
                                      "or when frames are out of place against the counter in their names.")]
Workers = Annotated[int, typer.Option("--workers", "-j", help="Decoding threads (0: one per core).", min=0)]
Scratch = Annotated[str | None, typer.Option(
    "--scratch", metavar="DIR|off", help="Where frames decoded in the motion pass wait for the encoding pass, so "
    "that each PNG or JPEG is decoded once (a directory on disk; up to half its free space and --scratch-max), or "
    "'off' to decode them twice. Default: the system temporary directory, unless it is held in memory.",
    show_default=False)]
ScratchMax = Annotated[float, typer.Option(
    "--scratch-max", metavar="GB", min=0.0, max=1e9, help="The most disk the frames waiting for the encoding "
    "pass may take; frames beyond it are decoded again (about 1 GB a thousand 1024x1024 grey frames; 0: decode "
    "every frame twice).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, notes or summary.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary on stdout (with "
                                     "'timings': each phase's wall seconds and first_frame_s, the start to the "
                                     "first frame given to ffmpeg).")]
Report = Annotated[Path | None, typer.Option("--report", help="Write the summary and the ordered frame list as JSON.",
                                             show_default=False)]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
TimeColumn = Annotated[str | None, typer.Option("--time-column", help="The telemetry's time column (default: "
                                                "detected from names and values; see 'descent telemetry').",
                                                show_default=False)]
TimeFormat = Annotated[str | None, typer.Option(
    "--time-format", help="How telemetry times are written, as a strftime format ('%y%m%d%H%M%S.%f'), or "
    "'countdown' for seconds before touchdown or impact (default: ISO 8601, Unix epoch or seconds from the first "
    "frame, detected).", show_default=False)]
AltColumn = Annotated[str | None, typer.Option("--alt-column", help="The telemetry's altitude column (default: "
                                               "detected, height above ground first; see 'descent telemetry').",
                                               show_default=False)]
AltUnit = Annotated[AltitudeUnit | None, typer.Option("--alt-unit", help="Unit of the altitude column (default: from "
                                                      "the format, its name like alt_ft or a speed column beside it; "
                                                      "else metres, said as assumed).", show_default=False)]
TimeOffset = Annotated[str, typer.Option(
    "--time-offset", metavar="SECONDS|auto", help="Seconds added to telemetry times (signed, sub-second; positive "
    "when the log runs behind the camera), or 'auto': found by fitting the log's altitude to the images' change of "
    "scale whenever motion is measured; the offset found is reported with its standard error (a poor fit, or one "
    "looser than ±2 s, is not applied, and said).")]
Bayer = Annotated[str, typer.Option("--bayer", help="Colour filter mosaic: auto (the label's CFA, else detected from "
                                    "the 2x2 pattern), none, RGGB, BGGR, GRBG or GBRG.")]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"descent: error: {message}", err=True)
    _exit_at_once_on_signals(code)
    raise typer.Exit(code)


def _interrupt(signum: int, frame: object) -> NoReturn:
    # Once is enough: a second signal during the clean-up must not cut the clean-up short.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise KeyboardInterrupt


class _LowerCaseLevel(logging.Formatter):
    """`descent: warning: ...`, in the same lower case as `descent: error: ...`."""

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def _unwind_on_signals() -> None:
    """A polite kill (SIGTERM from CI or a job scheduler) and a closed terminal (SIGHUP) unwind like
    Ctrl-C, so nothing is left behind: no partial output, no scratch folder."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)


def _run(debug: bool, quiet: bool, action: Callable[[], None]) -> None:
    """Call the library; turn its errors into one line and an exit code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowerCaseLevel("descent: %(levelname)s: %(message)s"))
    logger = logging.getLogger("descent")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    from descent.errors import DescentError

    _unwind_on_signals()
    try:
        action()
    except DescentError as error:
        if debug:
            raise
        _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", 130)
    except Exception as error:
        if debug:
            raise
        _fail(f"unexpected {type(error).__name__}: {error} (run again with --debug for details)", 70)
    _exit_at_once_on_signals(0)


def _source_config(inputs: list[str], recursive: bool, times: Path | None, name_pattern: str | None,
                   time_source: TimeSource | None, strict: bool) -> Any:
    from descent.build import SourceConfig
    from descent.sources.times import TimeOptions

    return SourceConfig(
        inputs=tuple(inputs), recursive=recursive, strict=strict,
        times=TimeOptions(index_csv=times, name_pattern=name_pattern,
                          source=time_source),
    )


def _print_summary(summary: Any, as_json: bool, quiet: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=1))
    elif not quiet:
        typer.echo("\n".join(summary.lines()))


@app.command()
def inspect(
    inputs: Inputs,
    recursive: Recursive = False,
    times: Times = None,
    name_pattern: NamePattern = None,
    time_source: TimeSourceOpt = None,
    bayer: Bayer = "auto",
    strict: Strict = False,
    workers: Workers = 0,
    quiet: Quiet = False,
    json_out: JsonOut = False,
    report: Report = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing --report file.")] = False,
    debug: Debug = False,
) -> None:
    """Report what is in a folder of frames or archive products: products and instrument, count,
    sizes, bits really used, Bayer mosaic guess, time span, rate, gaps, duplicates, coarse
    timestamps and frames out of place.

    Example: descent inspect frames/ --json
    """

    def action() -> None:
        from descent.build import RunConfig
        from descent.build import inspect as run_inspect
        from descent.normalise import NormaliseConfig
        from descent.normalise.bayer import parse_pattern

        summary = run_inspect(_source_config(inputs, recursive, times, name_pattern, time_source, strict),
                              RunConfig(workers=workers, progress=not quiet),
                              NormaliseConfig(bayer=parse_pattern(bayer), deflicker=False),
                              report_path=report, overwrite=overwrite)
        _print_summary(summary, json_out, quiet)

    _run(debug, quiet, action)


@app.command()
def build(
    inputs: Inputs,
    output: Annotated[Path, typer.Option("--output", "-o", help="The video to write (.mp4, .mov, .mkv, .webm).",
                                         show_default=False)],
    recursive: Recursive = False,
    times: Times = None,
    name_pattern: NamePattern = None,
    time_source: TimeSourceOpt = None,
    fps: Annotated[float, typer.Option("--fps", help="Output frame rate.")] = 30.0,
    realtime: Annotated[bool, typer.Option("--realtime", help="Follow capture times: gaps hold the last image, "
                                           "bursts are thinned. Implied by --speed.")] = False,
    speed: Annotated[float | None, typer.Option("--speed", help="With capture times: seconds of descent per "
                                                "second of video (4 = four times faster).", show_default=False)] = None,
    keep_duplicates: Annotated[bool, typer.Option("--keep-duplicates", help="Keep frames whose pixels repeat an "
                                                  "earlier frame (dropped by default).")] = False,
    size: Annotated[str | None, typer.Option("--size", help="Exact output size WxH; frames are fitted inside "
                                             "with their aspect kept.", show_default=False)] = None,
    scale: Annotated[float | None, typer.Option("--scale", help="Scale the common frame size by this factor.",
                                                show_default=False)] = None,
    codec: Annotated[Codec, typer.Option("--codec", help="h264 plays everywhere; h265 and av1 are smaller; "
                                               "prores is for editing (.mov).")] = Codec.H264,
    crf: Annotated[int | None, typer.Option("--crf", help="Quality: lower is better and bigger (default: h264 18, "
                                            "h265 20, av1 30).", show_default=False)] = None,
    preset: Annotated[str, typer.Option("--preset",
                                        help="Encoder speed: ultrafast ... medium ... veryslow.")] = "medium",
    ffmpeg: Annotated[str | None, typer.Option("--ffmpeg", help="ffmpeg executable, for encoding and for reading video "
                                               "inputs (default: $DESCENT_FFMPEG, the one imageio-ffmpeg ships, then "
                                               "PATH).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output file.")] = False,
    stabilise: Annotated[StabiliseMode, typer.Option(
        "--stabilise", help="lock: the landing site held at the centre of every frame wherever it is in the "
        "frames, the shake taken out of the yaw and the zoom; smooth: keep the flight path, remove the shake; "
        "off.")] = StabiliseMode.LOCK,
    smoothing: Annotated[float, typer.Option("--smoothing", help="Capture seconds: camera motion slower than this "
                                             "is kept (smooth), or the yaw and zoom are smoothed over it (lock). "
                                             "Motion faster than 1 s of the video is shake whatever this says: "
                                             "frames taken 2 a second and shown once each at 30 fps make that "
                                             "15 capture seconds (the build says so).", min=0)] = 3.0,
    border: Annotated[Border, typer.Option(
        "--border", help="fill: the whole picture, and what a frame does not cover painted from the earlier frames "
        "(which saw that ground from higher up); crop: enlarge just enough (up to --max-zoom) that no edge shows; "
        "black, blur or replicate: the whole picture, the uncovered edge filled so.")] = Border.FILL,
    max_zoom: Annotated[float | None, typer.Option(
        "--max-zoom", help="The most the picture may be enlarged to hide edges (default: 1.5 with crop, 1 "
        "otherwise: no enlargement).", min=1.0, show_default=False)] = None,
    motion: Annotated[Path | None, typer.Option("--motion", help="Save the measured motion (JSON) here, or reuse "
                                                "it if the file exists.", show_default=False)] = None,
    mask: Annotated[Path | None, typer.Option("--mask", help="PNG, white where the picture does not move with "
                                              "the ground (lander legs, shadow, a burned-in clock), drawn over a "
                                              "frame (another size of the same shape is scaled; another shape is "
                                              "refused). Static parts are also found automatically.",
                                              show_default=False)] = None,
    bayer: Bayer = "auto",
    demosaic: Annotated[Demosaic, typer.Option(
        "--demosaic", help="edge-aware (fast, 16-bit); vng (sharper, 8-bit mosaics only); bilinear.")
    ] = Demosaic.EDGE_AWARE,
    wb: Annotated[str | None, typer.Option("--wb", help="White balance gains R,G,B (default: grey world over the "
                                           "whole sequence).", show_default=False)] = None,
    gamma: Annotated[float, typer.Option("--gamma", help="Display gamma applied after the sequence-wide black and "
                                         "white points (2.2 for linear sensor data).", min=0.1)] = 1.0,
    deflicker: Annotated[Switch, typer.Option("--deflicker", help="Even out exposure jumps between frames; lasting "
                                             "changes are kept.")] = Switch.ON,
    deflicker_period: Annotated[float | None, typer.Option(
        "--deflicker-period", help="Seconds of capture time (frames without capture times count 1/--fps s each): "
        "exposure swings faster than this are flicker too; it widens the band, never narrows it. By default "
        "flicker is any swing faster than about a second of the video (how the frames play: each once, "
        "--realtime or --speed), whatever the capture rate; lasting steps and slow changes stay.", min=0.05,
        show_default=False)] = None,
    defects: Annotated[Switch, typer.Option("--defects", help="Find hot and dead pixels from the sequence and "
                                           "repair them.")] = Switch.ON,
    dark: Annotated[Path | None, typer.Option("--dark", help="Dark frame (same camera settings, lens capped) to "
                                              "subtract.", show_default=False)] = None,
    flat: Annotated[Path | None, typer.Option("--flat", help="Flat field frame to divide by.",
                                              show_default=False)] = None,
    devignette: Annotated[bool, typer.Option("--devignette", help="Estimate the lens falloff from the sequence and "
                                             "undo it.")] = False,
    contrast: Annotated[bool, typer.Option("--contrast", help="Local contrast (CLAHE) for flat, hazy "
                                           "ground.")] = False,
    telemetry: Annotated[Path | None, typer.Option(
        "--telemetry", help="Altitude log (CSV/TSV, JSON lines, records or columns, DJI .SRT, GPX) for the HUD and "
        "the data track; check it first with 'descent telemetry'.", show_default=False)] = None,
    time_column: TimeColumn = None,
    time_format: TimeFormat = None,
    alt_column: AltColumn = None,
    alt_unit: AltUnit = None,
    time_offset: TimeOffset = "auto",
    altitude_at: Annotated[list[str] | None, typer.Option(
        "--altitude-at", help="A known altitude, TIME=ALTITUDE (02:26:00=1900, +12.5=2.4km): the altitude of every "
        "frame is estimated from the images' scale. Repeat to anchor more points.", show_default=False)] = None,
    hud: Annotated[bool, typer.Option("--hud/--no-hud", help="Burn the altitude HUD into the video.")] = True,
    hud_position: Annotated[HudCorner, typer.Option("--hud-position", help="Corner of the HUD.")] = (
        HudCorner.BOTTOM_LEFT),
    units: Annotated[Units, typer.Option("--units", help="metric (km above 1 km, m below) or imperial "
                                               "(ft).")] = Units.METRIC,
    mark_site: Annotated[bool, typer.Option("--mark-site", help="A reticle on the landing site in every "
                                            "frame.")] = False,
    subtitles: Annotated[bool, typer.Option("--subtitles/--no-subtitles", help="With altitude: add the values "
                                            "drawn as a subtitle track (data for players and scripts).")] = True,
    telemetry_out: Annotated[Path | None, typer.Option("--telemetry-out", help="CSV of the exact values drawn on "
                                                       "each output frame.", show_default=False)] = None,
    overlay_only: Annotated[Path | None, typer.Option("--overlay-only", help="Also write the HUD alone with "
                                                      "transparency (ProRes 4444 .mov) for an editor.",
                                                      show_default=False)] = None,
    strict: Strict = False,
    workers: Workers = 0,
    scratch: Scratch = None,
    scratch_max: ScratchMax = SCRATCH_MAX_GB,
    quiet: Quiet = False,
    json_out: JsonOut = False,
    report: Report = None,
    debug: Debug = False,
) -> None:
    """Build a landing video from frames ordered by capture time.

    Examples:

      descent build frames/ -o landing.mp4

      descent build frames/ -o landing.mp4 --realtime --speed 4 --size 1920x1080

      descent build frames/ -o landing.mp4 --stabilise smooth --motion motion.json

      descent build 'archive/**/*.png' -o landing.mkv --codec av1 --report report.json

      descent build pcam/ -o colour.mp4 --bayer RGGB --gamma 2.2 --dark dark.png

      descent build CE4_LCAM/ -o change4.mp4 --deflicker off

      descent build frames/ -o landing.mp4 --telemetry altitude.csv --mark-site

      descent build frames/ -o landing.mp4 --altitude-at 02:26:00=1900 --telemetry-out values.csv
    """

    def action() -> None:
        from descent.altitude import AltitudeConfig
        from descent.build import BuildConfig, RunConfig
        from descent.build import build as run_build
        from descent.encode import EncodeConfig
        from descent.normalise import NormaliseConfig
        from descent.normalise.bayer import parse_pattern, parse_white_balance
        from descent.normalise.size import SizeConfig, parse_size
        from descent.order import TimingConfig
        from descent.overlay import HudConfig
        from descent.stabilise import StabiliseConfig

        config = BuildConfig(
            source=_source_config(inputs, recursive, times, name_pattern, time_source, strict),
            output=output,
            timing=TimingConfig(fps=fps, realtime=realtime or speed is not None, speed=1.0 if speed is None else speed,
                                keep_duplicates=keep_duplicates),
            size=SizeConfig(size=parse_size(size) if size else None, scale=scale),
            normalise=NormaliseConfig(
                bayer=parse_pattern(bayer), demosaic=demosaic,
                white_balance=parse_white_balance(wb) if wb else None, gamma=gamma,
                deflicker=deflicker is Switch.ON, deflicker_period_s=deflicker_period, defects=defects is Switch.ON,
                dark=dark, flat=flat, devignette=devignette, contrast=contrast),
            encode=EncodeConfig(codec=codec, crf=crf, preset=preset, ffmpeg=ffmpeg),
            stabilise=StabiliseConfig(mode=stabilise, smoothing_s=smoothing,
                                      border=border, max_zoom=max_zoom, mask=mask, motion_file=motion),
            altitude=AltitudeConfig(
                telemetry=telemetry, altitude_at=tuple(altitude_at or ()),
                telemetry_options=_telemetry_options(time_column, time_format, alt_column, alt_unit, time_offset),
                sync=time_offset.strip().lower() == "auto"),
            hud=HudConfig(enabled=hud, position=hud_position, units=units, mark_site=mark_site),
            telemetry_out=telemetry_out,
            overlay_only=overlay_only,
            subtitles=subtitles,
            overwrite=overwrite,
            run=RunConfig(workers=workers, progress=not quiet, decode_once=scratch != "off",
                          scratch=Path(scratch) if scratch and scratch != "off" else None,
                          scratch_max_bytes=round(scratch_max * 1e9)),
            report_path=report,
        )
        _print_summary(run_build(config), json_out, quiet)

    _run(debug, quiet, action)


def _telemetry_options(time_column: str | None, time_format: str | None, alt_column: str | None,
                       alt_unit: AltitudeUnit | None, time_offset: str) -> Any:
    from descent.telemetry import TelemetryOptions

    return TelemetryOptions(time_column=time_column, altitude_column=alt_column, time_format=time_format,
                            altitude_unit=alt_unit, time_offset_s=_seconds_or_auto(time_offset))


def _seconds_or_auto(text: str) -> float:
    """--time-offset: a number of seconds, or 'auto' (0 here: the build finds the rest from the images)."""
    if text.strip().lower() == "auto":
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        from descent.errors import UsageError

        raise UsageError(f"--time-offset {text!r}: give seconds (like -2.5) or auto")
    return seconds


@app.command()
def telemetry(
    path: Annotated[Path, typer.Argument(help="The altitude log: CSV/TSV, JSON, DJI .SRT or GPX.", show_default=False)],
    time_column: TimeColumn = None,
    time_format: TimeFormat = None,
    alt_column: AltColumn = None,
    alt_unit: AltUnit = None,
    time_offset: TimeOffset = "0",
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the altitude profile to this picture (.png, "
                                              ".jpg ...).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing --plot file.")] = False,
    json_out: JsonOut = False,
    debug: Debug = False,
) -> None:
    """Check a telemetry file before a build: the columns, span, rate and altitude range understood,
    and every problem found and cleaned (empty cells, repeated times, unsorted rows, glitches).

    Examples:

      descent telemetry altitude.csv --plot profile.png

      descent telemetry apollo11.csv

      descent telemetry DJI_0042.SRT --json

    Columns, clock and unit are detected; --time-column, --time-format, --alt-column and --alt-unit
    only override what is detected.
    """

    def action() -> None:
        from descent.outputs import PlannedOutput, check_image_name, check_outputs, write_image_atomically
        from descent.telemetry import read_telemetry

        if plot is not None:  # checked before the log is read: never onto the log itself, never over a file unasked
            check_image_name(plot, "--plot")
            check_outputs([PlannedOutput(plot, "--plot")], inputs=[path], overwrite=overwrite)
        series = read_telemetry(path, _telemetry_options(time_column, time_format, alt_column, alt_unit,
                                                         time_offset))
        if plot is not None:
            from descent.overlay import plot_profile

            write_image_atomically(plot, plot_profile(series.times_s, series.altitude_m,
                                                      title=f"{path.name}: altitude"))
        if json_out:
            typer.echo(json.dumps(series.to_dict(), indent=1))
        else:
            typer.echo("\n".join(series.lines() + ([f"plot        {plot}"] if plot else [])))

    _run(debug, False, action)


def _show_version(value: bool) -> None:
    if value:
        from descent import __version__

        typer.echo(f"descent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", is_eager=True,
                                          callback=_show_version)] = False,
) -> None:
    """Turn thousands of descent-camera frames into a landing video.

    Example: descent build frames/ -o landing.mp4
    """


def main() -> None:
    """The command, with click's own usage errors (a missing argument, a bad choice) in descent's one-line form."""
    _unwind_on_signals()  # from the start: a signal while the options are read cleans up too
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        _fail_now("interrupted; nothing was written", 130)
    except Exception as error:  # click's UsageError family, wherever this typer keeps click
        if not _is_usage_error(error):
            raise
        context = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.format_message())  # type: ignore[attr-defined]
            _exit(0)
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        _fail_now(f"{error.format_message()}{where}", 2)  # type: ignore[attr-defined]
    if type(code).__name__ == "Abort":
        _fail_now("interrupted; nothing was written", 130)
    _exit(code if isinstance(code, int) else 0)


def _is_usage_error(error: BaseException) -> bool:
    return any(cls.__name__ == "UsageError" for cls in type(error).__mro__) and hasattr(error, "format_message")


def _fail_now(message: str, code: int) -> NoReturn:
    typer.echo(f"descent: error: {message}", err=True)
    _exit(code)


def _exit(code: int) -> NoReturn:
    _exit_at_once_on_signals(code)
    _flush_output()
    sys.exit(code)


def _exit_at_once_on_signals(code: int) -> None:
    """From here on the work is over: outputs are in place or were never made, and `code` is the
    true exit code. A SIGTERM landing now, in click's teardown or Python's shutdown, would otherwise
    raise a KeyboardInterrupt nothing catches, or kill the process by signal (Python restores the
    default handlers late in shutdown): a finished job would look killed to its scheduler."""

    def exit_now(signum: int, frame: object) -> None:
        _flush_output()
        os._exit(code)

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), exit_now)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe, or a write the signal cut into: nothing more can reach the reader anyway.
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            stream.flush()
