"""A session's beat intervals as a plain RR text file: what Kubios HRV and similar tools import.

Kubios HRV opens an ASCII file of RR intervals in one column, in seconds or milliseconds
(its user's guide, "Input data formats"). The file written here is one interval per line in
whole milliseconds, nothing else: no header, no time column. Only intervals the heart analysis
found plausible are written (the ones its HRV figures count): an interval flagged as an
artefact, and the span of a dropout (no interval spans one), are left out, so the analysis
tool joins the pieces as it joins its own corrected series. The store keeps every beat
with its flag (:meth:`~device.store.queries.StoreReads.beats`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


def rr_lines(beats: Iterable[Mapping[str, object]]) -> Iterator[str]:
    """One line per plausible interval, whole milliseconds (``beats`` as the store reads them)."""
    for beat in beats:
        rr = beat.get("rr_ms")
        if beat.get("ok") and isinstance(rr, int | float):
            yield str(round(rr))


def rr_text(beats: Iterable[Mapping[str, object]]) -> str:
    """The whole RR file: :func:`rr_lines`, each ending in a newline."""
    return "".join(line + "\n" for line in rr_lines(beats))
