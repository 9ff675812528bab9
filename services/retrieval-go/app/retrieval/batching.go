package retrieval

import (
	"slices"

	"go.temporal.io/sdk/workflow"
)

const (
	// ByteCappedBatchesChange is the GetVersion change id of byte-capped
	// batches (docs/versioning.md). Histories record it; it must not change.
	ByteCappedBatchesChange = "byte-capped-batches"
	// MaxBatchBytes caps the estimated size of one activity's documents, far
	// below Temporal's 2 MiB payload limit even after encryption's overhead:
	// 64 long documents with embeddings used to exceed it, and the activity
	// could not even be scheduled.
	MaxBatchBytes = 256 << 10
	// vectorValueBytes is a float64 as JSON at worst.
	vectorValueBytes = 24
)

// indexBatches splits a request's documents into activity batches. Workflows
// that started before the change keep batching by count alone, so their
// histories replay; every new run caps batches by size too.
func indexBatches(ctx workflow.Context, docs []IndexDocument) [][]IndexDocument {
	if workflow.GetVersion(ctx, ByteCappedBatchesChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return slices.Collect(slices.Chunk(docs, ActivityBatchSize))
	}
	return byteCappedBatches(docs, ActivityBatchSize, MaxBatchBytes)
}

// byteCappedBatches keeps order and puts at most maxDocs documents and, unless
// one document alone is larger, at most maxBytes estimated bytes in a batch.
func byteCappedBatches(docs []IndexDocument, maxDocs, maxBytes int) [][]IndexDocument {
	var batches [][]IndexDocument
	start, size := 0, 0
	for i, d := range docs {
		n := documentBytes(d)
		if i > start && (i-start == maxDocs || size+n > maxBytes) {
			batches = append(batches, docs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(docs) {
		batches = append(batches, docs[start:])
	}
	return batches
}

func documentBytes(d IndexDocument) int {
	n := len(d.ID) + len(d.Title) + len(d.Text) + vectorValueBytes*len(d.Vector)
	for k, v := range d.Metadata {
		n += len(k) + len(v)
	}
	return n
}
