-- Which restaurant tenant an order's splits settle for (payments/settlement.py `post_split`, in the split's
-- transaction): the statement's and refund.created's attribution of orders to tenants. The ledger alone cannot
-- say it for every order: it drops zero postings, so a split that credits the restaurant nothing (every item
-- reported missing before delivery: the customer pays fees and tip only) names no restaurant account, and a
-- refund of that order the restaurant bears was missing from its statement.
CREATE TABLE order_restaurants (
    order_id      text        PRIMARY KEY,
    restaurant_id text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_restaurants_restaurant ON order_restaurants (restaurant_id);

-- Splits made before: the restaurant account their split credited (a zero split of then is not known).
INSERT INTO order_restaurants (order_id, restaurant_id, created_at)
SELECT DISTINCT ON (split_part(e.reference, ':', 1)) split_part(e.reference, ':', 1), a.owner_id, e.created_at
  FROM journal_entries e
  JOIN postings p ON p.entry_id = e.id
  JOIN ledger_accounts a ON a.id = p.account_id AND a.kind = 'restaurant_payable'
 WHERE e.kind = 'split' AND e.reference IS NOT NULL
 ORDER BY split_part(e.reference, ':', 1), e.created_at;
