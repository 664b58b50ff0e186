"""Writers of certificate events for feed-paging tests: a Services in this process issuing,
holding, unholding and revoking, and another OS process issuing on the same database and
key directory (what a second worker of `ceg serve --workers N` does)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

from ca_core.model import IssuanceRequest, Requester
from ca_core.services import Services
from ca_core.status.revocation import StatusChange
from tests.support.pki import make_csr

REPO = Path(__file__).parents[2]
PROFILE = "est-digital-signature"

_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from ca_core.keys.file import FileKeyStore
    from ca_core.model import IssuanceRequest, Requester
    from ca_core.services import open_services
    from tests.support.pki import make_csr

    async def main():
        url, keys, passphrase, ca, profile, count = sys.argv[1:7]
        s = await open_services(url, FileKeyStore(Path(keys), passphrase.encode()), "http://x", run_migrations=False)
        try:
            for _ in range(int(count)):
                await s.issuance.issue(
                    IssuanceRequest(ca=ca, profile=profile, requester=Requester("proc"), csr=make_csr())
                )
        finally:
            await s.close()

    asyncio.run(main())
    """
)


async def write_events(services: Services, count: int, ca: str = "issuing") -> None:
    """`count` issuances; every third certificate is then held and unheld, every third
    revoked: issued, held, unheld and revoked events interleaved with other writers'."""
    for i in range(count):
        issued = await services.issuance.issue(
            IssuanceRequest(ca=ca, profile=PROFILE, requester=Requester("writer"), csr=make_csr())
        )
        if i % 3 == 0:
            await services.revocation.hold(StatusChange(issued.serial_hex, "writer"))
            await services.revocation.unhold(StatusChange(issued.serial_hex, "writer"))
        elif i % 3 == 1:
            await services.revocation.revoke(StatusChange(issued.serial_hex, "writer"))


async def write_events_in_another_process(
    database_url: str, keys: Path, passphrase: bytes, count: int, ca: str = "issuing"
) -> None:
    """`count` issuances by a separate Python process (its own engine and connections)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PROCESS,
        database_url,
        str(keys),
        passphrase.decode(),
        ca,
        PROFILE,
        str(count),
        cwd=str(REPO),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
