"""Notifications: an Investigation's answer, sent where engineers already work (Slack, PagerDuty, webhooks).

routes.py is the config (notifiers whose URLs and keys live in Secrets, and routes by namespace, verdict and
confidence), payloads.py builds what is sent, dispatcher.py sends it in the background, and hook.py is what the
service calls. See docs/notifications.md.
"""

from inquest.notify.hook import EventPoster, Notifier, StatusRecorder, newly_resolved
from inquest.notify.payloads import InvestigationRef, Notice, NoticeKind
from inquest.notify.routes import ConfigError, NotifyConfig, parse_config

__all__ = [
    "ConfigError",
    "EventPoster",
    "InvestigationRef",
    "Notice",
    "NoticeKind",
    "Notifier",
    "NotifyConfig",
    "StatusRecorder",
    "newly_resolved",
    "parse_config",
]
