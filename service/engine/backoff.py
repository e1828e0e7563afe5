"""Refresh bookkeeping per widget and per provider: what /health reports, what backoff is built on.

Failures and ``Retry-After`` belong to the provider that caused them: while one provider backs
off, the chain asks the next one. The lock holder writes the whole state to the shared cache, so
every replica reports the same failures and none asks a provider that is backing off.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ProviderState:
    consecutive_failures: int = 0
    #: Not asked again before this time (shared clock): backoff or the upstream's Retry-After.
    retry_at: float = 0.0
    last_error: str | None = None
    last_error_reason: str | None = None
    last_success: float | None = None

    def succeeded(self, now: float) -> None:
        self.consecutive_failures = 0
        self.retry_at = 0.0
        self.last_error = self.last_error_reason = None
        self.last_success = now

    def failed(self, now: float, reason: str, message: str, delay: float) -> None:
        self.consecutive_failures += 1
        self.last_error, self.last_error_reason = message, reason
        self.retry_at = now + delay


@dataclass
class RefreshState:
    last_success: float | None = None
    last_attempt: float | None = None
    #: Why the last refresh got no data from any provider; cleared by the next success.
    last_error: str | None = None
    last_error_reason: str | None = None
    #: Refreshes in a row in which no provider delivered.
    consecutive_failures: int = 0
    providers: dict[str, ProviderState] = field(default_factory=dict)
    #: Parts of the last accepted fetch that failed a sanity check (kept at their last good value).
    rejected: list[str] = field(default_factory=list)

    def provider(self, provider_id: str) -> ProviderState:
        found = self.providers.get(provider_id)
        if found is None:
            found = self.providers[provider_id] = ProviderState()
        return found

    def retry_at(self, chain: list[str]) -> float:
        """When the first provider of ``chain`` may be asked again (0: now)."""
        return min((self.provider(p).retry_at for p in chain), default=0.0)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RefreshState:
        """Raises ``ValueError`` on a state this release cannot read (another release, or junk)."""
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("providers", {}), dict):
            raise ValueError("not a refresh state")
        providers = {str(pid): _provider_state(value) for pid, value in doc.get("providers", {}).items()}
        rejected = doc.get("rejected", [])
        if not isinstance(rejected, list) or not all(isinstance(r, str) for r in rejected):
            raise ValueError("rejected: not a list of strings")
        return cls(
            last_success=_time_or_none(doc.get("last_success")),
            last_attempt=_time_or_none(doc.get("last_attempt")),
            last_error=_text_or_none(doc.get("last_error")),
            last_error_reason=_text_or_none(doc.get("last_error_reason")),
            consecutive_failures=_count(doc.get("consecutive_failures", 0)),
            providers=providers,
            rejected=rejected,
        )


def _provider_state(doc: Any) -> ProviderState:
    if not isinstance(doc, dict):
        raise ValueError("provider state: not an object")
    return ProviderState(
        consecutive_failures=_count(doc.get("consecutive_failures", 0)),
        retry_at=_time_or_none(doc.get("retry_at", 0.0)) or 0.0,
        last_error=_text_or_none(doc.get("last_error")),
        last_error_reason=_text_or_none(doc.get("last_error_reason")),
        last_success=_time_or_none(doc.get("last_success")),
    )


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise ValueError(f"not a failure count: {value!r}")
    return value


def _time_or_none(value: Any) -> float | None:
    """Seconds since the epoch, within years 1970..9999 (anything else cannot be a time we wrote)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 253402300800:
        raise ValueError(f"not a time: {value!r}")
    return float(value)


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a text: {value!r}")
    return value[:2000]


def backoff_seconds(
    failures: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    max_retry_after: float = 3600.0,
    give_up_early: bool = False,
) -> float:
    """Glance-style quadratic backoff (base × n²) capped at the refresh interval.

    ``give_up_early`` goes straight to the cap (for failures a quick retry cannot fix). An
    upstream's own ``Retry-After`` is honoured even when it asks for longer than the cap, up to
    ``max_retry_after``: a hostile or confused upstream must not silence a provider for a year.
    """
    delay = cap if give_up_early else min(base * failures * failures, cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_retry_after))
    return delay
