"""A snapshot: the last good data of one widget, as fetched by one provider at one time."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

#: Written into every stored snapshot. A release reads only its own version: anything else (an
#: older or newer release during a rolling deploy, a corrupt value) is a miss, replaced by the
#: next good fetch.
SCHEMA_VERSION = 2


class SnapshotUnreadable(ValueError):
    """Stored bytes this release cannot turn into a snapshot."""


@dataclass(frozen=True)
class Snapshot:
    widget: str
    source: str
    fetched_at: float  # seconds since the epoch
    data: dict[str, Any]
    attribution: str | None = None
    #: ETag / Last-Modified per upstream URL, for conditional requests on the next refresh.
    validators: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Content hash of ``data``: the version ETags and invalidation messages are built on.
    digest: str = ""
    #: ``data`` as compact JSON, computed once so hot reads never re-serialise.
    data_json: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def create(
        cls,
        widget: str,
        source: str,
        fetched_at: float,
        data: dict[str, Any],
        *,
        attribution: str | None = None,
        validators: dict[str, dict[str, str]] | None = None,
    ) -> Snapshot:
        data_json = _dump(data)
        return cls(
            widget=widget,
            source=source,
            fetched_at=fetched_at,
            data=data,
            attribution=attribution,
            validators=validators or {},
            digest=_digest(data_json),
            data_json=data_json,
        )

    def renewed(self, fetched_at: float, validators: dict[str, dict[str, str]] | None = None) -> Snapshot:
        """The same data confirmed current at ``fetched_at`` (after a 304)."""
        merged = {**self.validators, **(validators or {})}
        return replace(self, fetched_at=fetched_at, validators=merged)

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)

    @property
    def fetched_at_iso(self) -> str:
        return iso_utc(self.fetched_at)

    def to_bytes(self) -> bytes:
        return _dump(
            {
                "schema": SCHEMA_VERSION,
                "widget": self.widget,
                "source": self.source,
                "fetched_at": self.fetched_at,
                "attribution": self.attribution,
                "validators": self.validators,
                "digest": self.digest,
                "data": self.data,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Snapshot:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than decoders go
            raise SnapshotUnreadable(f"not JSON ({type(exc).__name__})") from None
        if not isinstance(doc, dict):
            raise SnapshotUnreadable("not a JSON object")
        if doc.get("schema") != SCHEMA_VERSION:
            raise SnapshotUnreadable(f"schema {doc.get('schema')!r}, this release reads {SCHEMA_VERSION}")
        try:
            data = doc["data"]
            validators = doc.get("validators") or {}
            snapshot = cls(
                widget=str(doc["widget"]),
                source=str(doc["source"]),
                fetched_at=float(doc["fetched_at"]),
                data=data,
                attribution=doc.get("attribution"),
                validators=validators,
                digest=str(doc["digest"]),
                data_json=_dump(data),
            )
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise SnapshotUnreadable(f"malformed ({type(exc).__name__}: {exc})") from None
        if (
            not isinstance(data, dict)
            or not _plain_validators(validators)
            or not isinstance(snapshot.attribution, str | None)
            or not math.isfinite(snapshot.fetched_at)
        ):
            raise SnapshotUnreadable("malformed (data, validators, attribution or fetched_at)")
        # The digest goes out in ETags: it must be the one ``create`` gives this data, nothing else.
        if snapshot.digest != _digest(snapshot.data_json):
            raise SnapshotUnreadable("digest does not match the data")
        return snapshot


def _plain_validators(validators: object) -> bool:
    """Whether ``validators`` is what ``to_bytes`` writes: URL -> name -> printable ASCII (they
    go back out as request headers, where a stored line break or a non-string would fail)."""
    return isinstance(validators, dict) and all(
        isinstance(url, str)
        and isinstance(fields, dict)
        and all(
            isinstance(name, str) and isinstance(value, str) and value.isascii() and value.isprintable()
            for name, value in fields.items()
        )
        for url, fields in validators.items()
    )


def iso_utc(epoch_seconds: float) -> str:
    """``2026-11-26T06:59:02Z``: how times are written in JSON."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _digest(data_json: bytes) -> str:
    return hashlib.sha256(data_json).hexdigest()[:20]


def _dump(value: Any) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON; a value that cannot be written is refused here,
    # as part of the attempt, instead of reaching a reader as invalid JSON.
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
    ).encode()
