"""Metrics for investigations: safe PromQL construction and (in sibling modules) what to query and how to read it."""
