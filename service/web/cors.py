"""Who may read widgets from another origin (CORS) and frame the embed pages (frame-ancestors)."""

from __future__ import annotations

#: Every route that is not an embed page refuses to be framed.
FRAME_NONE = "frame-ancestors 'none'"
#: Response headers a script on another origin may read beyond the CORS-safelisted ones: the ETag
#: to revalidate with, and Date and a cache's Age to date the data by without trusting its clock.
EXPOSED = "ETag, Date, Age"


class EmbedPolicy:
    def __init__(self, allowed_origins: list[str]) -> None:
        self.any_origin = "*" in allowed_origins
        self._allowed = frozenset(allowed_origins)
        #: The listed origins (empty when any origin may read).
        self.origins: frozenset[str] = frozenset() if self.any_origin else self._allowed
        self.frame_ancestors = "frame-ancestors " + ("*" if self.any_origin else " ".join(allowed_origins))
        #: With any origin allowed, the CORS headers are the same for every request.
        self.static_headers: dict[str, str] = (
            {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSED}
            if self.any_origin
            else {}
        )

    def headers_for(self, origin: str | None) -> dict[str, str]:
        """CORS headers for a request from ``origin``; only needed when origins are listed."""
        if self.any_origin:
            return self.static_headers
        if origin is not None and origin in self._allowed:
            return {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Expose-Headers": EXPOSED,
                "Vary": "Origin",
            }
        return {"Vary": "Origin"}
