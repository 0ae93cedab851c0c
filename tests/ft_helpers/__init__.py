"""Helpers for the ft tests: rank processes driven over pipes, and the scripts they run."""
