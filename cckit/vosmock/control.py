"""The loopback HTTP control endpoint (plain HTTP on 127.0.0.1, JSON) for tests and demos.

GET    /status                      site, nodes, ports, service states, faults
GET    /faults                      the faults in force
POST   /faults   {"fault": F, "value": V, "node": N}   set one (node omitted: every node)
DELETE /faults                      clear every fault (and bring `down` nodes back)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:  # pragma: no cover
    from .site import MockSite


def make_control_app(site: MockSite) -> web.Application:
    async def status(request: web.Request):
        return web.json_response(site.status())

    async def faults(request: web.Request):
        return web.json_response(site.faults.as_dict())

    async def set_fault(request: web.Request):
        try:
            data = await request.json()
            await site.set_fault(data["fault"], data.get("value", True), data.get("node"))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(site.faults.as_dict())

    async def clear(request: web.Request):
        await site.clear_faults()
        return web.json_response(site.faults.as_dict())

    app = web.Application()
    app.router.add_get("/status", status)
    app.router.add_get("/faults", faults)
    app.router.add_post("/faults", set_fault)
    app.router.add_delete("/faults", clear)
    return app
