-- What a bill has been paid (owner: billing/postgres).
--
--   * bills.last_posting_id: the connection's newest collection posting
--     when the bill was issued (0: none). The bill's paid_amount is what
--     payments posted after it (and reversals of those payments) collected
--     against the bill's demands (its own and the earlier ones of the same
--     kind it presents as arrears), capped at the total; amounts appended
--     to those demands later (interest, penalty, an official's adhoc
--     amount, the late-payment surcharge) do not lower it. Postings and
--     bill issues of a connection are serialised by its row lock, so a
--     posting id above this one is a posting made after the bill. Set at
--     insert and immutable like the rest of the bill.
--   * Existing bills get the newest posting of their connection posted
--     no later than they were issued.

-- +goose Up
ALTER TABLE bills ADD COLUMN last_posting_id bigint NOT NULL DEFAULT 0 CHECK (last_posting_id >= 0);
ALTER TABLE bills DISABLE TRIGGER bills_guard;
UPDATE bills b SET last_posting_id = coalesce((SELECT max(p.id) FROM collection_postings p
    WHERE p.connection_id = b.connection_id AND p.posted_at <= b.issued_at), 0);
ALTER TABLE bills ENABLE TRIGGER bills_guard;

-- +goose Down
ALTER TABLE bills DROP COLUMN last_posting_id;
