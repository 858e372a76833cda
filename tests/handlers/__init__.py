"""Handler tests: the three functions driven by events/*.json against moto (and Stubber)."""
