"""Pass 1 over the whole sequence: the static mask, then the motion between consecutive frames,
then, where a run of frames shows no ground, the motion across it (measure_across).

Each pair also gives its brightness ratio on the ground the two frames share (aligned by the
motion just measured, away from static parts), which deflicker uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np

from descent.errors import FrameReadError
from descent.frames import FrameInfo, Read
from descent.normalise.deflicker import aligned_log_ratio
from descent.parallel import ordered_map
from descent.sources.images import read_pixels
from descent.stabilise.motion import (
    FrameMotion,
    PairMotion,
    analysis_copy,
    bridge,
    ground_coverage,
    measure_across,
    measure_pair,
    place_by_correlation,
    static_mask,
)
from descent.stabilise.similarity import Similarity, to_pixels

MASK_SAMPLE_PAIRS = 16
CHUNK_FRAMES = 16


@dataclass(frozen=True, slots=True)
class Analysis:
    motions: list[FrameMotion]
    static_fraction: float  # share of the picture found not to move with the ground
    static_mask: np.ndarray | None = None  # analysis size, 0 where static (found or given); None: nothing static


Prepare = Callable[[np.ndarray], np.ndarray]  # decoded pixels -> 8-bit grey (NormalisePlan.analysis_grey)


def as_decoded(pixels: np.ndarray) -> np.ndarray:
    """Frames as decoded; analysis_copy makes them grey and 8-bit (for callers without a NormalisePlan)."""
    return pixels


def analysis_picture(info: FrameInfo, prepare: Prepare, read: Read = read_pixels) -> np.ndarray | None:
    """What motion and brightness are measured on for one frame; None if it cannot be read (pass 2
    reports it, and here the pair is bridged)."""
    try:
        return analysis_copy(prepare(read(info)))
    except FrameReadError:
        return None


def find_static_mask(infos: list[FrameInfo], *, workers: int, prepare: Prepare = as_decoded) -> np.ndarray | None:
    """Static parts from pairs of consecutive frames spread over the descent."""
    return _static_mask_of(_mask_sample(infos, workers=workers, prepare=prepare, read=read_pixels), workers=workers)[0]


def _mask_sample(infos: list[FrameInfo], *, workers: int, prepare: Prepare,
                 read: Read) -> dict[int, np.ndarray | None]:
    """Analysis pictures of the pairs the static mask is found from, by frame index."""
    starts = sorted({round(i) for i in np.linspace(0, len(infos) - 2, min(MASK_SAMPLE_PAIRS, len(infos) - 1))})
    indices = sorted({i for start in starts for i in (start, start + 1)})
    pictures = ordered_map(lambda i: analysis_picture(infos[i], prepare, read), indices, workers=workers)
    return dict(zip(indices, pictures, strict=True))


def _static_mask_of(sample: dict[int, np.ndarray | None], *,
                    workers: int) -> tuple[np.ndarray | None, dict[int, PairMotion | None]]:
    """The static mask, and the motion of each sample pair by the index of its second frame (measured
    without a mask, as pass 1 measures every pair when no static part is found)."""
    def pair(start: int) -> PairMotion | None:
        previous, current = sample[start], sample[start + 1]
        assert previous is not None and current is not None
        return measure_pair(previous, current)

    starts = [i for i in sample if i + 1 in sample and _comparable(sample[i], sample[i + 1])]
    motions = dict(zip((i + 1 for i in starts), ordered_map(pair, starts, workers=workers), strict=True))
    pairs = []
    for i, motion in motions.items():
        before, after = sample[i - 1], sample[i]
        if motion is not None and before is not None and after is not None:
            pairs.append((before, after, motion.transform))
    mask = static_mask(pairs) if len({p[0].shape for p in pairs}) == 1 else None
    return mask, motions


def _comparable(before: np.ndarray | None, after: np.ndarray | None) -> bool:
    return before is not None and after is not None and before.shape == after.shape


Measured = tuple[PairMotion | None, float | None]  # motion and support; log gain


def measure_motion(infos: list[FrameInfo], *, user_mask: np.ndarray | None, workers: int,
                   prepare: Prepare = as_decoded, read: Read = read_pixels,
                   progress: Callable[[Iterable[object], int], Iterator[object]],
                   precise: bool = True) -> Analysis:
    """Motion of every frame relative to the one before it, bridged where it could not be measured.

    `precise` False: each pair's first estimate only (estimate_motion), for a build that needs the
    motion only to compare brightness (deflicker without stabilisation or the altitude chain).

    Workers take runs of CHUNK_FRAMES consecutive frames, decode them and measure each pair; a
    run's first pair decodes the frame before it once more (one frame in CHUNK_FRAMES), which
    costs less than handing every picture from a decoding thread to a measuring one. Pairs do not
    depend on each other (no motion is carried from one pair to the next), so the result is the
    same for any number of workers.
    """
    # The sample's pictures are kept (a few MB) and used again below instead of decoding them twice.
    sample = _mask_sample(infos, workers=workers, prepare=prepare, read=read)
    mask, sample_motions = _static_mask_of(sample, workers=workers)
    static_fraction = 0.0 if mask is None else float((mask == 0).mean())
    if user_mask is not None:
        mask = user_mask if mask is None else _combine(mask, user_mask)

    # With no static part found or given, the mask search measured its pairs exactly as below.
    known = sample_motions if mask is None else {}

    def load(index: int) -> np.ndarray | None:
        return sample[index] if index in sample else analysis_picture(infos[index], prepare, read)

    def measure(index: int, before: np.ndarray | None, after: np.ndarray | None) -> Measured:
        if before is None or after is None or before.shape != after.shape:
            return None, None
        motion = known[index] if index in known else measure_pair(before, after, mask, precise=precise)
        h, w = before.shape
        ground = _resized(mask, (w, h))
        # Unmeasured motion (dust, darkness): the brightness is compared unaligned, which at these
        # frame rates still compares mostly the same ground.
        return motion, aligned_log_ratio(before, after, to_pixels(motion.transform, w, h) if motion else None, ground)

    def measure_run(start: int) -> tuple[list[Measured], dict[int, np.ndarray]]:
        previous = load(start - 1) if start > 0 else None
        measured: list[Measured] = []
        beside_failed: dict[int, np.ndarray] = {}
        for index in range(start, min(start + CHUNK_FRAMES, len(infos))):
            current = load(index)
            measured.append(measure(index, previous, current))
            GapEnds.offer(beside_failed, index, measured[-1][0], previous, current)
            previous = current
        return measured, beside_failed

    gap_ends = GapEnds()
    runs = ordered_map(measure_run, range(0, len(infos), CHUNK_FRAMES), workers=workers)
    results = progress(gap_ends.kept_from(runs), len(infos))
    motions: list[FrameMotion] = []
    for info, result in zip(infos, results, strict=True):
        motion, log_gain = cast(Measured, result)
        if motion is None:
            motions.append(FrameMotion(file=info.name, bridged=True, log_gain=log_gain))
        else:
            t = motion.transform
            homography = None if motion.homography is None else [float(v) for v in motion.homography.ravel()]
            motions.append(FrameMotion(info.name, t.log_scale, t.angle_rad, t.tx, t.ty, motion.inliers,
                                       motion.inlier_ratio, motion.residual_px, log_gain=log_gain,
                                       homography=homography))
    motions = bridge(motions)
    if precise:
        motions = _placed_by_correlation(motions, load, mask, workers=workers)
        motions = _measured_across_gaps(motions, gap_ends.load_or(load), mask, workers=workers)
    return Analysis(motions, static_fraction, mask)


class GapEnds:
    """The analysis pictures of the frames at either end of a gap (a run of pairs the tracks could not
    measure), kept from pass 1 so that measuring across the gap decodes nothing again: a video would
    restart its decoder for every gap. Pass 1 offers the pictures beside each failed pair, run by run
    in order; a picture is kept only while it may still be a gap's end, so at most a few are held."""

    def __init__(self) -> None:
        self.failed: list[bool] = []  # by pair, in order
        self.pictures: dict[int, np.ndarray] = {}

    @staticmethod
    def offer(beside_failed: dict[int, np.ndarray], index: int, motion: PairMotion | None, previous: np.ndarray | None,
              current: np.ndarray | None) -> None:
        """Pair `index`'s pictures into `beside_failed` if it failed (its motion None)."""
        if index > 0 and motion is None:
            beside_failed.update({k: p for k, p in ((index - 1, previous), (index, current)) if p is not None})

    def kept_from(self, runs: Iterable[tuple[list[Measured], dict[int, np.ndarray]]]) -> Iterator[Measured]:
        """Pass 1's results, run by run, with the pictures beside its failed pairs taken (add)."""
        for measured, beside_failed in runs:
            self.add([motion is None for motion, _ in measured], beside_failed)
            yield from measured

    def add(self, failed: list[bool], pictures: dict[int, np.ndarray]) -> None:
        self.failed += failed
        self.failed[0] = False  # pair 0 (the first frame alone) has nothing to fail
        self.pictures.update(pictures)
        for frame in [k for k in self.pictures if k + 1 < len(self.failed)]:
            # An end has one measured pair beside it and one failed.
            if self.failed[frame] == self.failed[frame + 1]:
                del self.pictures[frame]

    def load_or(self, load: Callable[[int], np.ndarray | None]) -> Callable[[int], np.ndarray | None]:
        return lambda index: self.pictures[index] if index in self.pictures else load(index)


