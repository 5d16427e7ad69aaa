"""Text rendering helpers shared by console commands (durations, timestamps, daemon status)."""

from __future__ import annotations

import time

from protocol.messages import DaemonStatus


def format_uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days} day{'s' if days != 1 else ''} {hours:02d}:{minutes:02d}:{secs:02d}"


def format_time(epoch: float) -> str:
    return time.strftime("%d-%b-%y %H:%M", time.localtime(epoch))


def status_data(status: DaemonStatus) -> dict[str, object]:
    return {
        "role": status.role,
        "name": status.name,
        "version": status.version,
        "pid": status.pid,
        "started_at": status.started_at,
        "uptime": round(status.uptime, 3),
        "addresses": list(status.addresses),
        "tls": status.tls,
        "running_jobs": [job.model_dump() for job in status.running_jobs],
        "connections": status.connections.model_dump(),
        **(
            {"devices": [device.model_dump() for device in status.devices]}
            if status.role == "storage"
            else {}
        ),
    }


def status_text(status: DaemonStatus, title: str) -> str:
    lines = [
        f"{status.name} ({title}) Version: {status.version} (Strongroom)",
        f"Daemon started {format_time(status.started_at)}, pid {status.pid}, "
        f"uptime {format_uptime(status.uptime)}",
        f"Listening on: {', '.join(status.addresses) or '-'} "
        f"({'TLS' if status.tls else 'plain TCP'})",
        f"Connections: {status.connections.active} active, {status.connections.total} total, "
        f"{status.connections.refused} refused",
        "",
        "Running Jobs:",
    ]
    if not status.running_jobs:
        lines.append("No Jobs running.")
    for job in status.running_jobs:
        lines.append(
            f" JobId {job.job_id} {job.job} status {job.status} files={job.files} bytes={job.bytes}"
        )
    if status.role == "storage":
        lines += ["", "Devices:"]
        for device in status.devices:
            state = (
                f"{device.mode} for {', '.join(device.reserved_by)}"
                if device.reserved_by
                else "idle"
            )
            volumes = f", volume {', '.join(device.volumes)}" if device.volumes else ""
            lines.append(
                f" {device.name} ({device.media_type}, Maximum Concurrent Jobs {device.max_jobs}): "
                f"{state}{volumes}"
            )
            lines.extend(f"   waiting: {entry}" for entry in device.waiting)
    lines.append("====")
    return "\n".join(lines)


def display_path(path: bytes) -> str:
    """A path as text for consoles and JSON: bytes that are not UTF-8 appear as \\xNN escapes."""
    return path.decode("utf-8", "backslashreplace")
