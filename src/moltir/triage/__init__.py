"""``moltir triage``: what the assistant did, read from a sealed evidence case.

* :mod:`~moltir.triage.events` -- the event model (one record of a transcript -> events);
* :mod:`~moltir.triage.sources` -- which copied files in the case are transcripts (from the manifest);
* :mod:`~moltir.triage.jsonl_source`, :mod:`~moltir.triage.sqlite_source` -- the two transcript
  generations, streamed a line / a row at a time;
* :mod:`~moltir.triage.rules` -- rules as data (JSON5, shipped in ``rulepack/`` plus ``--rules DIR``);
* :mod:`~moltir.triage.verdicts` -- per-session LANDED / ATTEMPTED / CLEAN;
* :mod:`~moltir.triage.outputs` -- timeline.jsonl (Timesketch), timeline.csv, findings.json;
* :mod:`~moltir.triage.report_html` -- the self-contained report.html.
"""
