"""Where alerts come in: the Alertmanager webhook (intake.server) and its pure mapping to Investigations
(intake.alertmanager)."""
