"""Adapters: the only modules that call AWS. One per service, each translating its errors."""
