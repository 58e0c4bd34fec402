"""When to look at a LetzAI job again: a pure policy, plus the learned typical durations.

The aim is to poll when a job is likely done, not on a fixed clock: the first look comes near the
typical duration of that kind of job; after that, ``progress`` tells how much is left.
"""

from __future__ import annotations

#: Typical durations in seconds (letzai-api.md: images 10-30 s, videos 30 s - 5 min), until learned.
DEFAULT_EXPECTED = {"image": 15.0, "image_edit": 15.0, "upscale": 15.0, "video": 90.0, "model": 400.0}
MIN_DELAY = 0.25
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
    if 0 < progress < 100 and elapsed > 0:
        remaining = elapsed * (100.0 - progress) / progress
        delay = remaining * 1.02 + 0.05
    elif elapsed < typical:
        delay = typical - elapsed
    else:
        # Past the typical duration with no progress signal: back off gently.
        delay = max(MIN_DELAY, typical * 0.25 * (1.5 ** min(polls, 6)))
    upper = MAX_DELAY.get(kind, 20.0)
    if ceiling is not None:
        upper = min(upper, ceiling)
    return max(MIN_DELAY, min(upper, delay))


def update_expected(old: float | None, observed: float, weight: float = 0.2) -> float:
    """Exponentially weighted mean of observed durations."""
    if old is None or old <= 0:
        return observed
    return (1 - weight) * old + weight * observed
