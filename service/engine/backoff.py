"""Per-widget refresh bookkeeping: what /health reports and what backoff is computed from.

The lock holder writes it to the shared cache, so every replica reports the same failures and
none retries while another is backing off.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class RefreshState:
    last_success: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    last_error_reason: str | None = None
    consecutive_failures: int = 0
    #: No attempt before this time (backoff or Retry-After).
    retry_at: float = 0.0
    #: Parts of the last accepted fetch that failed a sanity check (kept at their last good value).
    rejected: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RefreshState:
        doc = json.loads(raw)
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


def backoff_seconds(
    failures: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    give_up_early: bool = False,
) -> float:
    """Glance-style quadratic backoff (base × n²) capped at the refresh interval.

    ``give_up_early`` goes straight to the cap (for failures a quick retry cannot fix). An
    upstream's own ``Retry-After`` is honoured even when it asks for longer than the cap.
    """
    delay = cap if give_up_early else min(base * failures * failures, cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
