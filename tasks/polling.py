"""When to look at a LetzAI job again: a pure policy, plus the learned typical durations.

The aim is to poll when a job is likely done, not on a fixed clock: the first look comes at the learned
first-look time of that kind of job, just before most such jobs end; after that, ``progress`` tells how much
is left, so a second look usually finds the job done.

The first-look time is learned as a low quantile of durations, not their mean: a mean-timed first look
finds half the jobs already finished (their slot idles until the look), and timing looks by when jobs were
*seen* done only ever drifts later. :func:`update_first_look` nudges it down for a job that took no longer
than the current first-look time and up for one that took longer, settling where
:data:`FIRST_LOOK_DONE_SHARE` of jobs end before the first look.

A running job is compared with the *current* first-look time, using its duration as ``progress`` tells
it (:func:`ended_within`), not merely counted as "not done at its look". That count is feedback with a
delay of one job's duration: at 40 first looks a second, every step of the last two seconds pointed the
same way, and the time swung between 0.1 s and 3.4 s for 2 s jobs (measured).
"""

from __future__ import annotations

#: Typical durations in seconds (letzai-api.md: images 10-30 s, videos 30 s - 5 min), until learned.
DEFAULT_EXPECTED = {"image": 15.0, "image_edit": 15.0, "upscale": 15.0, "video": 90.0, "model": 400.0}
MIN_DELAY = 0.25
#: Seconds after the end that ``progress`` predicts a look comes, and the least wait when it predicts one.
PROGRESS_MARGIN = 0.03
PROGRESS_MIN_DELAY = 0.1
MAX_DELAY = {"image": 20.0, "image_edit": 20.0, "upscale": 20.0, "video": 45.0, "model": 60.0}


def next_poll_delay(
    kind: str,
    elapsed: float,
    progress: float,
    expected: float | None = None,
    *,
    polls: int = 0,
    ceiling: float | None = None,
) -> float:
    """Seconds until the next GET of a job of ``kind``.

    Args:
        kind: image, image_edit, upscale, video or model.
        elapsed: seconds since submission.
        progress: the job's last reported progress, 0-100 (0 when unknown).
        expected: the typical duration of such a job (learned), default per kind.
        polls: GETs so far; a job that outlives every estimate is polled at growing intervals.
        ceiling: an upper bound (a safe fraction of the broker's visibility timeout).
    """
    typical = expected if expected and expected > 0 else DEFAULT_EXPECTED.get(kind, 15.0)
    floor = MIN_DELAY
    if 0 < progress < 100 and elapsed > 0:
        # The API reports whole percents, rounded down: this estimate already errs late by up to one
        # percent of the job, so the look needs only a small margin (a look that comes early costs a GET;
        # a late one holds the in-flight slot idle).
        remaining = elapsed * (100.0 - progress) / progress
        delay = remaining + PROGRESS_MARGIN
        floor = PROGRESS_MIN_DELAY
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
    step = FIRST_LOOK_DONE_SHARE - (1.0 if done else 0.0)
    return max(0.05, current * (1.0 + rate * step))


def update_expected(old: float | None, observed: float, weight: float = 0.2) -> float:
    """Exponentially weighted mean of observed durations."""
    if old is None or old <= 0:
        return observed
    return (1 - weight) * old + weight * observed
