import time

import pytest

from fooddispatch.identity import InvalidToken, TokenExpired, Tokens
from kernel.http import Principal

SECRET = "a-secret-of-at-least-thirty-two-bytes!!"


def test_a_remembered_token_still_expires_on_time() -> None:
    tokens = Tokens({"k1": SECRET}, "k1", 3600)
    token = tokens.issue(Principal("cus_1", "customer"), ttl_seconds=1)
    assert tokens.verify(token) == Principal("cus_1", "customer")
    assert tokens.verify(token) == Principal("cus_1", "customer")  # from memory
    time.sleep(max(0.0, tokens._verified[token][1] - time.time()) + 0.05)
    with pytest.raises(TokenExpired):
        tokens.verify(token)
    with pytest.raises(TokenExpired):
        tokens.verify(token)  # and stays expired once forgotten


def test_a_bad_token_is_never_remembered_and_memory_is_bounded() -> None:
    tokens = Tokens({"k1": SECRET}, "k1", 3600)
    forged = Tokens({"k1": "another-secret-of-thirty-two-bytes!!"}, "k1", 3600).issue(Principal("x", "operator"))
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.verify(forged)
    assert forged not in tokens._verified
    tokens.CACHE_SIZE = 3
    issued = [tokens.issue(Principal(f"cus_{i}", "customer")) for i in range(5)]
    for token in issued:
        tokens.verify(token)
    assert list(tokens._verified) == issued[2:]
