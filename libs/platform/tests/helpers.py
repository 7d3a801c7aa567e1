from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.bus import from_message
from povguard_platform.envelope import RecordedEvent
from povguard_platform.settings import Settings


async def stream_contents(js: JetStreamContext, stream: str = "POVGUARD_EVENTS") -> list[tuple[str, RecordedEvent]]:
    """Every message on the stream, in stream order, as (Nats-Msg-Id, event)."""
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:
            continue
        headers = dict(msg.headers or {})
        out.append((headers["Nats-Msg-Id"], from_message(headers, msg.data)))
    return out


def bearer(settings: Settings, role: Role = Role.COLLECTOR, org: str = "533123101", user: str = "li") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user=user, role=role, org=org), settings)}
