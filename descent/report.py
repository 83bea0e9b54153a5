"""What `inspect` and `build` found and did: typed results of the phases, formatted for people and scripts.

The phases fill these dataclasses; this module only formats them. The JSON keys are a public
interface (scripts read `--json` and `--report`): tests/test_report.py pins them.
"""

from __future__ import annotations

import enum
import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from descent.clock import time_value
from descent.order import OrderedSequence


class FrameStatus(enum.StrEnum):
    """What became of one captured frame."""

    USED = "used"
    DUPLICATE = "duplicate"  # same pixels as an earlier frame: dropped
    UNREADABLE = "unreadable"
    NOT_SHOWN = "not shown"  # real time at a slower output rate than the capture: no output frame shows it


@dataclass(slots=True)
class FrameRecord:
    """One frame's fate, for --report."""

    file: str
    time_s: float | None
    counter: int | None
    status: FrameStatus = FrameStatus.USED
    output_first: int | None = None  # first output frame that shows it
    output_count: int = 0
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Unreadable:
    file: str
    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    file: str
    duplicate_of: str


@dataclass(frozen=True, slots=True)
class GapRecord:
    after: str
    before: str
    interval_s: float
    missing_frames: int


@dataclass(frozen=True, slots=True)
class CoarseClockRecord:
    quantum_s: float
    frames_per_stamp: float


@dataclass(frozen=True, slots=True)
class MosaicEvidence:
    mean_spread: float
    pair_contrast: float


@dataclass(frozen=True, slots=True)
class ToneRecord:
    black: float
    white: float
    gamma: float


@dataclass(frozen=True, slots=True)
class NormalisationReport:
    bits_used: int
    bayer: str | None
    bayer_source: str
    bayer_evidence: MosaicEvidence | None
    white_balance_rgb: list[float]
    tone: ToneRecord
    defects: int
    vignetting: list[float] | None
    float_range: list[float] | None = None  # float frames: the values mapped to black and to white


@dataclass(frozen=True, slots=True)
class StabilisationReport:
    mode: str
    zoom: float
    bridged_pairs: int
    correlated_pairs: int  # of the bridged pairs, those placed by the whole picture's correlation
    gaps_measured_across: int  # runs of frames without ground whose ends were measured against each other
    perspective_pairs: int
    frames_with_fill: int
    static_fraction: float | None
    motion_reused: bool


@dataclass(frozen=True, slots=True)
class DeflickerReport:
    largest_correction: float
    rms_correction: float
    steps_kept: list[str]
    unmeasured_pairs: int


@dataclass(frozen=True, slots=True)
class AltitudeReport:
    source: str  # "telemetry", "images" or "telemetry and images"
    frames_with_altitude: int
    frames_estimated: int
    touchdown_s: float | None
    highest_m: float | None
    lowest_m: float | None
    time_offset_s: float | None = None  # added to the log's times: --time-offset and what the images found
    offset_source: str | None = None  # "images", "option", or "none (why)"
    offset_fit: dict[str, object] | None = None  # the synchronisation by the images (see altitude.OffsetFit)
    unit: str | None = None  # the log's altitude unit
    unit_source: str | None = None  # "option", "format", "name", "inferred" or "assumed"


@dataclass(frozen=True, slots=True)
class Output:
    path: str
    frames: int
    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    encoder: str
    crf: int | None
    preset: str
    ffmpeg: str


# The phases' timings as the summary names them, in their order.
PHASE_NAMES = (("scan", "scan_s"), ("plan", "plan_s"), ("motion and brightness", "measure_s"),
               ("encoding", "render_s"), ("reading", "read_s"))


