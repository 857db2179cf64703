"""Trunk configurations: the default one from ``POVTOR_SIP_*``, more from a YAML file.

The YAML file (``POVTOR_SIP_TRUNKS_FILE``) is a list of mappings with the same keys as the
``POVTOR_SIP_*`` settings, lower case without the prefix, each with a distinct ``name``::

    - name: office
      proxy: 192.168.1.10:5060
      user: "201"
      password: secret
      max_concurrent_calls: 4

A trunk in the file without ``local_port`` listens on a free port the system picks, so any
number of trunks start beside the default one (port 5060); two trunks given the same
``local_host``/``local_port`` are refused at start, naming both.
"""

from __future__ import annotations

import socket
from pathlib import Path

import yaml
from pydantic import ConfigDict, ValidationError

from povtor.errors import ConfigError
from povtor.settings import SipSettings, SipTrunk


class TrunkConfig(SipTrunk):
    """One SIP trunk as the call engine uses it: the settings' trunk model, frozen, with the
    addresses it implies."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @property
    def proxy_addr(self) -> tuple[str, int] | None:
        return split_hostport(self.proxy) if self.proxy else None

    @property
    def registrar_addr(self) -> tuple[str, int] | None:
        target = self.registrar or self.proxy
        return split_hostport(target) if target else None

    @property
    def sip_domain(self) -> str:
        if self.domain:
            return self.domain
        if self.proxy:
            return self.proxy
        return self.advertised_host

    @property
    def bind_host(self) -> str:
        return self.local_host

    @property
    def advertised_host(self) -> str:
        """The address put in Via, Contact and SDP."""
        if self.public_host:
            return self.public_host
        if self.local_host not in ("0.0.0.0", "::", ""):
            return self.local_host
        return _route_source(self.proxy_addr[0] if self.proxy_addr else "192.0.2.1")

    @property
    def rtp_port_range(self) -> tuple[int, int] | None:
        if self.rtp_port_min <= 0:
            return None
        return self.rtp_port_min, self.rtp_port_max


def split_hostport(value: str, default_port: int = 5060) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("sip:"):
        value = value[4:]
    value = value.split(";")[0].split("@")[-1]
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, _, port = value.partition(":")
    return host, int(port) if port else default_port


def _route_source(target: str) -> str:
    """The local address the kernel would use to reach ``target`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((target, 5060))
            return str(sock.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def load_trunks(settings: SipSettings) -> dict[str, TrunkConfig]:
    """Every configured trunk by name; the default trunk first."""
    default = TrunkConfig.model_validate(settings.default_trunk().model_dump())
    trunks = {default.name: default}
    if settings.trunks_file is None:
        return trunks
    path = Path(settings.trunks_file)
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the trunks file {path}: {err}") from err
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list of trunks")
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: each trunk is a mapping (name: ..., proxy: ...)")
        try:
            trunk = TrunkConfig.model_validate({"local_port": 0, **entry})
        except ValidationError as err:
            raise ConfigError(f"{path}: invalid trunk: {_first_error(err)}") from None
        if trunk.name in trunks:
            raise ConfigError(f"{path}: trunk name {trunk.name!r} used twice")
        trunks[trunk.name] = trunk
    _check_ports(trunks, path)
    return trunks


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}"


def _check_ports(trunks: dict[str, TrunkConfig], path: Path) -> None:
    """Two trunks cannot listen on one address (the second would fail to bind at start)."""
    seen: dict[tuple[str, int], str] = {}
    for trunk in trunks.values():
        if trunk.local_port == 0:
            continue
        key = ("*" if trunk.local_host in ("0.0.0.0", "::", "") else trunk.local_host,
               trunk.local_port)  # fmt: skip
        other = seen.get(key) or seen.get(("*", trunk.local_port))
        if other is None and key[0] == "*":
            other = next((n for (h, p), n in seen.items() if p == trunk.local_port), None)
        if other is not None:
            raise ConfigError(
                f"{path}: trunks {other!r} and {trunk.name!r} both listen on port "
                f"{trunk.local_port}: give one another local_port, or leave it out (a free port)"
            )
        seen[key] = trunk.name
