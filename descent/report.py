"""What `inspect` and `build` found and did: one summary for people, JSON for scripts."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from descent.clock import format_utc
from descent.order import OrderedSequence


@dataclass(slots=True)
class FrameRecord:
    """One frame's fate, for --report."""

    file: str
    time_s: float | None
    counter: int | None
    status: str = "used"  # used | duplicate | unreadable | not shown (faster than the output rate)
    output_first: int | None = None  # first output frame that shows it
    output_count: int = 0
    note: str | None = None


@dataclass(slots=True)
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
    coarse_clock: dict[str, float] | None
    gaps: list[dict[str, Any]]
    out_of_place: list[str]
    duplicates: list[dict[str, str]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    bits_used: int | None = None  # highest bit set in any sample (inspect decodes every frame)
    stabilisation: dict[str, Any] | None = None
    normalisation: dict[str, Any] | None = None  # bits used, Bayer pattern, white balance, tone, defects
    deflicker: dict[str, Any] | None = None
    altitude: dict[str, Any] | None = None  # where altitude came from, how many frames have one, touchdown
    notes: list[str] = field(default_factory=list)
    output: Output | None = None

    @classmethod
    def from_sequence(cls, sequence: OrderedSequence, *, images_found: int, skipped_files: int,
                      unreadable: list[dict[str, str]]) -> Summary:
        frames = sequence.frames
        return cls(
            images_found=images_found,
            skipped_files=skipped_files,
            time_source=sequence.source.value,
            times_are_utc=sequence.times_are_utc,
            frames=[FrameRecord(str(f.path), f.time_s, f.counter) for f in frames],
            sizes=dict(Counter(f"{f.width}x{f.height}" for f in frames).most_common()),
            bit_depths=dict(Counter(f"{f.bit_depth}-bit" for f in frames).most_common()),
            colour_frames=sum(f.channels == 3 for f in frames),
            products=dict(Counter(f.label.product for f in frames if f.label).most_common()),
            coarse_clock=asdict(sequence.coarse) if sequence.coarse else None,
            gaps=[{"after": str(frames[g.after].path), "before": str(frames[g.after + 1].path),
                   "interval_s": round(g.interval_s, 6), "missing_frames": g.missing_frames}
                  for g in sequence.gaps],
            out_of_place=[str(frames[i].path) for i in sequence.out_of_place],
            unreadable=unreadable,
            notes=list(sequence.notes),
        )

    # --- figures derived from the frame list ---

    @property
    def times(self) -> list[float]:
        return [f.time_s for f in self.frames if f.time_s is not None and f.status != "unreadable"]

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

    def to_dict(self, *, with_frames: bool = False) -> dict[str, Any]:
        t = self.times
        rate = self.rate_fps
        data: dict[str, Any] = {
            "images_found": self.images_found,
            "frames_used": sum(f.status == "used" for f in self.frames),
            "skipped_files": self.skipped_files,
            "time_source": self.time_source,
            "start": _format_time(t[0], self.times_are_utc) if t else None,
            "end": _format_time(t[-1], self.times_are_utc) if t else None,
            "span_s": self.span_s,
            "rate_fps": {"median": rate[0], "min": rate[1], "max": rate[2]} if rate else None,
            "coarse_clock": self.coarse_clock,
            "gaps": self.gaps,
            "out_of_place": self.out_of_place,
            "duplicates": self.duplicates,
            "unreadable": self.unreadable,
            "not_shown": sum(f.status == "not shown" for f in self.frames),
            "sizes": self.sizes,
            "bit_depths": self.bit_depths,
            "bits_used": self.bits_used,
            "colour_frames": self.colour_frames,
            "products": self.products,
            "notes": self.notes,
            "stabilisation": self.stabilisation,
            "normalisation": self.normalisation,
            "deflicker": self.deflicker,
            "altitude": self.altitude,
            "output": asdict(self.output) if self.output else None,
        }
        if with_frames:
            data["frames"] = [
                {**asdict(f), "time": _format_time(f.time_s, self.times_are_utc) if f.time_s is not None else None}
                for f in self.frames
            ]
        return data

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(with_frames=True), indent=1) + "\n")

    def lines(self) -> list[str]:
        """The summary as people read it."""
        d = self.to_dict()
        out = [f"frames      {d['frames_used']} used of {self.images_found} images"
               + (f", {self.skipped_files} other files skipped" if self.skipped_files else "")]
        if self.products:
            out.append(f"products    {', '.join(f'{k} ({v})' for k, v in self.products.items())}")
        out.append(f"times       from {self.time_source}"
                   + (f": {d['start']} to {d['end']} ({self.span_s:.3f} s)" if self.span_s is not None else ""))
        if d["rate_fps"]:
            r = d["rate_fps"]
            spread = "" if r["max"] - r["min"] < 0.05 * r["median"] else f" (from {r['min']:.3g} to {r['max']:.3g})"
            out.append(f"rate        {r['median']:.3g} frames/s{spread}")
        if self.coarse_clock:
            c = self.coarse_clock
            out.append(f"coarse      {c['frames_per_stamp']:g} frames per {c['quantum_s']:g} s stamp: times refined")
        out.append(f"sizes       {', '.join(f'{k} ({v})' for k, v in self.sizes.items())}"
                   + ("  MIXED: fitted to the common size" if len(self.sizes) > 1 else ""))
        depth = ", ".join(f"{k} ({v})" for k, v in self.bit_depths.items())
        if self.bits_used is not None:
            depth += f"; samples use {self.bits_used} bits"
        out.append(f"depth       {depth}" + ("  MIXED" if len(self.bit_depths) > 1 else ""))
        out.append(f"colour      {self.colour_frames} colour, {len(self.frames) - self.colour_frames} grey")
        out += _listing("gaps", [f"after {Path(g['after']).name}: {g['interval_s']:.3f} s, "
                                 f"~{g['missing_frames']} missing" for g in self.gaps])
        out += _listing("duplicates", [f"{Path(x['file']).name} = {Path(x['duplicate_of']).name}"
                                       for x in self.duplicates])
        out += _listing("out of place", [Path(x).name for x in self.out_of_place])
        if self.unreadable:
            out += _listing("unreadable", [f"{x['file']}: {x['reason']}" for x in self.unreadable])
        if self.normalisation:
            n = self.normalisation
            if n["bayer"]:
                rgb = ", ".join(f"{g:.2f}" for g in n["white_balance_rgb"])
                out.append(f"bayer       {n['bayer']} ({n['bayer_source']}), white balance R,G,B {rgb}")
            elif n["bayer_source"] == "none" and n["bayer_evidence"]:
                out.append("bayer       none (no mosaic pattern found)")
            if n["defects"]:
                out.append(f"defects     {n['defects']} hot or dead pixels repaired")
        if self.deflicker:
            d = self.deflicker
            out.append(f"deflicker   {100 * d['rms_correction']:.1f}% RMS exposure correction "
                       f"(largest {100 * d['largest_correction']:.1f}%), {len(d['steps_kept'])} lasting steps kept")
        if self.altitude:
            a = self.altitude
            out.append(f"altitude    from {a['source']}: {a['frames_with_altitude']} frames"
                       + (f" ({a['frames_estimated']} estimated)" if a["frames_estimated"] else "")
                       + (f", {a['highest_m']:.1f} m down to {a['lowest_m']:.1f} m" if a["highest_m"] is not None
                          else ""))
        if self.stabilisation:
            s = self.stabilisation
            out.append(f"stabilised  {s['mode']}: zoom {s['zoom']:.2f}x, {s['bridged_pairs']} pairs bridged, "
                       + (f"{s['perspective_pairs']} with perspective, " if s["perspective_pairs"] else "")
                       + f"{s['frames_with_fill']} frames with filled edges"
                       + (f", {100 * s['static_fraction']:.1f}% of the picture static" if s["static_fraction"] else ""))
        for note in self.notes:
            out.append(f"note        {note}")
        if self.output:
            o = self.output
            out.append(f"video       {o.path}: {o.frames} frames, {o.duration_s:.2f} s at {o.fps:g} fps, "
                       f"{o.width}x{o.height} {o.codec} ({o.encoder}"
                       + (f", crf {o.crf}" if o.crf is not None else "") + ")")
        return out


def _listing(title: str, items: list[str], shown: int = 10) -> list[str]:
    """A count, then the first few items indented under it."""
    lines = [f"{title:<11} {len(items)}"]
    lines += [f"              {item}" for item in items[:shown]]
    if len(items) > shown:
        lines.append(f"              ... {len(items) - shown} more")
    return lines


def _format_time(seconds: float | None, utc: bool) -> str | float | None:
    if seconds is None:
        return None
    if not utc:
        return round(seconds, 6)
    return format_utc(seconds)
