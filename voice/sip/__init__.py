"""SIP signalling for outbound calls: aiosipua behind a small adapter (see agent.py)."""
