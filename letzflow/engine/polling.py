"""When to look at a LetzAI job again: a pure policy, plus the learned typical durations.

The aim is to poll when a job is likely done, not on a fixed clock: the first look comes at the learned
first-look time of that kind of job, just before most such jobs end; after that, ``progress`` tells how much
is left, so a second look usually finds the job done.

The first-look time is learned as a low quantile of durations, not their mean: a mean-timed first look
finds half the jobs already finished (their slot idles until the look), and timing looks by when jobs were
*seen* done only ever drifts later. :func:`update_first_look` nudges it down for a job that took no longer
than the current first-look time and up for one that took longer, settling where
:data:`FIRST_LOOK_DONE_SHARE` of jobs end before the first look (more of sub-second jobs: :func:`done_share`).

A running job is compared with the *current* first-look time, using its duration as ``progress`` tells
it (:func:`ended_within`), not merely counted as "not done at its look". That count is feedback with a
delay of one job's duration: at 40 first looks a second, every step of the last two seconds pointed the
same way, and the time swung between 0.1 s and 3.4 s for 2 s jobs (measured).

**Cold start** (nothing learned yet for a kind of job): the first look comes early
(:data:`COLD_FIRST_LOOK`), and a job that shows progress ``p`` after ``e`` seconds says it takes about
``e * 100 / p`` (:func:`duration_estimate`); the next look comes then. A job still at progress 0 is looked at
again after as long again as it has run (looks double, bounded by the ceiling). The estimates of the first
:data:`SEED_SAMPLES` jobs set the learned first-look time at once (:func:`seeded_first_look`); the quantile
tracker takes over from there. :func:`what_a_look_teaches` is that decision, as a pure function.
"""

from __future__ import annotations

#: Typical durations in seconds (letzai-api.md: images 10-30 s, videos 30 s - 5 min), until learned.
DEFAULT_EXPECTED = {"image": 15.0, "image_edit": 15.0, "upscale": 15.0, "video": 90.0, "model": 400.0}
MIN_DELAY = 0.25
#: Seconds after the end that ``progress`` predicts a look comes, and the least wait when it predicts one.
#: No margin: the prediction from a whole percent rounded down already errs late (by half a percent of the
#: job on average), and a look's dispatch adds 20-40 ms; with 0.03 s, looks that progress timed came 65 ms
#: after the end on average and never early (300 jobs of 2 s), with none 43 ms, still never early.
PROGRESS_MARGIN = 0.0
PROGRESS_MIN_DELAY = 0.1
#: How uncertain (seconds, or share of the job) a progress-predicted end may be before the look comes at
#: the earliest end the progress allows instead of the latest.
PROGRESS_TOLERANCE = 0.1
PROGRESS_TOLERANCE_SHARE = 0.02
MAX_DELAY = {"image": 20.0, "image_edit": 20.0, "upscale": 20.0, "video": 45.0, "model": 60.0}


def next_poll_delay(
    kind: str,
    elapsed: float,
    progress: float,
    expected: float | None = None,
    *,
    polls: int = 0,
    ceiling: float | None = None,
    cold: bool = False,
) -> float:
    """Seconds until the next GET of a job of ``kind``.

    Args:
        kind: image, image_edit, upscale, video or model.
        elapsed: seconds since submission.
        progress: the job's last reported progress, 0-100 (0 when unknown).
        expected: the typical duration of such a job (learned), default per kind.
        polls: GETs so far; a job that outlives every estimate is polled at growing intervals.
        ceiling: an upper bound (a safe fraction of the broker's visibility timeout).
        cold: nothing is learned for such jobs: without progress, look again after as long again as the job
            has run (``expected`` is ignored); with progress, the look comes at the end it predicts.
    """
    typical = expected if expected and expected > 0 else DEFAULT_EXPECTED.get(kind, 15.0)
    floor = MIN_DELAY
    if 0 < progress < 100 and elapsed > 0:
        # The API reports whole percents, rounded down: this estimate already errs late by up to one
        # percent of the job, so the look needs only a small margin (a look that comes early costs a GET;
        # a late one holds the in-flight slot idle).
        latest = elapsed * 100.0 / progress
        earliest = elapsed * 100.0 / (progress + 1.0)
        if latest - earliest > max(PROGRESS_TOLERANCE, PROGRESS_TOLERANCE_SHARE * latest):
            # one percent is a long time yet (a cold look at a few percent): look when the job can first
            # have ended; that look's progress tells the end closely
            latest = earliest
        delay = latest - elapsed + PROGRESS_MARGIN
        floor = PROGRESS_MIN_DELAY
    elif cold:
        delay = max(MIN_DELAY, elapsed)
    elif elapsed < typical:
        delay = typical - elapsed
    else:
        # Past the typical duration with no progress signal: back off gently.
        delay = max(MIN_DELAY, typical * 0.25 * (1.5 ** min(polls, 6)))
    upper = MAX_DELAY.get(kind, 20.0)
    if ceiling is not None:
        upper = min(upper, ceiling)
    return max(floor, min(upper, delay))


