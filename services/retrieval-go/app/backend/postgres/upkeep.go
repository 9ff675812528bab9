package postgres

import (
	"context"
	"sync"
	"time"
)

// VacuumAfterDocuments is how many documents this process writes or deletes
// through Put and Delete before it vacuums the index tables in the
// background.
//
// Live writes leave new heap pages that are not yet all-visible, and
// statistics that describe the tables as they were: until a vacuum, every
// index-only scan of the postings reads the heap too. Measured with 30,000
// documents put in batches of 64: BM25 p50 15.5 ms and p90 37 ms, unchanged
// 20 s later (autovacuum wakes once a minute, then waits for 20% growth),
// against 2.6 and 5.0 ms after VACUUM (ANALYZE); with this vacuum every
// 5,000 documents, 2.9-3.9 and 6-10 ms right after the last put, and the
// puts took as long (41 s). A vacuum reads only the pages not yet
// all-visible, and ANALYZE a fixed sample, so one every few thousand
// documents costs little however large the tables are.
const VacuumAfterDocuments = 5000

// upkeep runs at most one background vacuum at a time.
type upkeep struct {
	ctx     context.Context // cancelled by Close
	stop    context.CancelFunc
	mu      sync.Mutex
	pending int // documents written or deleted since the last vacuum began
	running bool
	done    sync.WaitGroup
}

func newUpkeep() *upkeep {
	ctx, stop := context.WithCancel(context.Background())
	return &upkeep{ctx: ctx, stop: stop}
}

// changed counts documents a Put or Delete committed, and starts a vacuum
// when enough have accumulated and none is running.
func (b *Backend) changed(documents int) {
	u := b.upkeep
	u.mu.Lock()
	u.pending += documents
	if u.running || u.pending < VacuumAfterDocuments || u.ctx.Err() != nil {
		u.mu.Unlock()
		return
	}
	documents, u.pending, u.running = u.pending, 0, true
	u.done.Add(1)
	u.mu.Unlock()
	go func() {
		defer u.done.Done()
		started := time.Now()
		err := b.vacuum(u.ctx)
		u.mu.Lock()
		u.running = false
		u.mu.Unlock()
		switch {
		case u.ctx.Err() != nil: // closing
		case err != nil:
			b.log.Warn("vacuum of the index tables after live writes failed; autovacuum will get to them",
				"documents", documents, "err", err)
		default:
			b.log.Info("index tables vacuumed after live writes", "documents", documents, "duration", time.Since(started))
		}
	}()
}

// vacuum sets the index tables' new pages all-visible and refreshes the
// planner's statistics.
func (b *Backend) vacuum(ctx context.Context) error {
	_, err := b.pool.Exec(ctx, `VACUUM (ANALYZE) retrieval_documents, retrieval_postings`)
	return err
}

// close stops a running vacuum and waits for it, so that the pool can close.
// Cancelling under the lock means no write that commits meanwhile starts
// another one (changed checks the context under the same lock).
func (u *upkeep) close() {
	u.mu.Lock()
	u.stop()
	u.mu.Unlock()
	u.done.Wait()
}
