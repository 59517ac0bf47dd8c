"""Cross-cutting proof (issue 11): crash safety, storage faults, the hostile-input catalogue, fuzzing, API fuzzing,
the authorisation matrix and the dependency audit. A plain package (no Django app); the tests live in ``tests/``,
the crash harness shared with ``bench/crash.py`` in ``crash.py``. See docs/security-and-reliability.md."""
