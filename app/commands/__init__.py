"""The `povtor` commands, one module per command group; each builds what it needs from the
settings (engine, stores, connectors) and hands it to the adapters."""
