"""A small organisation for the scope tests, created through the units API as an admin.

centre (release centre, the whole city, every event type)
├── water_binjiang (department: flood and waterlogging in Binjiang 990101)
└── binjiang (sub-centre: every event type in Binjiang 990101)
    └── jiangwan (sub-centre: rainstorm and waterlogging in Jiangwan street 990101001)
"""

from __future__ import annotations

from typing import Any

UNITS: list[dict[str, Any]] = [
    {
        "id": "centre",
        "names": {"zh-CN": "澜江市预警信息发布中心", "en": "Lanjiang Warning Release Centre"},
        "kind": "centre",
        "sender": "centre@lanjiang.example",
        "code": "000001",
    },
    {
        "id": "water_binjiang",
        "names": {"zh-CN": "滨江区水务局", "en": "Binjiang Water Affairs Bureau"},
        "kind": "department",
        "parent": "centre",
        "areas": ["990101"],
        "events": ["flood", "waterlogging"],
        "sender": "water.binjiang@lanjiang.example",
        "code": "020101",
    },
    {
        "id": "binjiang",
        "names": {"zh-CN": "滨江区预警信息发布中心", "en": "Binjiang Warning Release Centre"},
        "kind": "subcentre",
        "parent": "centre",
        "areas": ["990101"],
        "sender": "binjiang@lanjiang.example",
        "code": "000002",
    },
    {
        "id": "jiangwan",
        "names": {"zh-CN": "江湾街道预警分中心", "en": "Jiangwan Warning Sub-centre"},
        "kind": "subcentre",
        "parent": "binjiang",
        "areas": ["990101001"],
        "events": ["rainstorm", "waterlogging"],
        "sender": "jiangwan@lanjiang.example",
        "code": "000003",
    },
]
# One operator per role in each unit: "<role>@<unit>".
MEMBERS = {f"{role}@{unit['id']}": (role, unit["id"]) for unit in UNITS for role in ("drafter", "approver", "chief")}


async def organise(client: Any, services: Any, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    """Create the units through the API and a token for every member; returns name -> headers."""
    for unit in UNITS:
        resp = await client.post("/api/v1/units", json=unit, headers=admin)
        assert resp.status == 201, await resp.text()
    tokens = {}
    for name, (role, unit) in MEMBERS.items():
        token_name = name.replace("@", ".").replace("_", "-")
        token = await services.accounts.create_token(token_name, [role], unit)
        tokens[name] = {"Authorization": f"Bearer {token}"}
    return tokens
