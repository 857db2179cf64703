"""aiosipua's private names the shim relies on are still there, with the same parameters.

This fails on an aiosipua upgrade that moves or changes one, before any call does; the fix is
in voice/sip/aiosipua_shim.py alone. It also fails if private names are used elsewhere.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
from aiosipua.outgoing_call import OutgoingCall
from aiosipua.registration import Registration
from aiosipua.transport import SipTransport
from aiosipua.uac import SipUAC
from aiosipua.uas import SipUAS

from voice.sip import aiosipua_shim
from voice.sip.transactions import TransactionUdpTransport

ROOT = Path(__file__).resolve().parents[3]


def _resolve(dotted: str) -> object:
    module_name, _, rest = dotted.partition(".")
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise AssertionError(f"cannot import {module_name}.{rest}")


def _leading_params(func: object, count: int) -> tuple[str, ...]:
    assert callable(func)
    return tuple(inspect.signature(func).parameters)[:count]


@pytest.mark.parametrize("dotted", sorted(aiosipua_shim.PRIVATE_FUNCTIONS))
def test_private_functions_keep_their_parameters(dotted: str) -> None:
    wanted = aiosipua_shim.PRIVATE_FUNCTIONS[dotted]
    assert _leading_params(_resolve(dotted), len(wanted)) == wanted


@pytest.mark.parametrize("dotted", sorted(aiosipua_shim.PRIVATE_METHODS))
def test_private_methods_keep_their_parameters(dotted: str) -> None:
    wanted = aiosipua_shim.PRIVATE_METHODS[dotted]
    assert _leading_params(_resolve(dotted), len(wanted)) == wanted


def test_private_attributes_are_still_set_by_their_owners() -> None:
    assert aiosipua_shim.PRIVATE_ATTRIBUTES == {
        "aiosipua.uas.SipUAS": ("_handlers",),
        "aiosipua.outgoing_call.OutgoingCall": ("_answered",),
    }
    uas = SipUAS(TransactionUdpTransport(local_addr=("127.0.0.1", 0)))
    assert isinstance(uas._handlers, dict)
    assert {"INVITE", "BYE", "NOTIFY"} <= set(uas._handlers)
    assert "_answered" in {f.name for f in OutgoingCall.__dataclass_fields__.values()}


def test_the_public_api_the_agent_uses_is_there() -> None:
    for owner, names in (
        (SipUAC, ("send_invite", "send_bye", "send_cancel", "send_refer", "get_call")),
        (SipUAS, ("get_call",)),
        (Registration, ("register", "unregister")),
        (SipTransport, ("send_reply",)),
    ):
        for name in names:
            assert callable(getattr(owner, name, None)), f"{owner.__name__}.{name}"
    refer = inspect.signature(SipUAC.send_refer).parameters
    assert tuple(refer)[:4] == ("self", "dialog", "refer_to", "remote_addr")
    assert "on_transfer_progress" in vars(SipUAS(TransactionUdpTransport()))


def test_no_other_module_touches_aiosipua_internals() -> None:
    """Only the shim imports an underscored aiosipua name or a private aiosipua module."""
    offenders = []
    for path in sorted((ROOT / "voice").rglob("*.py")):
        if path.name == "aiosipua_shim.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiosipua"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private:
                    offenders.append(f"{path.relative_to(ROOT)}: {private}")
    assert offenders == []
