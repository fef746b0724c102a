"""The lab: a real control plane, kwok and Prometheus on loopback, for tests, demo and benchmarks.

Everything here uses only the standard library at import time so that `python -m inquest.lab build`
can run before the project's own dependencies are installed.
"""