def _placed_by_correlation(motions: list[FrameMotion], load: Callable[[int], np.ndarray | None],
                           mask: np.ndarray | None, *, workers: int) -> list[FrameMotion]:
    """Bridged pairs placed by the whole picture's correlation where it holds (place_by_correlation),
    with their brightness compared aligned by it. Each starts from its own bridge, which depends only
    on the measured pairs, so the result is the same for any number of workers."""
    def place(index: int) -> FrameMotion | None:
        before, after = load(index - 1), load(index)
        if before is None or after is None or before.shape != after.shape:
            return None
        h, w = before.shape
        ground = _resized(mask, (w, h))
        found = place_by_correlation(before, after, motions[index].transform, ground)
        if found is None:
            return None
        placed, correlation = found
        log_gain = aligned_log_ratio(before, after, to_pixels(placed, w, h), ground)
        return motions[index].with_transform(placed, correlation=correlation, log_gain=log_gain)

    if all(m.bridged for m in motions[1:]):
        # Nothing measured: no guess to start from, and nothing to check a placement against. A
        # sequence the tracks could not measure anywhere (thumbnails, blank frames) stays as it was.
        return motions
    bridged = [i for i, m in enumerate(motions) if m.bridged and i > 0]
    placed = dict(zip(bridged, ordered_map(place, bridged, workers=workers), strict=True))
    return [placed.get(i) or m for i, m in enumerate(motions)]


