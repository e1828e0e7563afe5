"""The refresh engine: one refresh per widget, coalesced, backed off, on an injectable clock.

Providers only fetch; everything about when to fetch, who fetches, and what to keep lives here.
"""
