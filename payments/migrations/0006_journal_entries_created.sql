-- A restaurant's statement reads the ledger's split and refund entries of a period (payments/ledger.py
-- `restaurant_statement`).
CREATE INDEX journal_entries_created ON journal_entries (created_at);
