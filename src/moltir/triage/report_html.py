"""``report.html``: one self-contained offline file (inline CSS and SVG; no script, no font, no
image, no link; a Content-Security-Policy of ``default-src 'none'; style-src 'unsafe-inline'; img-src
data:`` so a browser fetches nothing).

It shows the summary, a chart of events per hour per channel, the non-clean sessions with their
verdicts, every finding at or above the minimum level with its evidence, what moltir changed during
containment and what remains open (:mod:`moltir.triage.containment`), and says so plainly when the
case holds no transcripts. Every value from the case (transcript text above all) is HTML-escaped.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any, Final

from moltir.text import shown

_COLOURS: Final = ("#3b6ea5", "#c0504d", "#9bbb59", "#8064a2", "#f79646", "#4bacc6", "#7f7f7f")
_CSS: Final = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.LANDED{color:#fff;background:#b00020;padding:1px 5px}.ATTEMPTED{background:#f5c518;padding:1px 5px}
.level-critical,.level-high{font-weight:bold;color:#b00020}code{background:#f6f6f6;word-break:break-all}
.finding{border:1px solid #ddd;padding:8px 12px;margin:10px 0}.muted{color:#666}"""


def _e(value: object) -> str:
    """Control characters made visible (as on the terminal), then HTML-escaped."""
    return escape(shown("" if value is None else value, 20000, newlines=True), quote=True)


def _chart(hours: Counter[tuple[str, str]]) -> str:
    """Stacked bars: events per hour (UTC), one colour per channel; an inline SVG."""
    if not hours:
        return "<p class='muted'>No timed events.</p>"
    slots = sorted({h for h, _ in hours})
    channels = sorted({c for _, c in hours})
    colour = {c: _COLOURS[i % len(_COLOURS)] for i, c in enumerate(channels)}
    top = max(sum(hours[(h, c)] for c in channels) for h in slots)
    bar, height, left = 28, 160, 40
    width = left + bar * len(slots) + 10
    parts = [f"<svg id='events-per-hour' role='img' xmlns='http://www.w3.org/2000/svg' width='{width}' "
             f"height='{height + 60}' aria-label='events per hour per channel'>",
             f"<text x='0' y='12' font-size='11'>{top}</text><text x='0' y='{height}' font-size='11'>0</text>"]
    for i, h in enumerate(slots):
        y = height
        for c in channels:
            n = hours[(h, c)]
            if not n:
                continue
            dh = max(1, round(n / top * (height - 20)))
            y -= dh
            parts.append(f"<rect class='bar' x='{left + i * bar}' y='{y}' width='{bar - 4}' height='{dh}' "
                         f"fill='{colour[c]}'><title>{_e(h)}:00 UTC {_e(c)}: {n}</title></rect>")
        parts.append(f"<text x='{left + i * bar}' y='{height + 14}' font-size='9' "
                     f"transform='rotate(45 {left + i * bar} {height + 14})'>{_e(h[5:])}h</text>")
    parts.append("</svg>")
    legend = " ".join(f"<span style='color:{colour[c]}'>&#9632;</span> {_e(c)}" for c in channels)
    return "".join(parts) + f"<p>{legend}</p>"


def _empty(report: dict[str, Any]) -> str:
    if not report.get("no_transcripts"):
        return ""
    return ("<p id='no-transcripts'><b>This case holds no transcripts</b>: the snapshot copied no JSONL "
            "session file, no agent database and no cold archive, so no conversation or tool call can be shown "
            "(other sources, if any, are in the timeline). The containment steps and what remains open are "
            "below.</p>")


def _finding(f: dict[str, Any]) -> str:
    ev = f["evidence"]
    where = f"line {ev['line']}" if "line" in ev else f"row {ev['row']['session_id']} seq {ev['row']['seq']}"
    state = "LANDED" if f["landed"] else "ATTEMPTED"
    entry = f.get("entry_point") or {}
    out = [f"<div class='finding'><p><span class='level-{_e(f['level'])}'>[{_e(f['level'])}]</span> "
           f"<b>{_e(f['title'])}</b> <span class='{state}'>{state}</span> <code>{_e(f['rule'])}</code></p>",
           f"<p><code>{_e(f['summary'])}</code></p>",
           f"<p class='muted'>{_e(f['time'])} &middot; session {_e(f['session_id'])} &middot; "
           f"channel {_e(f['channel'] or 'unknown')}</p>",
           f"<p>Evidence: <code>{_e(ev['path'])}</code> {_e(where)}<br><span class='muted'>sha256 "
           f"{_e(ev['sha256'])}</span></p>"]
    if entry:
        out.append(f"<p>Entry point: {_e(entry.get('time'))} {_e(entry.get('sender') or 'sender unknown')}: "
                   f"<code>{_e(entry.get('text'))}</code></p>")
    out.append(f"<p>{_e(f['description'])}</p><p><b>Next:</b> {_e(f['remediation'])}</p></div>")
    return "".join(out)


