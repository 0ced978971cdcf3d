"""Alerts service (Faust): threshold rules as data, event-sourced alert lifecycle. Issue 5."""
