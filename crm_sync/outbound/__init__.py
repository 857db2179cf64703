"""Outcome sync: timeline events pushed to an external CRM, durably and once each."""
