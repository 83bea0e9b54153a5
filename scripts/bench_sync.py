"""Benchmark the synchronisation of a log with the images (`--time-offset auto`) over issue 15's envelope.

`--count` problems drawn by scripts/synthetic_sync.py from `--seed` on (logs of 0.5 to 30 Hz offset by
-30 to +30 s, frames at `--frame-rates`, taken in turn), each fitted as the build fits it (the chain's
bridged frames NaN). It prints the error against the truth in frame intervals (median, 95th percentile,
worst, how many over one), how well the reported standard error tracks it, and beside them the
Cramér-Rao bound: the least standard error any unbiased fit could have on the same problem, from its
true noise (the chain's random walk, the log's noise in metres and in share of altitude, its rounding)
with the camera's height and the chain's level and drift unknown. Where the bound is over a third of a
frame interval, no method can promise one interval: the bound's own expected worst is printed too.

Usage: python scripts/bench_sync.py [--count 200] [--seed 0] [--frame-rates 4,5,8,10,12] [--table]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from synthetic_sync import CHAIN_WALK, LOG_METRES, LOG_RELATIVE, Scenario, scenario

from descent.sync import fit_time_offset

ROUNDING_M = 0.1 / math.sqrt(12)  # the log's 0.1 m steps, as noise


def offset_bound_s(case: Scenario) -> float:
    """The Cramér-Rao bound on the offset's standard error, seconds: the log's samples among the frames,
    each with its true noise, against the chain's random walk (its covariance exact), the offset, the
    camera's height, and the chain's level and drift unknown."""
    times = case.true_log_times
    inside = (times >= case.frame_times[0]) & (times <= case.frame_times[-1])
    times, altitude = times[inside], case.clean_altitude_m[inside]
    height = altitude + case.camera_m
    slope = np.gradient(np.log(height), times)  # the clean log's: what a later offset changes
    log_sd = np.sqrt((LOG_RELATIVE * altitude) ** 2 + LOG_METRES**2 + ROUNDING_M**2) / height
    frames = (times - times[0]) * case.fps
    covariance = CHAIN_WALK**2 * np.minimum.outer(frames, frames) + np.diag(log_sd**2)
    design = np.column_stack([slope, np.ones_like(times), frames, 1 / height])
    information = design.T @ np.linalg.solve(covariance, design)
    return float(math.sqrt(np.linalg.inv(information)[0, 0]))


def expected_worst(bounds: np.ndarray, draws: int = 2000) -> tuple[float, float]:
    """The worst error (median and 90th percentile) of an efficient fit: normal errors with these spreads."""
    rng = np.random.default_rng(0)
    worst = np.abs(rng.normal(0.0, bounds, (draws, len(bounds)))).max(axis=1)
    return float(np.median(worst)), float(np.percentile(worst, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frame-rates", default="4,5,8,10,12")
    parser.add_argument("--table", action="store_true", help="print the README's table row")
    args = parser.parse_args()
    rates = [float(r) for r in args.frame_rates.split(",")]
    rows = []
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.count):
        case = scenario(seed, fps=rates[seed % len(rates)])
        fit = fit_time_offset(case.log, case.frame_times, case.measured_chain, frames_utc=True)
        bound = offset_bound_s(case) * case.fps
        error = abs(fit.offset_s - case.offset_s) * case.fps if fit.usable else math.nan
        rows.append((seed, case, fit, error, fit.sd_s * case.fps, bound))
    seconds = time.perf_counter() - started
    usable = [r for r in rows if math.isfinite(r[3])]
    errors = np.array([r[3] for r in usable])
    spreads = np.array([r[4] for r in usable])
    bounds = np.array([r[5] for r in rows])
    ratio = errors / spreads
    tight = spreads <= 0.5
    # An efficient fit on the problems descent's fit takes on (the refused ones can have no bound at all).
    usable_bounds = np.array([r[5] for r in usable])
    bound_over = float(sum(math.erfc(1 / (b * math.sqrt(2))) for b in usable_bounds))
    bound_worst = expected_worst(usable_bounds)
    print(f"{len(rows)} problems (seeds {args.seed}-{args.seed + args.count - 1}, frames at {args.frame_rates}/s), "
          f"{seconds / len(rows) * 1000:.0f} ms a fit; errors in frame intervals")
    print(f"  usable fits          {len(usable)} of {len(rows)}; the rest say why they are poor")
    print(f"  error                median {np.median(errors):.2f}, 95th percentile {np.percentile(errors, 95):.2f}, "
          f"worst {errors.max():.2f}; over one interval: {(errors > 1).sum()}")
    print(f"  error / reported sd  95th percentile {np.percentile(ratio, 95):.2f}, worst {ratio.max():.2f}")
    tight_worst = errors[tight].max() if tight.any() else math.nan
    print(f"  reported sd <= 0.5   {tight.sum()} fits, worst error {tight_worst:.2f}")
    print(f"  Cramér-Rao bound     median {np.median(bounds):.2f}, over 1/3: {(bounds > 1 / 3).sum()}, over 1: "
          f"{(bounds > 1).sum()}; on the usable ones an efficient fit would be over one interval {bound_over:.0f} "
          f"times, its worst {bound_worst[0]:.1f} (90% of sweeps under {bound_worst[1]:.1f})")
    print("  worst five:")
    for seed, case, _fit, error, spread, bound in sorted(usable, key=lambda r: -r[3])[:5]:
        print(f"    seed {seed:4d}  {error:5.2f} (sd {spread:.2f}, bound {bound:.2f})  {case.describe()}")
    if args.table:
        print(f"| seeds {args.seed}-{args.seed + args.count - 1} | {args.frame_rates.replace(',', ', ')} | "
              f"{len(usable)} of {len(rows)} | {np.median(errors):.2f} | {np.percentile(errors, 95):.2f} | "
              f"{errors.max():.2f} | {(errors > 1).sum()} | {bound_over:.0f} | {bound_worst[0]:.1f} |")


if __name__ == "__main__":
    main()
