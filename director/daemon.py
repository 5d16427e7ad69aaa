"""The Director process: console server, status relay to File/Storage Daemons, configuration reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from common.config import ConfigError
from common.daemon import Daemon, OwnResource
from common.net import Connection
from director.config import load_director_config
from director.console.server import DEFAULT_CONSOLE, serve_console
from protocol.messages import Code, ErrorReply, Hello

DIR_PORT: Final = 9101


class DirectorDaemon(Daemon):
    role = "director"
    ok_code = Code.DIR_OK
    default_port = DIR_PORT

    def __init__(self, config_path: Path, loaded: Any, log: Any) -> None:
        super().__init__(config_path, loaded, log)

    @property
    def own(self) -> OwnResource:
        return self.config.director  # type: ignore[no-any-return]

    def lookup_secret(self, hello: Hello) -> str | None:
        if hello.role != "console":
            return None
        if hello.name == DEFAULT_CONSOLE:
            return self.config.director.password.get_secret_value()  # type: ignore[no-any-return]
        console = self.config.consoles.get(hello.name)
        return None if console is None else console.password.get_secret_value()

    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        if peer.role == "console":
            await serve_console(self, conn, peer, self.log.bind(console=peer.name))
            return
        await conn.send(
            ErrorReply(code=Code.COMMAND_FAILED, text=f"a {peer.role} cannot call the Director yet")
        )

    def reload_config(self) -> tuple[bool, str]:
        """Build a new configuration and swap it whole, or keep the old one and say why."""
        try:
            loaded = load_director_config(self.config_path)
        except ConfigError as exc:
            self.log.error("reload_rejected", reason=str(exc))
            return False, f"reload failed, keeping the running configuration: {exc}"
        except OSError as exc:
            self.log.error("reload_rejected", reason=str(exc))
            return False, f"reload failed, keeping the running configuration: {exc}"
        for warning in loaded.warnings:
            self.log.warning("config_warning", warning=str(warning))
        self.loaded = loaded
        self.log.info("config_reloaded", files=len(loaded.files))
        return True, f"configuration reloaded from {self.config_path}"

    def reload(self) -> None:
        self.reload_config()
