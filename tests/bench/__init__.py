"""The benchmark suite: its pieces, and the lean imports it measures."""
