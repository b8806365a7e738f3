"""Citizen hazard reports and the monitoring queue (see the citizen-report issue)."""