#: Share of first looks that should find the job already done (a low quantile of durations).
FIRST_LOOK_DONE_SHARE = 0.25
#: The share for short jobs, and the first-look times (s) between which it rises to it (see done_share).
SHORT_JOB_DONE_SHARE = 0.75
SHORT_JOB_RANGE = (0.5, 1.5)


def done_share(first_look: float) -> float:
    """Share of first looks that should find the job done, for a first-look time of ``first_look`` s.

    :data:`FIRST_LOOK_DONE_SHARE` for jobs of a few seconds and more. A look that finds a job running is
    followed by one at least :data:`PROGRESS_MIN_DELAY` plus a task's dispatch later (about 0.15 s): for
    jobs under a second that is as long as the spread of their durations, so a later first look costs no
    time and saves the second GET. The share rises to :data:`SHORT_JOB_DONE_SHARE` below
    :data:`SHORT_JOB_RANGE`.
    """
    low, high = SHORT_JOB_RANGE
    weight = min(1.0, max(0.0, (high - first_look) / (high - low)))
    return FIRST_LOOK_DONE_SHARE + (SHORT_JOB_DONE_SHARE - FIRST_LOOK_DONE_SHARE) * weight


#: Largest step size of the first-look time, as a fraction of it, per observed first look.
FIRST_LOOK_RATE = 0.05


#: A job found done at a look this many first-look times after submission says nothing of the quantile.
LATE_LOOK = 3.0


def ended_within(first_look: float, done: bool, elapsed: float, progress: float) -> bool | None:
    """Whether a job took at most ``first_look`` seconds, as far as its first look tells.

    Args:
        first_look: the current learned first-look time.
        done: the first look found the job finished, ``elapsed`` seconds after submission.
        progress: the job's progress then (0-100; 0 when unknown).

    A job found done at its first look counts as ended within it (its look came at the first-look time
    of its submission), unless that look came more than :data:`LATE_LOOK` times the current first-look
    time after submission: after a cold start (first looks at the 15 s default for 2 s jobs) a whole
    wave of such looks would otherwise drive the time far below the jobs' durations. A running job's
    whole duration is about ``elapsed * 100 / progress``, and that is compared with the *current*
    first-look time, so a first-look time that has already risen past it is not pushed further up by
    looks planned earlier. None when the look tells nothing (also: a running job that shows no
    progress, looked at before ``first_look``).
    """
    if done:
        return True if elapsed <= LATE_LOOK * first_look else None
    if progress >= 1:
        return elapsed * 100.0 / progress <= first_look
    return False if elapsed >= first_look else None


def first_look_rate(max_inflight: int, learned: int = 0) -> float:
    """The step size after ``learned`` looks, for a cluster with ``max_inflight`` slots.

    All the looks of one wave (up to ``max_inflight`` jobs submitted together) were planned with the same
    time, and what they teach arrives a whole job later: at 5 % a look, 100 looks of one wave moved it by a
    factor of 3 or more and it swung around the quantile for good (simulated in the unit tests). So the
    step shrinks from 5 % towards about one step's worth per wave (``1 / max_inflight``): fast from the
    cold defaults (15 s for images, 90 s for videos), steady once learned.
    """
    settled = min(FIRST_LOOK_RATE, 1.0 / max(1, max_inflight))
    return max(settled, FIRST_LOOK_RATE * 100.0 / (100.0 + max(0, learned)))


