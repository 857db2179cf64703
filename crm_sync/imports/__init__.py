"""Importing clients and orders from CSV/XLSX exports (1C, Excel, amoCRM, Bitrix24)."""
