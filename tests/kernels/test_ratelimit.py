"""The iopub rate limiter: jupyter_server's rules (exempt types, one notice, idle resets)."""

from __future__ import annotations

from carme.kernels.ratelimit import IOPubRateLimiter, RateLimits

# A window so long that the test never sees it slide: rates are counts / 1000 s.
SLOW = RateLimits(msg_rate=0.01, data_rate=0, window=1000)


def test_message_rate_trips_once_then_drops_until_idle() -> None:
    limiter = IOPubRateLimiter(SLOW)
    results = [limiter.check("stream", 10) for _ in range(10)]
    assert results == [(True, None)] * 10  # 10 / 1000 s is the limit, not over it
    allowed, notice = limiter.check("stream", 10)
    assert not allowed and notice is not None and notice.startswith("IOPub message rate exceeded.")
    assert "ServerApp.iopub_msg_rate_limit=0.01 (msgs/sec)" in notice
    assert limiter.check("display_data", 10) == (False, None)  # dropped, no second notice
    for exempt in ("status", "comm_open", "execute_input"):
        assert limiter.check(exempt, 10) == (True, None)
    assert limiter.check("status", 10, idle=True) == (True, None)
    assert limiter.check("stream", 10) == (True, None)  # idle reset every count


def test_data_rate_counts_stream_bytes_only() -> None:
    limiter = IOPubRateLimiter(RateLimits(msg_rate=0, data_rate=1.0, window=1000))
    assert limiter.check("display_data", 10_000) == (True, None)  # not a stream: 0 bytes
    assert limiter.check("stream", 1000) == (True, None)
    allowed, notice = limiter.check("stream", 1)
    assert not allowed and notice is not None and notice.startswith("IOPub data rate exceeded.")
