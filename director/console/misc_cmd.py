"""Session commands: help, version, reload, quit and the `.api` output-mode switch."""

from __future__ import annotations

from common.version import VERSION
from director.console.registry import COMMANDS, Args, Reply, Session, command


@command("help", usage="help [command]", aliases=("?",))
async def help_(session: Session, args: Args) -> Reply:
    """List the commands, or show one command's usage."""
    commands = sorted({cmd.name: cmd for cmd in COMMANDS.values()}.values(), key=lambda c: c.name)
    if args.words:
        commands = [c for c in commands if c.name == args.words[0].lower()]
    allowed = [c for c in commands if session.acl("command", c.name)]
    lines = ["  Command       Description", "  =======       ==========="]
    lines += [f"  {c.name:<13} {c.help}\n  {'':<13} usage: {c.usage}" for c in allowed]
    data = [{"command": c.name, "description": c.help, "usage": c.usage} for c in allowed]
    return Reply(text="\n".join(lines), data={"help": data})


@command("version", usage="version")
async def version(session: Session, args: Args) -> Reply:
    """Print the Director's name and version."""
    name = session.director.name
    return Reply(
        text=f"{name} Version: {VERSION} (Strongroom)",
        data={"version": {"name": name, "version": VERSION}},
    )


@command("reload", usage="reload")
async def reload(session: Session, args: Args) -> Reply:
    """Re-read the configuration; a broken one is rejected and the running one kept."""
    ok, message = session.director.reload_config()
    return Reply(text=message, data={"reload": {"ok": ok, "message": message}}, ok=ok)


@command("quit", usage="quit", aliases=("exit", ".quit"))
async def quit_(session: Session, args: Args) -> Reply:
    """End this console session."""
    session.quit = True
    return Reply(text="", data={})


@command(".api", usage=".api [0|json|on|off]")
async def api(session: Session, args: Args) -> Reply:
    """Switch the console's output mode (the console renders JSON itself)."""
    mode = args.words[0].lower() if args.words else "json"
    session.api = mode in ("json", "2", "on", "1")
    return Reply(text=f".api {mode}", data={"api": mode})
