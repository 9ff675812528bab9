// Package backend is the seam between the retrieval worker's Nexus handlers
// and where its index lives: the embedded engine (package index made durable
// by package store: one process, its own data directory) or PostgreSQL
// (package backend/postgres: any number of replicas over one database).
// Handlers, the index activity and the evaluation talk to a Backend and never
// learn which one they have; one conformance suite (conformance_test.go) runs
// against both.
package backend

import (
	"context"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// Names of the backends, as RETRIEVAL_BACKEND spells them.
const (
	Embedded = "embedded"
	Postgres = "postgres"
)

// Backend is a searchable, durable collection of versioned documents. Every
// method is safe for concurrent use. Errors wrap index.ErrInvalid when the
// request cannot succeed as made and index.ErrUnknownCollection when the
// collection does not exist; anything else may pass on retry.
type Backend interface {
	// Search ranks documents; see index.Index.Search for the semantics every
	// backend keeps (modes, filters, ties by ascending id).
	Search(ctx context.Context, q index.Query) (index.Result, error)
	// Put adds, replaces or ignores each document by its version, atomically
	// and durably: when it returns without error, the changes survive a crash.
	Put(ctx context.Context, collection string, docs []index.Document) (index.PutResult, error)
	// Delete removes the documents with the given ids, durably.
	Delete(ctx context.Context, collection string, ids []string) (index.DeleteResult, error)
	// CreateCollection creates a collection if it does not exist; dim 0
	// leaves its vector dimension to the first vector.
	CreateCollection(ctx context.Context, name string, dim int) error
	// ValidateDocuments checks docs as Put would, against the collection's
	// dimension, without changing anything.
	ValidateDocuments(ctx context.Context, collection string, docs []index.Document) error
	// Collections names every collection, in name order.
	Collections(ctx context.Context) ([]string, error)
	// Stats describes every collection, in name order.
	Stats(ctx context.Context) ([]Stats, error)
	// Close releases the backend's resources.
	Close() error
}

// Stats describes one collection.
type Stats struct {
	index.CollectionStats
	// BytesOnDisk is the size of the collection's records: in the snapshot
	// and journals (embedded), or of its rows' content (PostgreSQL).
	BytesOnDisk int64
}

// EmbeddedStore adapts the embedded engine's durable store to Backend.
type EmbeddedStore struct {
	Store *store.Store
}

var _ Backend = EmbeddedStore{}

// Search runs a search in memory.
func (e EmbeddedStore) Search(ctx context.Context, q index.Query) (index.Result, error) {
	return e.Store.Search(ctx, q)
}

// Put journals the changed documents (fsynced) and applies them. The store
// takes no context: a put that has started finishes, so that what was
// written is also what was applied.
func (e EmbeddedStore) Put(_ context.Context, collection string, docs []index.Document) (index.PutResult, error) {
	return e.Store.Put(collection, docs)
}

// Delete journals the deletion (fsynced) and applies it.
func (e EmbeddedStore) Delete(_ context.Context, collection string, ids []string) (index.DeleteResult, error) {
	return e.Store.Delete(collection, ids)
}

// CreateCollection journals the collection's creation.
func (e EmbeddedStore) CreateCollection(_ context.Context, name string, dim int) error {
	return e.Store.CreateCollection(name, dim)
}

// ValidateDocuments checks docs against the collection in memory.
func (e EmbeddedStore) ValidateDocuments(_ context.Context, collection string, docs []index.Document) error {
	return e.Store.Index().ValidateDocuments(collection, docs)
}

// Collections names the collections in memory.
func (e EmbeddedStore) Collections(context.Context) ([]string, error) {
	return e.Store.Index().Collections(), nil
}

// Stats describes the collections, with their bytes in the data directory.
func (e EmbeddedStore) Stats(context.Context) ([]Stats, error) {
	st := e.Store.Stats()
	out := make([]Stats, len(st))
	for i, s := range st {
		out[i] = Stats{CollectionStats: s.CollectionStats, BytesOnDisk: s.BytesOnDisk}
	}
	return out, nil
}

// Close closes the data directory.
func (e EmbeddedStore) Close() error { return e.Store.Close() }
