"""Local stand-ins for the outside world: a Telegram Bot API emulator with simulated users and
a page to play one of them (``povtor sandbox``). Used by ``povtor demo`` and by the tests."""
