-- The retrieval index on PostgreSQL: collections, versioned documents with
-- their pgvector embeddings, and the BM25 postings with the statistics that
-- score them. Every table is written in one transaction per put or delete,
-- under the collection row's lock; searches read a snapshot and never wait.
CREATE EXTENSION IF NOT EXISTS vector;

-- Settings every replica must share (the analyzer the postings were built
-- with); a worker started with others is refused.
CREATE TABLE retrieval_settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE retrieval_collections (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    -- 0 until the first vector fixes it; then its HNSW index exists.
    dimension     integer NOT NULL DEFAULT 0 CHECK (dimension >= 0),
    -- BM25 statistics over live documents: N and the sum of |d| (avgdl =
    -- total_length / documents), kept by the transactions that change them.
    documents     bigint NOT NULL DEFAULT 0 CHECK (documents >= 0),
    total_length  bigint NOT NULL DEFAULT 0 CHECK (total_length >= 0),
    vectors       bigint NOT NULL DEFAULT 0 CHECK (vectors >= 0),
    content_bytes bigint NOT NULL DEFAULT 0
);

CREATE TABLE retrieval_documents (
    collection_id integer NOT NULL REFERENCES retrieval_collections (id) ON DELETE CASCADE,
    doc_id        text NOT NULL,
    version       bigint NOT NULL CHECK (version >= 1),
    title         text NOT NULL,
    body          text NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}',
    -- |d|: the number of terms of title and text after analysis.
    length        integer NOT NULL,
    -- Unit length; without a type modifier because collections differ in
    -- dimension: each collection's HNSW index is a partial expression index
    -- over embedding::vector(dimension).
    embedding     vector,
    PRIMARY KEY (collection_id, doc_id)
);
CREATE INDEX retrieval_documents_metadata ON retrieval_documents USING gin (metadata jsonb_path_ops);

-- One row per (term, document): the inverted index. The document's length is
-- repeated here so that scoring a term reads its postings only. n(t), the
-- live documents holding t, is counted from these rows in the search's own
-- snapshot, so it can never disagree with them (and no hot per-term counter
-- row serialises writers of different collections).
CREATE TABLE retrieval_postings (
    collection_id integer NOT NULL,
    term          text NOT NULL,
    doc_id        text NOT NULL,
    tf            integer NOT NULL CHECK (tf >= 1),
    doc_length    integer NOT NULL,
    -- tf and the length ride in the key's index, so scoring reads the index only.
    PRIMARY KEY (collection_id, term, doc_id) INCLUDE (tf, doc_length),
    FOREIGN KEY (collection_id, doc_id) REFERENCES retrieval_documents (collection_id, doc_id) ON DELETE CASCADE
);
CREATE INDEX retrieval_postings_document ON retrieval_postings (collection_id, doc_id);