@dataclass(slots=True)
class Summary:
    images_found: int
    skipped_files: int
    time_source: str
    times_are_utc: bool
    frames: list[FrameRecord]
    sizes: dict[str, int]
    bit_depths: dict[str, int]
    colour_frames: int
    products: dict[str, int]  # archive products by kind and instrument ("PDS4 LCAM"); empty for image files
    coarse_clock: CoarseClockRecord | None
    gaps: list[GapRecord]
    out_of_place: list[str]
    duplicates: list[Duplicate] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    bits_used: int | None = None  # highest bit set in any sample (inspect decodes every frame)
    stabilisation: StabilisationReport | None = None
    normalisation: NormalisationReport | None = None
    deflicker: DeflickerReport | None = None
    altitude: AltitudeReport | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what was said as a warning about the sequence
    missing_pixels: int = 0  # pixels of float frames with no data (NaN, infinity, fill): shown black
    output: Output | None = None
    # Wall seconds of each phase (scan_s, plan_s, measure_s, render_s, total_s) and first_frame_s,
    # from the start to the first frame written to ffmpeg. Not part of the result: they vary by run.
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_sequence(cls, sequence: OrderedSequence, *, images_found: int, skipped_files: int,
                      unreadable: list[Unreadable]) -> Summary:
        frames = sequence.frames
        coarse = sequence.coarse
        return cls(
            images_found=images_found,
            skipped_files=skipped_files,
            time_source=sequence.source.value,
            times_are_utc=sequence.times_are_utc,
            frames=[FrameRecord(f.name, f.time_s, f.counter) for f in frames],
            sizes=dict(Counter(f"{f.width}x{f.height}" for f in frames).most_common()),
            bit_depths=dict(Counter(f"{f.bit_depth}-bit" for f in frames).most_common()),
            colour_frames=sum(f.channels == 3 for f in frames),
            products=dict(Counter(f.label.product for f in frames if f.label).most_common()),
            coarse_clock=CoarseClockRecord(coarse.quantum_s, coarse.frames_per_stamp) if coarse else None,
            gaps=[GapRecord(frames[g.after].name, frames[g.after + 1].name, round(g.interval_s, 6),
                            g.missing_frames) for g in sequence.gaps],
            out_of_place=[frames[i].name for i in sequence.out_of_place],
            unreadable=list(unreadable),
            notes=list(sequence.notes),
            warnings=list(sequence.warnings),
        )

    # --- what the phases record about single frames ---

    def mark(self, index: int, status: FrameStatus, note: str | None = None) -> None:
        record = self.frames[index]
        record.status, record.note = status, note

    def count_missing(self, index: int, pixels: int) -> None:
        self.missing_pixels += pixels
        self.frames[index].note = f"{pixels} pixels missing (NaN, infinity or fill): shown black"

    @property
    def frames_with_missing_pixels(self) -> int:
        return sum(1 for f in self.frames if f.note is not None and "pixels missing" in f.note)

    def place(self, index: int, *, output_first: int, output_count: int) -> None:
        record = self.frames[index]
        record.output_first, record.output_count = output_first, output_count

    # --- figures derived from the frame list ---

    @property
    def times(self) -> list[float]:
        return [f.time_s for f in self.frames if f.time_s is not None and f.status is not FrameStatus.UNREADABLE]

    @property
    def span_s(self) -> float | None:
        t = self.times
        return t[-1] - t[0] if len(t) > 1 else None

    @property
    def rate_fps(self) -> tuple[float, float, float] | None:
        """Median, slowest and fastest capture rate in frames per second."""
        t = self.times
        intervals = sorted(b - a for a, b in itertools.pairwise(t) if b > a)
        if not intervals:
            return None
        median = intervals[len(intervals) // 2]
        return 1 / median, 1 / intervals[-1], 1 / intervals[0]

    def count(self, status: FrameStatus) -> int:
        return sum(f.status is status for f in self.frames)

    # --- formats ---

    def to_dict(self, *, with_frames: bool = False) -> dict[str, Any]:
        """The summary for scripts (`--json`; with the frame list, `--report`)."""
        t = self.times
        rate = self.rate_fps
        utc = self.times_are_utc
        data: dict[str, Any] = {
            "images_found": self.images_found,
            "frames_used": self.count(FrameStatus.USED),
            "skipped_files": self.skipped_files,
            "time_source": self.time_source,
            "start": time_value(t[0], utc=utc) if t else None,
            "end": time_value(t[-1], utc=utc) if t else None,
            "span_s": self.span_s,
            "rate_fps": {"median": rate[0], "min": rate[1], "max": rate[2]} if rate else None,
            "coarse_clock": _plain(self.coarse_clock),
            "gaps": [asdict(g) for g in self.gaps],
            "out_of_place": self.out_of_place,
            "duplicates": [asdict(d) for d in self.duplicates],
            "unreadable": [asdict(u) for u in self.unreadable],
            "not_shown": self.count(FrameStatus.NOT_SHOWN),
            "sizes": self.sizes,
            "bit_depths": self.bit_depths,
            "bits_used": self.bits_used,
            "colour_frames": self.colour_frames,
            "products": self.products,
            "notes": self.notes,
            "warnings": self.warnings,
            "missing_pixels": self.missing_pixels,
            "stabilisation": _plain(self.stabilisation),
            "normalisation": _plain(self.normalisation),
            "deflicker": _plain(self.deflicker),
            "altitude": _plain(self.altitude),
            "output": _plain(self.output),
            "timings": dict(self.timings),
        }
        if with_frames:
            data["frames"] = [
                {**asdict(f), "status": f.status.value,
                 "time": time_value(f.time_s, utc=utc) if f.time_s is not None else None}
                for f in self.frames
            ]
        return data

    def to_json(self, *, with_frames: bool = False) -> str:
        return json.dumps(self.to_dict(with_frames=with_frames), indent=1) + "\n"

    def lines(self) -> list[str]:
        """The summary as people read it."""
        return self._sequence_lines() + self._result_lines()

    def _sequence_lines(self) -> list[str]:
        """What was found: frames, times, rate, sizes, depth, gaps, duplicates, frames out of place."""
        t = self.times
        utc = self.times_are_utc
        out = [f"frames      {self.count(FrameStatus.USED)} used of {self.images_found} images"
               + (f", {self.skipped_files} other files skipped" if self.skipped_files else "")]
        if self.products:
            out.append(f"products    {', '.join(f'{k} ({v})' for k, v in self.products.items())}")
        out.append(f"times       from {self.time_source}"
                   + (f": {time_value(t[0], utc=utc)} to {time_value(t[-1], utc=utc)} ({self.span_s:.3f} s)"
                      if self.span_s is not None else ""))
        rate = self.rate_fps
        if rate:
            median, slowest, fastest = rate
            spread = "" if fastest - slowest < 0.05 * median else f" (from {slowest:.3g} to {fastest:.3g})"
            out.append(f"rate        {median:.3g} frames/s{spread}")
        if self.coarse_clock:
            c = self.coarse_clock
            out.append(f"coarse      {c.frames_per_stamp:g} frames per {c.quantum_s:g} s stamp: times refined")
        out.append(f"sizes       {', '.join(f'{k} ({v})' for k, v in self.sizes.items())}"
                   + ("  MIXED: fitted to the common size" if len(self.sizes) > 1 else ""))
        depth = ", ".join(f"{k} ({v})" for k, v in self.bit_depths.items())
        if self.bits_used is not None:
            depth += f"; samples use {self.bits_used} bits"
        out.append(f"depth       {depth}" + ("  MIXED" if len(self.bit_depths) > 1 else ""))
        out.append(f"colour      {self.colour_frames} colour, {len(self.frames) - self.colour_frames} grey")
        out += _listing("gaps", [f"after {Path(g.after).name}: {g.interval_s:.3f} s, ~{g.missing_frames} missing"
                                 for g in self.gaps])
        out += _listing("duplicates", [f"{Path(x.file).name} = {Path(x.duplicate_of).name}" for x in self.duplicates])
        out += _listing("out of place", [Path(x).name for x in self.out_of_place])
        if self.unreadable:
            out += _listing("unreadable", [f"{x.file}: {x.reason}" for x in self.unreadable])
        if self.missing_pixels:
            out.append(f"missing     {self.missing_pixels} pixels in {self.frames_with_missing_pixels} frames "
                       "(NaN, infinity or fill values): shown black")
        return out

    def _result_lines(self) -> list[str]:
        """What was done: normalisation, deflicker, altitude, stabilisation, notes, the video."""
        out = _normalisation_lines(self.normalisation)
        if self.deflicker:
            d = self.deflicker
            out.append(f"deflicker   {100 * d.rms_correction:.1f}% RMS exposure correction "
                       f"(largest {100 * d.largest_correction:.1f}%), {len(d.steps_kept)} lasting steps kept")
        if self.altitude:
            a = self.altitude
            out.append(f"altitude    from {a.source}: {a.frames_with_altitude} frames"
                       + (f" ({a.frames_estimated} estimated)" if a.frames_estimated else "")
                       + (f", {a.highest_m:.1f} m down to {a.lowest_m:.1f} m"
                          if a.highest_m is not None and a.lowest_m is not None else ""))
            if a.offset_source is not None:
                out.append(f"time offset {_offset_text(a)}")
            if a.unit_source == "assumed":
                out.append(f"unit        the log's altitude taken as {a.unit} (assumed: say --alt-unit)")
        if self.stabilisation:
            s = self.stabilisation
            out.append(f"stabilised  {s.mode}: zoom {s.zoom:.2f}x, {s.bridged_pairs} pairs bridged"
                       + (f" ({s.correlated_pairs} placed by correlation)" if s.correlated_pairs else "")
                       + (f", {s.gaps_measured_across} gap{'s' if s.gaps_measured_across > 1 else ''} measured across"
                          if s.gaps_measured_across else "") + ", "
                       + (f"{s.perspective_pairs} with perspective, " if s.perspective_pairs else "")
                       + f"{s.frames_with_fill} frames with filled edges"
                       + (f", {100 * s.static_fraction:.1f}% of the picture static" if s.static_fraction else ""))
        out += [f"note        {note}" for note in self.notes]
        if self.output:
            o = self.output
            out.append(f"video       {o.path}: {o.frames} frames, {o.duration_s:.2f} s at {o.fps:g} fps, "
                       f"{o.width}x{o.height} {o.codec} ({o.encoder}"
                       + (f", crf {o.crf}" if o.crf is not None else "") + ")")
        if "total_s" in self.timings:
            t = self.timings
            phases = ", ".join(f"{name} {t[key]:.1f} s" for name, key in PHASE_NAMES if key in t)
            out.append(f"took        {t['total_s']:.1f} s ({phases})"
                       + (f"; first frame to ffmpeg after {t['first_frame_s']:.1f} s" if "first_frame_s" in t else ""))
        return out


def _offset_text(a: AltitudeReport) -> str:
    fit = a.offset_fit or {}
    seconds = f"{a.time_offset_s:+.3f} s" if a.time_offset_s is not None else "?"
    if a.offset_source == "images":
        spread = f" ± {fit['sd_s']:.2f} s" if fit.get("sd_s") is not None else ""
        return (f"{seconds}{spread} from the images (residual {fit.get('rms')} in log-altitude, {fit.get('frames')} "
                f"frames; {fit.get('verdict')})")
    if a.offset_source == "option":
        return f"{seconds} from --time-offset"
    return f"{seconds}: not synchronised" + (f" ({fit.get('verdict')})" if fit else "")


def _plain(record: object | None) -> dict[str, Any] | None:
    return None if record is None else asdict(record)  # type: ignore[call-overload]


def _normalisation_lines(n: NormalisationReport | None) -> list[str]:
    if n is None:
        return []
    out = []
    if n.bayer:
        rgb = ", ".join(f"{g:.2f}" for g in n.white_balance_rgb)
        out.append(f"bayer       {n.bayer} ({n.bayer_source}), white balance R,G,B {rgb}")
    elif n.bayer_source == "none" and n.bayer_evidence:
        out.append("bayer       none (no mosaic pattern found)")
    if n.defects:
        out.append(f"defects     {n.defects} hot or dead pixels repaired")
    return out


def _listing(title: str, items: list[str], shown: int = 10) -> list[str]:
    """A count, then the first few items indented under it."""
    lines = [f"{title:<11} {len(items)}"]
    lines += [f"              {item}" for item in items[:shown]]
    if len(items) > shown:
        lines.append(f"              ... {len(items) - shown} more")
    return lines
