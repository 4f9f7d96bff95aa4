"""Benchmarks: each module ``<name>.py`` here is ``cofrida bench <name>``.

A benchmark measures side by side in one run, reports medians, and prints one JSON object as its
last line of output.
"""