def _changed(cont: dict[str, Any]) -> str:
    """What moltir did, step by step, from the case's journal (its own summaries: fingerprints, no secret)."""
    rows = "".join(f"<tr><td>{_e(s['time'])}</td><td>{_e(s['runbook'])}</td><td>{_e(s['step'])}</td>"
                   f"<td><code>{_e(s['action'])}</code></td><td>{_e(s['status'])}</td><td>{_e(s['summary'])}</td></tr>"
                   for s in cont.get("changed", ()))
    if not rows:
        return "<p id='changed-none'>The case's journal records no completed step.</p>"
    return ("<table id='changed'><tr><th>time (UTC)</th><th>run</th><th>step</th><th>action</th><th>status</th>"
            f"<th>what moltir did</th></tr>{rows}</table>")


def _still_open(cont: dict[str, Any], report: dict[str, Any]) -> str:
    items = [f"<li>step <b>{_e(s['step'])}</b> ({_e(s['runbook'])}, <code>{_e(s['action'])}</code>) failed: "
             f"{_e(s['summary'])}. Run <code>moltir {_e(s['runbook'])}</code> again to resume.</li>"
             for s in cont.get("failed", ())]
    creds = cont.get("credentials_to_rotate", [])
    if creds:
        listed = "".join(f"<li><code>{_e(c.get('id'))}</code> ({_e(c.get('kind'))}, {_e(c.get('provider'))}"
                         f"{', stored ' + _e(c['storage']) if c.get('storage') else ''})</li>" for c in creds)
        items.append(f"<li>{len(creds)} credential(s) from the case's inventory still to rotate (the case cannot "
                     f"show a provider revoked them): <ul>{listed}</ul></li>")
    elif not cont.get("inventory"):
        items.append("<li>The case holds no credentials inventory: list what the install holds with "
                     "<code>moltir credentials</code> and rotate what the assistant could reach.</li>")
    if cont.get("token_rotated"):
        items.append("<li>The gateway token was rotated: update every client that used the old one.</li>")
    if not cont.get("restore_run"):
        items.append("<li><code>moltir restore</code> has not been run: what containment stopped or disabled "
                     "stays so until it is.</li>")
    n = report["counts"]["at_or_above_min_level"]
    if n:
        items.append(f"<li>{_e(n)} finding(s) at or above {_e(report['min_level'])} to act on (below).</li>")
    return f"<ul id='still-open'>{''.join(items)}</ul>"


def render(report: dict[str, Any], hours: Counter[tuple[str, str]]) -> str:
    c = report["counts"]
    v = c["verdicts"]
    cont = report.get("containment") or {}
    rows = "".join(f"<tr><td>{_e(s['session_id'])}</td><td>{_e(s['channel'] or s['session_key'])}</td>"
                   f"<td><span class='{_e(s['verdict'])}'>{_e(s['verdict'])}</span></td>"
                   f"<td>{_e(', '.join(s['rules']))}</td><td><code>{_e(s['evidence_path'])}</code></td></tr>"
                   for s in report["sessions"])
    sessions = (f"<table><tr><th>session</th><th>channel</th><th>verdict</th><th>rules</th><th>evidence</th></tr>"
                f"{rows}</table>" if rows else "<p>Every session is CLEAN at this level.</p>")
    findings = "".join(_finding(f) for f in report["findings"]) or "<p>No finding at or above this level.</p>"
    undecoded = (f"<p><b>{report['undecoded']} record(s) could not be decoded</b> (listed in timeline.jsonl "
                 "as kind <code>undecoded</code>).</p>" if report["undecoded"] else "")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<title>moltir triage</title><style>{_CSS}</style></head><body>"
        f"<h1>moltir triage: what the assistant did</h1>"
        f"<p>Case <code>{_e(report['case_dir'])}</code>: evidence verified "
        f"({_e(report['evidence']['files_checked'])} files). {_e(report['events'])} events in "
        f"{_e(report['sessions_seen'])} session(s).</p>"
        f"<p id='summary'><b>{_e(c['at_or_above_min_level'])}</b> finding(s) at or above "
        f"<b>{_e(report['min_level'])}</b> ({_e(c['findings'])} in all). Sessions LANDED: "
        f"<b>{_e(v.get('LANDED', 0))}</b>, ATTEMPTED: <b>{_e(v.get('ATTEMPTED', 0))}</b>.</p>{undecoded}"
        f"{_empty(report)}<h2>Events per hour (UTC) per channel</h2>{_chart(hours)}"
        f"<h2>Sessions</h2>{sessions}<h2>Findings</h2>{findings}"
        f"<h2>What moltir changed during containment</h2>{_changed(cont)}"
        f"<h2>What remains open</h2>{_still_open(cont, report)}"
        "<p class='muted'>The full timeline is in timeline.jsonl (Timesketch) and timeline.csv; every "
        "finding with its evidence in findings.json.</p></body></html>\n")
