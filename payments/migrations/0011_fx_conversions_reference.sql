-- A conversion's reference: the PaymentIntent a customer's quote funded, or the conversion a refund
-- (or a released hold) of that payment converts back against. Looked up by it on every such return.
CREATE INDEX fx_conversions_reference ON fx_conversions (reference);
