"""Indicators service (Faust): department events → every catalog indicator per scope and cadence. Issue 4."""
