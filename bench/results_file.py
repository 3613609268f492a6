"""bench/RESULTS.md across runs: a run of some benchmarks only must not drop the other ones' sections.

A full run (every benchmark of ``make bench``'s default set) writes the whole file. A partial run
(``--only NAME,...`` leaving a default benchmark out, such as ``--only triage``, which is never in
the default set) keeps the file as it is and writes its own output into a block between two marker
lines, named after the benchmarks it ran: the next partial run of the same benchmarks replaces that
block, a full run rewrites the file (and drops the blocks: run the partial one again afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence

BEGIN = "<!-- bench.run --only {names}: begin (generated; replaced by the next such run) -->"
END = "<!-- bench.run --only {names}: end -->"


def is_partial(only: Sequence[str], default: Sequence[str]) -> bool:
    return not set(default) <= set(only)


def _body(text: str) -> list[str]:
    """The run's report without its title lines and its "Exact commands" section (the full run's
    applies), headings one level down."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("- **Date**")), 0)
    out: list[str] = []
    skipping = False
    for line in lines[start:]:
        if line.startswith("## "):
            skipping = line.startswith("## Exact commands")
            if not skipping:
                out.append("#" + line)
            continue
        if not skipping:
            out.append(line)
    return out


def merged(old: str | None, new: str, only: Sequence[str]) -> str:
    """The file's text after a partial run whose own report is ``new`` (``old``: the file, if any)."""
    if old is None or not old.strip():
        return new
    names = ",".join(only)
    begin, end = BEGIN.format(names=names), END.format(names=names)
    block = "\n".join([begin, f"## {', '.join(only)}: a separate run", "",
                       f"Not part of the full run above: the output of `.venv/bin/python -m bench.run --only {names}` "
                       "(headings one level down), written into this file without touching the sections above.",
                       "", *_body(new), end]).rstrip() + "\n"
    at = old.find(begin)
    stop = old.find(end, at) if at >= 0 else -1
    if at >= 0 and stop >= 0:
        head, tail = old[:at], old[stop + len(end):].lstrip("\n")
        return head + block + ("\n" + tail if tail else "")
    return old.rstrip("\n") + "\n\n" + block
