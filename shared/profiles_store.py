"""PostgreSQL queries for user profiles: where a user's emails go, set by the producer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.preferences_store import Executor


@dataclass(frozen=True)
class Profile:
    email: str | None = None
    time_zone: str | None = None
    locale: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"email": self.email, "timeZone": self.time_zone, "locale": self.locale}


async def get(db: Executor, user_id: str) -> Profile:
    row = await db.fetchrow(
        "SELECT email, time_zone, locale FROM tocsin_user_profiles WHERE user_id = $1", user_id
    )
    return Profile() if row is None else Profile(row["email"], row["time_zone"], row["locale"])


async def put(db: Executor, user_id: str, profile: Profile) -> None:
    await db.execute(
        "INSERT INTO tocsin_user_profiles (user_id, email, time_zone, locale)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email,"
        " time_zone = EXCLUDED.time_zone, locale = EXCLUDED.locale, updated_at = now()",
        user_id,
        profile.email,
        profile.time_zone,
        profile.locale,
    )
