"""Load tests of the local stack: ``make load`` (60 s) and ``make load-quick`` (10 s).

``python -m tests.load`` starts its own stack; ``tests/e2e/test_load.py`` runs the same load
briefly against the end-to-end session's stack, in ``make test``.
"""
