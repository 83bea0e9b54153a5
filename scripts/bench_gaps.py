"""Benchmark lock through gaps of frames without ground: dropouts, frames exposed for nothing.

`--count` descents (24) drawn at random (`--seed`) over the envelope of bench_stabilise's sweep (site
offset 0-0.45 frame widths, a divert of 0-0.5, yaw 0-120 degrees, jitter 1-10 px, tilt 0-1 degree,
0-5% frames lost, 1-15 frames/s, a lander leg or not, dust at the end or not), each with a gap:
2 to 40 consecutive frames, starting anywhere from 15% to 75% of the descent, replaced by a flat
field with read noise, dark (1-5% of full scale) or grey (30-70%); in three of ten, the gap comes and
goes over 1 or 2 frames half blank on either side.

Each is measured (pass 1) and planned in lock mode, and the true landing site (the ground under
the centre of the last measured frame, carried into every frame by the generator's true maps) is
put through each frame's correction: its wander around its mean, RMS and max, in output pixels,
over the frames that show ground (the gap's own frames and the dust left out). The same with the
measurement across the gap switched off (the gap's bridges alone), to show what it does. Also:
pairs inside the gap that were "tracked" (there is nothing to track: should be 0), gaps measured
across, and the brightness change measured across the gap against the true one.

It works on the camera path, not on a decoded video: what it checks is pass 1 and the path through
the gap; bench_stabilise --sweep scores the whole build.

Usage: python scripts/bench_gaps.py [--count 24] [--seed 1] [--size 256] [--frames 120]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from bench_stabilise import draw_specs
from synthetic_descent import DescentSpec, generate

import descent.stabilise.motion as motion_module
from descent.build import RunConfig, SourceConfig
from descent.build.scan import scan
from descent.normalise import NormaliseConfig, plan_normalisation
from descent.options import StabiliseMode
from descent.sources.images import read_pixels
from descent.stabilise.analyse import measure_motion
from descent.stabilise.motion import FrameMotion
from descent.stabilise.path import PathConfig, plan_path
from descent.stabilise.similarity import normalised_to_pixel, pixel_to_normalised


@dataclass(frozen=True, slots=True)
class GapFigures:
    wander_rms_px: float
    wander_max_px: float
    tracked_in_gap: int  # pairs inside the gap measured by tracks (there is no ground in them)
    measured_across: bool  # the frame after the gap was measured against the frame before it
    gain_error_pct: float  # the brightness change across the gap, measured against the truth (nan: none)
    zoom_across: float  # the true zoom from the frame before the gap to the frame after it


def draw_gaps(count: int, seed: int, size: int, frames: int) -> list[DescentSpec]:
    rng = np.random.default_rng(seed + 1000)
    specs = []
    for spec in draw_specs(count, seed, size, frames):
        length = int(rng.integers(2, 41))
        start = int(rng.integers(round(0.15 * frames), round(0.75 * frames)))
        dark = bool(rng.random() < 0.5)
        level = float(rng.uniform(0.01, 0.05) if dark else rng.uniform(0.3, 0.7))
        edges = int(rng.integers(1, 3)) if rng.random() < 0.3 else 0
        specs.append(replace(spec, blank_at=start, blank_level=level, blank_edges=edges,
                             blank_frames=min(length, frames - spec.dust_frames - start - 2 - 2 * edges)))
    return specs


def figures(root: Path, spec: DescentSpec, *, across: bool) -> GapFigures:
    truth = json.loads((root / "truth.json").read_text())
    by_name = {f["file"]: f for f in truth["frames"]}
    infos = scan(SourceConfig(inputs=(str(root),)), RunConfig(progress=False)).sequence.frames
    frames = [by_name[Path(info.name).name] for info in infos]
    prepare = plan_normalisation(infos, NormaliseConfig(), workers=2, read=read_pixels).analysis_grey
    saved = motion_module.SEARCH_MIN_AGREEMENT
    if not across:
        motion_module.SEARCH_MIN_AGREEMENT = math.inf
    try:
        motions = measure_motion(infos, user_mask=None, workers=2, prepare=prepare,
                                 progress=lambda items, total: iter(items)).motions
    finally:
        motion_module.SEARCH_MIN_AGREEMENT = saved
    path = plan_path(motions, PathConfig(mode=StabiliseMode.LOCK, smoothing_frames=30), frame_aspect=1.0,
                     out_aspect=1.0)
    index = np.array([f["index"] for f in frames])
    full = (index >= spec.blank_at) & (index < spec.blank_at + spec.blank_frames)
    # The half blank frames either side are left out of the wander too: only part of them is ground.
    blank = (index >= spec.blank_at - spec.blank_edges) & (index < spec.blank_at + spec.blank_frames + spec.blank_edges)
    dust = index >= spec.frames - spec.dust_frames
    offsets = site_offsets_px(frames, motions, path, spec.size_px)
    shown = ~blank & ~dust
    wander = np.hypot(*(offsets[shown] - offsets[shown].mean(axis=0)).T)
    inside = [i for i in range(1, len(motions)) if full[i] and full[i - 1]]
    after = int(np.argmax(index >= spec.blank_at + spec.blank_frames))
    measured = motions[after].across_from is not None
    gain_error = math.nan
    if measured and motions[after].log_gain is not None:
        before = motions[after].across_from
        assert before is not None
        true = math.log(frames[after]["gain"] / frames[before]["gain"])
        gain_error = 100 * abs(math.expm1(motions[after].log_gain - true))
    zoom = frames[after - 1 - int(full[:after].sum())]["m_per_px"] / frames[after]["m_per_px"]
    return GapFigures(float(np.sqrt(np.mean(wander**2))), float(wander.max()),
                      sum(not motions[i].bridged for i in inside), measured, gain_error, zoom)


def site_offsets_px(frames: list[dict], motions: list[FrameMotion], path, size: int) -> np.ndarray:
    """The true site in each output frame, pixels: the ground under the centre of the last frame pass 1
    measured, through each frame's true map and its correction."""
    last = max(i for i, m in enumerate(motions) if not m.bridged)
    to_ground = [np.array(f["frame_to_ground"]) for f in frames]
    site = to_ground[last] @ [(size - 1) / 2, (size - 1) / 2, 1.0]
    to_norm, to_px = pixel_to_normalised(size, size), normalised_to_pixel(size, size)
    out = []
    for i, frame_map in enumerate(to_ground):
        x, y, w = np.linalg.solve(frame_map, site)
        normalised = (to_norm @ [x / w, y / w, 1.0])[:2]
        moved = path.correction(i).apply(normalised[None])[0]
        out.append((to_px @ [moved[0], moved[1], 1.0])[:2])
    return np.array(out)


