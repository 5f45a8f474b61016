"""An erased account's tokens stop verifying in every process: the erasing one at once (`Tokens.revoke`),
the others at their next `IdentityService.refresh_revoked` (every 5 s in the app)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fooddispatch.identity import IdentityService, TokenRevoked, Tokens


async def test_another_process_refuses_an_erased_accounts_token_after_its_refresh(db) -> None:
    here = IdentityService(db, Tokens({"k": "secret-0123456789abcdefghijklmnop"}, "k", 3600))
    there = IdentityService(db, Tokens({"k": "secret-0123456789abcdefghijklmnop"}, "k", 3600))
    who = await here.create_account("customer", email="gone@example.com", name="Gone")
    kept = await here.create_account("customer", email="kept@example.com", name="Kept")
    token, other = here.tokens.issue(who), here.tokens.issue(kept)
    assert there.tokens.verify(token) == who  # verified (and cached) before the erasure
    async with db.acquire() as conn:
        assert await here.erase_account(conn, who.account_id, datetime.now(UTC)) == 1
    here.tokens.revoke({who.account_id})
    with pytest.raises(TokenRevoked):
        here.tokens.verify(token)
    assert there.tokens.verify(token) == who  # not refreshed yet
    await there.refresh_revoked()
    with pytest.raises(TokenRevoked):
        there.tokens.verify(token)
    assert there.tokens.verify(other) == kept