def update_first_look(old: float | None, done: bool, default: float, rate: float = FIRST_LOOK_RATE) -> float:
    """The learned first-look time after one job that ended within it (``done``) or not.

    A stochastic quantile tracker in log space: converges to the duration below which
    :data:`FIRST_LOOK_DONE_SHARE` of jobs finish, moving ``rate`` (a few percent at most) per job.
    """
    current = old if old and old > 0 else default
    step = done_share(current) - (1.0 if done else 0.0)
    return max(0.05, current * (1.0 + rate * step))


def update_expected(old: float | None, observed: float, weight: float = 0.2) -> float:
    """Exponentially weighted mean of observed durations."""
    if old is None or old <= 0:
        return observed
    return (1 - weight) * old + weight * observed


#: Seconds after submission of the first look at a job of a kind nothing is learned for: early enough that
#: a 2 s job shows its progress, late enough that a 15 s one has left ``new`` on most APIs.
COLD_FIRST_LOOK = 1.0
#: The cold first look never comes sooner than this (a kind whose jobs all end before every look).
COLD_MIN_LOOK = 0.1
#: Progress estimates that set the first learned first-look time; the tracker takes over after them.
SEED_SAMPLES = 20
#: The tracker starts from a seeded time as from this many looks (its step is small from the start).
SEED_WEIGHT = 100
#: Least progress (percent) that is read as an estimate: at 1 % the whole-percent rounding alone errs 2x.
ESTIMATE_MIN_PROGRESS = 5.0


def duration_estimate(elapsed: float, progress: float) -> float | None:
    """A running job's whole duration, as its progress tells it (seconds), or None if it tells too little.

    The API reports whole percents rounded down: a job at ``p`` % is between ``p`` and ``p + 1`` % done, so
    the estimate takes the middle.
    """
    if elapsed <= 0 or not ESTIMATE_MIN_PROGRESS <= progress < 100:
        return None
    return elapsed * 100.0 / (progress + 0.5)


def seeded_first_look(estimates: list[float]) -> float:
    """The first-look time the seed estimates give: their :func:`done_share` quantile."""
    ordered = sorted(e for e in estimates if e > 0)
    if not ordered:
        raise ValueError("no estimates")
    value = _quantile(ordered, FIRST_LOOK_DONE_SHARE)
    for _ in range(3):  # the share depends on the time itself (short jobs): settle it
        value = _quantile(ordered, done_share(value))
    return value


def _quantile(ordered: list[float], share: float) -> float:
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cold_look_after_done(cold_look: float, elapsed: float) -> float:
    """The cold first look after a cold job was found done ``elapsed`` s after submission: half that.

    Every job of a first wave may be found done at the same look: each sets half its own look, so a wave
    halves the time once, not once per job.
    """
    return max(COLD_MIN_LOOK, min(cold_look, elapsed / 2.0))


def what_a_look_teaches(
    *,
    samples: int,
    first_look: bool,
    done: bool,
    elapsed: float,
    progress: float,
    had_progress: bool,
) -> tuple[str, float] | None:
    """What one look at a job teaches the learned figure of its kind.

    Args:
        samples: seed estimates taken so far (:data:`SEED_SAMPLES` or more: seeding is over).
        first_look: this is the job's first look.
        done: the look found the job finished.
        elapsed: seconds since submission.
        progress: the job's progress at this look (0-100).
        had_progress: an earlier look of the job showed progress (it has given its estimate already).

    Returns ``("sample", seconds)``: a seed estimate; ``("cold", elapsed)``: nothing is known and the job
    was done at its first look (the cold look comes sooner next time); ``("track", 0.0)``: the quantile
    tracker learns from this first look (:func:`ended_within`); None: nothing to learn.
    """
    if samples >= SEED_SAMPLES:
        return ("track", 0.0) if first_look else None
    if done:
        if not first_look:
            return None
        # done by its first look: an upper bound only. Before any estimate it says the cold look is late.
        return ("sample", elapsed) if samples > 0 else ("cold", elapsed)
    if had_progress:
        return None
    estimate = duration_estimate(elapsed, progress)
    return ("sample", estimate) if estimate is not None else None
