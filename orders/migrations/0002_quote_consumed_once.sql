-- A quote pays for one order, ever. Checkout claims its quote with a conditional UPDATE
-- (`order_id IS NULL`) in the same transaction that writes the order, before the payment
-- hold: a second checkout of the quote (another Idempotency-Key, or the same one racing)
-- waits for the first one's row lock, then finds the quote taken and is refused with the
-- order's id. A rolled-back checkout (decline, 3-D Secure, price change) gives the quote back.
ALTER TABLE order_quotes ADD COLUMN order_id text;

-- Quotes ordered before this migration are taken by their first order (by id: time order).
UPDATE order_quotes q SET order_id = first.id
  FROM (SELECT quote_id, min(id) AS id FROM orders GROUP BY quote_id) AS first
 WHERE q.id = first.quote_id;
