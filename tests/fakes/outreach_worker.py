"""`python -m tests.fakes.outreach_worker`: the real worker runtime (`povtor run`) with journal
channels instead of Telegram and SIP, configured by environment variables:

- the usual ``POVTOR_*`` settings (database, leases, windows, caps, retries);
- ``POVTOR_TEST_JOURNAL``: the append-only file every contact is written to;
- ``POVTOR_TEST_CALL_S``: how long each contact takes (seconds, default 0).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from app.runtime import run
from povtor.domain import ChannelKind
from povtor.errors import AlreadyRunning
from povtor.logs import setup_logging
from povtor.settings import Settings
from tests.fakes.outreach_channels import JournalChannel


def main() -> int:
    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    journal = Path(os.environ["POVTOR_TEST_JOURNAL"])
    delay = float(os.environ.get("POVTOR_TEST_CALL_S", "0"))
    channels = {kind: JournalChannel(kind, journal, delay_s=delay) for kind in ChannelKind}
    try:
        asyncio.run(run(settings, channels=channels))
    except AlreadyRunning as err:  # raised before any service starts
        print(f"worker: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
