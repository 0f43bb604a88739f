"""certmgr REST shapes (VOS 14+) on a node's HTTPS admin port: HTTP Basic auth, JSON."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from . import journal, pki
from .node import CommandError, MockNode

BASE = "/platformcom/api/v1/certmgr/config"


def make_rest_app(node: MockNode) -> web.Application:
    @web.middleware
    async def basic_auth(request: web.Request, handler):
        header = request.headers.get("Authorization", "")
        ok = False
        if header.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                ok = node.check_password(user, pw)
            except (binascii.Error, UnicodeDecodeError):
                ok = False
        if not ok:
            return web.json_response(
                {"error": "Unauthorized"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Cisco Platform"'},
            )
        journal.record(node, f"{request.method} {request.path_qs}", "rest")
        try:
            return await handler(request)
        except CommandError as exc:
            return web.json_response({"error": " ".join(exc.lines)}, status=400)

    async def body(request: web.Request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            raise CommandError("Error: the request body is not JSON.") from None
        if not isinstance(data, dict):
            raise CommandError("Error: the request body must be a JSON object.")
        return data

    def unit_of(value) -> str:
        unit = node.unit(str(value))
        if unit is None:  # [assumed] wording
            raise CommandError(f"Error: invalid service {value}: use {' or '.join(node.units)}.")
        return unit

    async def csr(request: web.Request):
        data = await body(request)
        unit = unit_of(data.get("service"))
        await node.gen_csr(unit, include_ou=False)
        return web.json_response({"csr": node.csr(unit)[0].decode()})

    async def identity(request: web.Request):
        data = await body(request)
        unit = unit_of(data.get("service"))
        certs = data.get("certificates") or []
        if not certs or not all(isinstance(c, str) for c in certs):
            raise CommandError("Error: certificates must be a non-empty list of PEM strings.")
        node.import_own(unit, node.parse_cert(certs[0].encode()))
        return web.json_response(
            {"message": f"Successfully imported certificate for {unit}.", "service": unit}
        )

    async def trust_post(request: web.Request):
        data = await body(request)
        services = data.get("service") or ["tomcat"]
        if isinstance(services, str):
            services = [services]
        if [s.lower() for s in services] != ["tomcat"]:
            raise CommandError("Error: only the tomcat trust store is simulated.")
        certs = data.get("certificates") or []
        if not certs or not all(isinstance(c, str) for c in certs):
            raise CommandError("Error: certificates must be a non-empty list of PEM strings.")
        parsed = [node.parse_cert(c.encode()) for c in certs]
        names = [node.import_trust(c) for c in parsed]
        return web.json_response(
            {
                "message": "Successfully imported certificate for tomcat.",
                "files": [f"tomcat-trust/{n}" for n in names],
            }
        )

    async def trust_get(request: web.Request):
        service = request.query.get("service", "tomcat")
        if service.lower() not in ("tomcat", "tomcat-trust"):
            raise CommandError("Error: only the tomcat trust store is simulated.")
        out = []
        for fname, pem in node.trust().items():
            cert = pki.load_cert(pem)
            out.append(
                {
                    "service": "tomcat-trust",
                    "filename": f"tomcat-trust/{fname}",
                    "subjectName": cert.subject.rfc4514_string(),
                    "issuerName": cert.issuer.rfc4514_string(),
                    "serialNumber": f"{cert.serial_number:x}",
                    "certificate": pem.decode(),
                }
            )
        return web.json_response(out)

    app = web.Application(middlewares=[basic_auth])
    app.router.add_post(f"{BASE}/csr", csr)
    app.router.add_post(f"{BASE}/identity/certificates", identity)
    app.router.add_post(f"{BASE}/trust/certificates", trust_post)
    app.router.add_get(f"{BASE}/trust/certificate", trust_get)
    return app
