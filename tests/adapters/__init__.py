"""Adapters (the only AWS-touching code) against moto."""