def bridged_runs(motions: list[FrameMotion]) -> list[tuple[int, int]]:
    """Runs of two or more consecutive bridged pairs, as (first, last) pair index: a gap of frames
    without measured ground between frame first - 1 and frame last."""
    runs, start = [], None
    for index in range(1, len(motions) + 1):
        bridged = index < len(motions) and motions[index].bridged
        if bridged and start is None:
            start = index
        elif not bridged and start is not None:
            if index - start >= 2:
                runs.append((start, index - 1))
            start = None
    return runs


def _measured_across_gaps(motions: list[FrameMotion], load: Callable[[int], np.ndarray | None],
                          mask: np.ndarray | None, *, workers: int) -> list[FrameMotion]:
    """Each gap's last frame measured against the frame before the gap (measure_across), and the
    gap's bridged pairs made to agree with that measurement.

    A bridge guesses every pair of a gap from the pairs on either side; over forty dark frames those
    guesses add up to a frame's worth of error (a site 24 px off in a 256 px video, and turned), and
    every frame before the gap, placed through the chain, carries it. Measured across, the chain
    over the gap is exact, and the error the guesses leave is shared out along the gap: each blank
    frame is placed a fraction of the way, in proportion to its place in the gap.
    """
    def across(run: tuple[int, int]) -> list[FrameMotion] | None:
        first, last = run
        steps = [motions[k].transform for k in range(first, last + 1)]
        guessed = [Similarity()]
        for step in steps:
            guessed.append(guessed[-1].then(step))
        found = _measured_between_ends(motions, run, guessed[-1], load, mask)
        if found is None:
            return None
        measured, correlation, log_gain = found
        # What the guess left out, after it (in the last frame's coordinates), a share of it at
        # each frame of the gap, by its place there: the gap's frames keep the shape of their guesses.
        left = guessed[-1].inverse().then(measured)
        placed = [pose.then(_part_of(left, k / len(steps))) for k, pose in enumerate(guessed)]
        out = []
        for k in range(first, last + 1):
            step = placed[k - first].inverse().then(placed[k - first + 1])
            # The frames of the gap have no ground to compare brightness on: they count as the
            # frame before the gap, and the gap's last frame takes the change measured across.
            if k < last:
                out.append(motions[k].with_transform(step, log_gain=None))
            else:
                out.append(motions[k].with_transform(step, bridged=False, correlation=correlation, log_gain=log_gain,
                                                     homography=None, across_from=first - 1))
        return out

    runs = [run for run in bridged_runs(motions) if _has_measured_ends(motions, run)]
    out = list(motions)
    for (first, last), spanned in zip(runs, ordered_map(across, runs, workers=workers), strict=True):
        if spanned is not None:
            out[first:last + 1] = spanned
    return out


