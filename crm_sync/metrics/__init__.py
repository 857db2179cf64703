"""Repeat-sales metrics computed in SQL (SQLite and PostgreSQL)."""
