"""Names the practice's settings are made of, shared by the API's shapes and the services."""

from __future__ import annotations

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NATIONS = ("ENG", "WLS", "SCT", "NIR", "NONE")  # NONE: a service that ignores bank holidays
