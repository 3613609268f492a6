"""moltir's benchmarks (``make bench`` -> ``bench/run.sh`` -> ``python -m bench.run``).

One module per benchmark, each runnable alone (``python -m bench.bench_<name> --help``):
``bench_contain`` (time to contain on the real gateway), ``bench_evidence`` (snapshot and
verify), ``bench_coldstart``, ``bench_json5``. ``common`` holds the sample series and the timed,
RSS-measured child runs (through ``launch.py``); ``report`` writes ``bench/RESULTS.md``.
Nothing here is a test, and no test asserts a time.
"""
