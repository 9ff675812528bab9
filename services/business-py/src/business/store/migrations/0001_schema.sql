-- Version 1: the business records as the SQLite store's schema version 3 holds them, with the
-- database enforcing what a single process used to: one refund per idempotency key (UNIQUE), an
-- order never refunded above its total (CHECK), tickets numbered without gaps (one counter row,
-- locked by the transaction that opens a ticket).

CREATE TABLE orders (
    order_id       text PRIMARY KEY,
    customer       text NOT NULL,
    customer_id    text NOT NULL DEFAULT '',
    status         text NOT NULL CHECK (status IN
                       ('placed', 'shipped', 'delivered', 'partially_refunded', 'refunded')),
    fulfilment     text NOT NULL DEFAULT '',
    total_cents    bigint NOT NULL CHECK (total_cents >= 0),
    refunded_cents bigint NOT NULL DEFAULT 0
                       CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents),
    currency       text NOT NULL CHECK (length(currency) = 3),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_items (
    order_id    text NOT NULL REFERENCES orders (order_id),
    line_no     integer NOT NULL,
    sku         text NOT NULL,
    name        text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity >= 1),
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE refunds (
    refund_id       text PRIMARY KEY,
    order_id        text NOT NULL REFERENCES orders (order_id),
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    currency        text NOT NULL,
    reason          text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_by_order ON refunds (order_id);

CREATE TABLE tickets (
    ticket_id       text PRIMARY KEY,
    order_id        text REFERENCES orders (order_id),
    subject         text NOT NULL,
    body            text NOT NULL DEFAULT '',
    priority        text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    idempotency_key text NOT NULL UNIQUE,
    customer_id     text
);

CREATE TABLE ticket_numbers (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_number integer NOT NULL
);
INSERT INTO ticket_numbers (last_number) VALUES (1000);

CREATE TABLE access_refusals (
    refusal_no  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    operation   text NOT NULL,
    customer_id text NOT NULL,
    target      text NOT NULL,
    owner       text NOT NULL
);
