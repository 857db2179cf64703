"""A demo never reaches the outside world.

The demo builds its worker's environment from nothing: every ``POVTOR_*`` variable of the
caller is dropped (a real token or trunk in the shell stays out), the worker runs in the demo's
own folder (so no ``.env`` of the project is read), and the demo points each channel at its own
stand-ins on 127.0.0.1. The worker checks again when it starts in demo mode
(``POVTOR_DEMO_MODE``): any channel pointing elsewhere stops it before anything is sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from povtor.errors import ConfigError
from povtor.settings import Settings
from voice.sip.trunks import split_hostport

PREFIX = "POVTOR_"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def outside_loopback(settings: Settings) -> list[str]:
    """Every setting through which this worker could reach something beyond this machine."""
    found = []
    tg = settings.telegram
    if tg.enabled:
        if not tg.api_base or not is_loopback(urlsplit(tg.api_base).hostname):
            found.append("Telegram: POVTOR_TELEGRAM_API_BASE is not a loopback address")
        if tg.mode != "polling":
            found.append("Telegram: webhook mode")
    sip = settings.sip
    if sip.enabled:
        for name, value in (("PROXY", sip.proxy), ("REGISTRAR", sip.registrar)):
            if value is not None and not is_loopback(split_hostport(value)[0]):
                found.append(f"SIP: POVTOR_SIP_{name} is not a loopback address")
        if sip.proxy is None:
            found.append("SIP: no POVTOR_SIP_PROXY (calls would go to the number's own host)")
        if sip.trunks_file is not None:
            found.append("SIP: POVTOR_SIP_TRUNKS_FILE adds trunks")
        if sip.register_enabled:
            found.append("SIP: registration with a trunk")
        if not is_loopback(sip.local_host) or sip.public_host:
            found.append("SIP: the robot listens or advertises beyond loopback")
    if settings.crm.kind.strip().lower() not in ("", "none", "off"):
        found.append(f"CRM: POVTOR_CRM_KIND={settings.crm.kind}")
    if settings.recordings.s3_bucket:
        found.append("recordings: an S3 bucket")
    if not is_loopback(settings.dashboard.host) or not is_loopback(settings.metrics_host):
        found.append("the dashboard or metrics listen beyond loopback")
    return found


def refuse_outside_loopback(settings: Settings) -> None:
    found = outside_loopback(settings)
    if found:
        raise ConfigError(
            "demo mode talks only to its own stand-ins on 127.0.0.1, refusing: " + "; ".join(found)
        )


def demo_environment(base: Mapping[str, str], demo: Mapping[str, str]) -> dict[str, str]:
    """``base`` without any POVTOR_* variable, plus the demo's own settings."""
    env = {k: v for k, v in base.items() if not k.upper().startswith(PREFIX)}
    env.update(demo)
    env["POVTOR_DEMO_MODE"] = "true"
    return env
