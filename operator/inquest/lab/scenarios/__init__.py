"""Incident scenarios: a YAML format anyone can write (model), a runner that replays them against the lab with
the real operator (runner), and the scores that measure the answers (scoring, report). See docs/scenarios.md."""
