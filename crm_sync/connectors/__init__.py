"""Connectors to external CRMs (Bitrix24, amoCRM) implementing ``povtor.ports.CrmConnector``."""