def _has_measured_ends(motions: list[FrameMotion], run: tuple[int, int]) -> bool:
    """Whether a gap has a measured frame on either side: a run from the first frame has none before it
    (frame 0 may be blank itself: measured against it, a gap at the start cost 1.5 s for nothing), a run
    to the end none after it (dust to touchdown, where the site stays defined by the last frame the
    tracks measured)."""
    first, last = run
    return first >= 2 and last < len(motions) - 1


def _measured_between_ends(motions: list[FrameMotion], run: tuple[int, int], bridged: Similarity,
                           load: Callable[[int], np.ndarray | None],
                           mask: np.ndarray | None) -> tuple[Similarity, float, float | None] | None:
    """The motion from the frame before a gap to the frame after it (measure_across), with its
    correlation and brightness change; None if it cannot be measured.

    A dropout may begin or end with frames half blank: tracked against their whole neighbours, they
    cannot be compared across the gap. So either end moves back (or on), over measured pairs, to the
    nearest frame that shows ground all over (ground_coverage), and those pairs' motion and brightness
    are taken off again."""
    first, last = run
    back = _whole_frame_near(motions, load, first - 1, -1)
    on = _whole_frame_near(motions, load, last, +1)
    before, after = load(back), load(on)
    if before is None or after is None or before.shape != after.shape:
        return None
    # The measured pairs between each end and the frame used for it, and their brightness changes.
    behind = _chained(motions, back + 1, first - 1)
    beyond = _chained(motions, last + 1, on)
    h, w = before.shape
    ground = _resized(mask, (w, h))
    found = measure_across(before, after, behind[0].then(bridged).then(beyond[0]), ground)
    if found is None:
        return None
    measured = behind[0].inverse().then(found[0]).then(beyond[0].inverse())
    log_gain = _log_ratio_across(before, after, found[0], ground)
    return measured, found[1], None if log_gain is None else log_gain - behind[1] - beyond[1]


END_REACH = 4  # measured pairs a gap's end may move by to find a frame that shows ground all over
WHOLE_COVERAGE = 0.9


def _whole_frame_near(motions: list[FrameMotion], load: Callable[[int], np.ndarray | None], end: int,
                      direction: int) -> int:
    """The frame nearest `end`, moving away from the gap (`direction` -1: before it, +1: after) over
    measured pairs only, whose picture shows ground all over; `end` itself if none within END_REACH."""
    frame = end
    for _ in range(END_REACH + 1):
        picture = load(frame)
        if picture is not None and ground_coverage(picture) >= WHOLE_COVERAGE:
            return frame
        pair = frame if direction < 0 else frame + 1  # the pair between this frame and the next one out
        if not 0 < pair < len(motions) or motions[pair].bridged:
            break
        frame += direction
    return end


def _chained(motions: list[FrameMotion], first_pair: int, last_pair: int) -> tuple[Similarity, float]:
    """Pairs first_pair..last_pair chained: the motion over them, and the sum of their brightness changes."""
    motion, log_gain = Similarity(), 0.0
    for k in range(first_pair, last_pair + 1):
        motion = motion.then(motions[k].transform)
        log_gain += motions[k].log_gain or 0.0
    return motion, log_gain


def _log_ratio_across(before: np.ndarray, after: np.ndarray, motion: Similarity,
                      mask: np.ndarray | None) -> float | None:
    """The brightness change from `before` to `after`, frames a zoom of two or three apart: the mean of
    the ratio taken on either frame's pixels. Each alone is biased by the other frame's detail (the
    trim of brightness_log_ratio keeps more of the sharper frame's bright side): on a 2.9x gap with no
    change of exposure, -3.2% on the earlier frame's pixels, +3.7% on the later one's; the mean, +0.3%."""
    h, w = before.shape
    on_before = aligned_log_ratio(before, after, to_pixels(motion, w, h), mask)
    on_after = aligned_log_ratio(after, before, to_pixels(motion.inverse(), w, h), mask)
    if on_before is None or on_after is None:
        return on_before if on_after is None else -on_after
    return (on_before - on_after) / 2


def _part_of(motion: Similarity, share: float) -> Similarity:
    """A share of a similarity's way from the identity (exact at 0 and 1)."""
    return Similarity(motion.log_scale * share, motion.angle_rad * share, motion.tx * share, motion.ty * share)


def _resized(mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    import cv2

    if mask is None or (mask.shape[1], mask.shape[0]) == size:
        return mask
    return cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)


def _combine(found: np.ndarray, given: np.ndarray) -> np.ndarray:
    import cv2

    if given.shape != found.shape:
        given = cv2.resize(given, (found.shape[1], found.shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.minimum(found, given)
