"""crm_sync."""
