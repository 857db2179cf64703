"""The application: the only composition root. It builds the engine, the store, the channels and
the services from settings and hands them to the adapters; nothing else imports the adapters."""
