"""A typed async client for fooddispatch's public API, over one `aiohttp.ClientSession`.

    async with aiohttp.ClientSession() as session:
        client = Client("http://127.0.0.1:8080", session).with_token(token)
        quote = await client.quote(QuoteRequest(...))
        order = await client.checkout(CheckoutRequest(quote_id=quote.id, payment_method_id=card.id))

Requests and answers are the server's own msgspec Structs; errors raise `ApiError`.
"""

from fooddispatch.client.api import Client, Probe
from fooddispatch.client.courier import CourierSocket, UnknownFrame
from fooddispatch.client.errors import CONNECTION_FAILED, ApiError
from fooddispatch.client.operations import OPERATIONS, Operation
from fooddispatch.client.transport import RetryPolicy, new_idempotency_key

__all__ = ["CONNECTION_FAILED", "OPERATIONS", "ApiError", "Client", "CourierSocket", "Operation", "Probe",
           "RetryPolicy", "UnknownFrame", "new_idempotency_key"]
