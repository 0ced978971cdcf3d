"""Hotline 1022 / 115 service (Faust): call state, routing, deadlines, KPIs. Issue 6."""
