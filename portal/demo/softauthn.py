"""A tiny software authenticator: the demo city's people sign their past reports with it, and the
server-side WebAuthn tests use it to make good and bad answers.

It does what a platform authenticator does, in Python: makes an EC P-256 key pair per credential, builds
``authenticatorData`` / a ``none`` attestation object (CBOR), signs ``authenticatorData || SHA-256(
clientDataJSON)``, and answers in the JSON shape ``@simplewebauthn/browser`` posts. Every knob a test needs
to produce a bad answer is a keyword: origin, RP ID, user verification, the counter, the challenge.
It is equipment (an authenticator, what a phone does), not a stand-in for any code of the portal: the
portal verifies its answers with the same code as a real device's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return bytes_to_base64url(data)


@dataclass
class Credential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    rp_id: str
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    origin: str = "http://localhost:8000"
    rp_id: str = "localhost"
    aaguid: bytes = bytes(16)
    credentials: list[Credential] = field(default_factory=list)

    def _auth_data(self, rp_id: str, flags: int, sign_count: int, attested: bytes = b"") -> bytes:
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + sign_count.to_bytes(4, "big")
            + attested
        )

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        challenge: str | None = None,
        sign_count: int = 0,
    ) -> dict[str, Any]:
        """Answer ``navigator.credentials.create(options)`` (options as the server's JSON)."""
        rp = rp_id or options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )
        credential_id = os.urandom(32)
        attested = self.aaguid + len(credential_id).to_bytes(2, "big") + credential_id + cose
        flags = UP | AT | BE | BS | (UV if user_verified else 0)
        auth_data = self._auth_data(rp, flags, sign_count, attested)
        client_data = json.dumps(
            {
                "type": "webauthn.create",
                "challenge": challenge or options["challenge"],
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.credentials.append(
            Credential(credential_id, key, base64url_to_bytes(options["user"]["id"]), rp, sign_count)
        )
        return {
            "id": b64(credential_id),
            "rawId": b64(credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        sign_count: int | None = None,
        challenge: str | None = None,
    ) -> dict[str, Any]:
        """Answer ``navigator.credentials.get(options)`` with a discoverable credential (the last made)."""
        cred = credential or self.credentials[-1]
        cred.sign_count = cred.sign_count + 1 if sign_count is None else sign_count
        flags = UP | BE | BS | (UV if user_verified else 0)
        auth_data = self._auth_data(rp_id or options.get("rpId") or cred.rp_id, flags, cred.sign_count)
        client_data = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": challenge or options["challenge"],
                "origin": origin or self.origin,
                "crossOrigin": False,
            }
        ).encode()
        signature = cred.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(cred.credential_id),
            "rawId": b64(cred.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(cred.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