def describe(spec: DescentSpec) -> str:
    kind = "dark" if spec.blank_level < 0.2 else "grey"
    edges = f" +{spec.blank_edges} half" if spec.blank_edges else "       "
    return (f"{spec.blank_frames:2d} {kind}{edges} frames from {spec.blank_at:3d}, {spec.fps:4.1f} frames/s, "
            f"site {spec.site_offset:.2f} w, divert {spec.divert_fraction:.2f} w")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="descent-gaps-"))
    rows = []
    try:
        for k, spec in enumerate(draw_gaps(args.count, args.seed, args.size, args.frames)):
            folder = root / f"d{k}"
            generate(folder, spec)
            now, bridges = figures(folder, spec, across=True), figures(folder, spec, across=False)
            rows.append((now, bridges))
            gain = "-" if math.isnan(now.gain_error_pct) else f"{now.gain_error_pct:.1f}%"
            print(f"{k:2d} {describe(spec)}, zoom {now.zoom_across:4.1f}x across: "
                  f"wander {now.wander_rms_px:6.2f} / {now.wander_max_px:6.2f} px "
                  f"(bridges alone {bridges.wander_rms_px:6.2f} / {bridges.wander_max_px:6.2f}); "
                  f"across {'yes' if now.measured_across else 'NO '}, tracked in the gap {now.tracked_in_gap}, "
                  f"brightness across off by {gain}", flush=True)
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def column(pick) -> str:
        values = np.array([pick(r) for r in rows], float)
        values = values[np.isfinite(values)]
        return f"{np.median(values):7.2f} {values.max():7.2f}" if len(values) else "      -       -"

    print(f"\n{len(rows)} descents (seed {args.seed}, {args.size} px, {args.frames} frames)   median   worst")
    print(f"site wander RMS, px (target 1)        {column(lambda r: r[0].wander_rms_px)}")
    print(f"site wander max, px                   {column(lambda r: r[0].wander_max_px)}")
    print(f"... the gap's bridges alone, RMS      {column(lambda r: r[1].wander_rms_px)}")
    print(f"brightness across the gap, % off      {column(lambda r: r[0].gain_error_pct)}")
    within = [r for r in rows if r[0].zoom_across <= motion_module.ACROSS_MAX_ZOOM]
    print(f"gaps measured across: {sum(r[0].measured_across for r in rows)} of {len(rows)}; of those zooming at most "
          f"{motion_module.ACROSS_MAX_ZOOM:g}x across, {sum(r[0].measured_across for r in within)} of {len(within)}; "
          f"pairs tracked inside a gap: {sum(r[0].tracked_in_gap for r in rows)}")
    print(f"site wander RMS where measured across, px: worst "
          f"{max((r[0].wander_rms_px for r in rows if r[0].measured_across), default=math.nan):.2f}")


if __name__ == "__main__":
    main()
