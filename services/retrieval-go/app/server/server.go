// Package server wires the retrieval worker together: it opens the index's
// data directory, loads the seed documents, serves the health probes and
// metrics, connects to Temporal and polls the task queue until it is told to
// stop.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/metrics"
	"github.com/durable-agents/reference/services/retrieval-go/app/retrieval"
	"github.com/durable-agents/reference/services/retrieval-go/app/seed"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
	"github.com/durable-agents/reference/services/retrieval-go/app/tracing"
)

const (
	// dialTimeout bounds the first connection to Temporal, so that a wrong
	// address fails start-up with a clear message instead of hanging.
	dialTimeout = 10 * time.Second
	// stopTimeout bounds how long in-flight requests may finish on shutdown;
	// a search is cut off after retrieval.DefaultSearchTimeout anyway.
	stopTimeout = 5 * time.Second
)

// NewLogger returns the structured logger the worker and the Temporal SDK
// write to.
func NewLogger(w io.Writer, cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run starts the worker and blocks until ctx is cancelled or the worker fails.
// Start-up errors are returned as one sentence naming what to fix. Run
// returns nil after a requested stop.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	return run(ctx, cfg, logger, &Health{})
}

// run is Run with the health state passed in, so that tests can watch it.
// It prepares what is local (seed documents, probes and metrics, the data
// directory) before runWorker turns to Temporal.
func run(ctx context.Context, cfg Config, logger *slog.Logger, health *Health) error {
	// Local problems are reported before the network is touched, so a typo
	// in the seed directory is not hidden behind a connection timeout.
	docs, err := readSeed(cfg.SeedDir)
	if err != nil {
		return err
	}
	// The store is opened after the probes are served: rebuilding a large
	// index takes a while, and a liveness probe must not kill the worker
	// meanwhile (readiness stays "starting").
	var opened atomic.Pointer[backend.Backend]
	m := metrics.New(collectionSizes(&opened), metrics.WithConstantLabels(cfg.MetricLabels))
	httpSrv, httpErr, err := serveProbes(cfg.HTTPAddr, health, m, logger)
	if err != nil {
		return err
	}
	defer shutdownHTTP(httpSrv, logger)

	st, err := openBackend(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeBackend(st, logger)
	if err := loadSeed(ctx, st, cfg, docs, logger); err != nil {
		return err
	}
	opened.Store(&st)
	return runWorker(ctx, cfg, st, m, httpErr, health, logger)
}

// runWorker connects to Temporal and polls the task queue with st's
// handlers until ctx is cancelled, the worker fails or the probe server
// reports a failure on httpErr. A stop requested while Temporal is still
// being dialled is not an error.
func runWorker(ctx context.Context, cfg Config, st backend.Backend, m *metrics.Metrics, httpErr <-chan error, health *Health, logger *slog.Logger) error {
	if !cfg.PayloadEncryption {
		logger.Warn("payload encryption is off (PAYLOAD_ENCRYPTION=off): the Temporal server stores queries and documents in plain text")
	}
	clientOpts := cfg.Client
	if err := observePayloadEncryption(&clientOpts, cfg.KeyRing, m.CodecObserver()); err != nil {
		return err
	}
	clientOpts.Logger = sdklog.NewStructuredLogger(logger)
	sdkMetrics, flush := m.TemporalHandler(logger)
	defer flush.Close()
	clientOpts.MetricsHandler = sdkMetrics
	traces, err := tracing.Setup(ctx)
	if err != nil {
		return err
	}
	// Deferred before the client's Close so it runs after the worker has
	// drained: the last requests' spans are flushed too.
	defer shutdownTracing(traces, logger)
	clientOpts.Interceptors = append(clientOpts.Interceptors, traces.Interceptors()...)
	c, err := dial(ctx, clientOpts)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while dialling: not a failure
		}
		return err
	}
	defer c.Close()

	w, fatal := newWorker(c, cfg, m)
	if err := retrieval.Register(w, st, retrieval.Options{Logger: logger, Metrics: m}); err != nil {
		return err
	}
	if err := startPolling(w, cfg.TaskQueue, clientOpts); err != nil {
		return err
	}
	health.Set(StateReady)
	logger.Info("worker started", "namespace", clientOpts.Namespace, "task_queue", cfg.TaskQueue,
		"service", retrieval.ServiceName, "address", clientOpts.HostPort, "backend", cfg.Backend)

	runErr := awaitStop(ctx, cfg, fatal, httpErr, logger)
	// Report not-ready first so that probes stop routing work here while
	// in-flight requests drain.
	health.Set(StateStopping)
	w.Stop()
	logger.Info("worker stopped")
	return runErr
}

// readSeed reads the seed documents from dir; there are none when dir is
// empty.
func readSeed(dir string) ([]index.Document, error) {
	if dir == "" {
		return nil, nil
	}
	return seed.LoadMarkdownDir(dir)
}

// collectionSizes reports the collections of the store in opened to the
// metrics registry, and nothing while the store is still being opened.
func collectionSizes(opened *atomic.Pointer[backend.Backend]) func() []metrics.CollectionSize {
	return func() []metrics.CollectionSize {
		st := opened.Load()
		if st == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		stats, err := (*st).Stats(ctx)
		if err != nil {
			return nil // the scrape goes without the gauges this time
		}
		var out []metrics.CollectionSize
		for _, s := range stats {
			out = append(out, metrics.CollectionSize{Name: s.Name, Documents: s.Documents, Bytes: s.BytesOnDisk})
		}
		return out
	}
}

// serveProbes serves the health probes and /metrics on addr in the
// background. The channel receives the server's error should it stop
// serving; shutdownHTTP stops it.
func serveProbes(addr string, health *Health, m *metrics.Metrics, logger *slog.Logger) (*http.Server, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, listenError(addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", health.Handler())
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	httpErr := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			httpErr <- err
		}
	}()
	logger.Info("serving health probes and metrics", "addr", ln.Addr().String())
	return srv, httpErr, nil
}

// openBackend opens the configured backend with the configured analyzer:
// the embedded index's data directory, or the PostgreSQL database (whose
// schema the migrate command must have applied).
func openBackend(ctx context.Context, cfg Config, logger *slog.Logger) (backend.Backend, error) {
	analyzer, err := index.NewAnalyzer(cfg.Analyzer)
	if err != nil {
		return nil, err
	}
	opts := index.Options{Analyzer: analyzer}
	if cfg.Backend == backend.Postgres {
		b, err := postgres.Open(ctx, postgres.Options{URL: cfg.DatabaseURL, Index: opts, Logger: logger})
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	st, err := store.Open(cfg.DataDir, store.Options{Logger: logger, Index: opts})
	if err != nil {
		return nil, err
	}
	return backend.EmbeddedStore{Store: st}, nil
}

func closeBackend(st backend.Backend, logger *slog.Logger) {
	if err := st.Close(); err != nil {
		logger.Warn("closing the index failed", "error", err)
	}
}

// Migrate applies the PostgreSQL backend's schema migrations (idempotent;
// concurrent runs apply each once).
func Migrate(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Backend != backend.Postgres {
		return errors.New("migrate applies the PostgreSQL backend's schema; set RETRIEVAL_BACKEND=postgres and RETRIEVAL_DATABASE_URL")
	}
	pool, err := postgres.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := postgres.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	logger.Info("retrieval schema migrated", "from_version", res.From, "to_version", res.To, "applied", res.Applied)
	return nil
}

// dial connects to Temporal within dialTimeout, so that a wrong address
// fails start-up with one sentence naming what to check.
func dial(ctx context.Context, opts client.Options) (client.Client, error) {
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.DialContext(dialCtx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s: %s; check TEMPORAL_ADDRESS and that the server is running", opts.HostPort, describeDialError(err))
	}
	return c, nil
}

// newWorker creates the task queue's worker. The channel receives the
// first fatal error, such as losing the namespace, that makes it stop
// polling on its own.
func newWorker(c client.Client, cfg Config, m *metrics.Metrics) (worker.Worker, <-chan error) {
	fatal := make(chan error, 1)
	w := worker.New(c, cfg.TaskQueue, worker.Options{
		WorkerStopTimeout: stopTimeout,
		DeploymentOptions: cfg.Deployment,
		Interceptors:      []interceptor.WorkerInterceptor{m.NexusInterceptor()},
		OnFatalError: func(err error) {
			select {
			case fatal <- err:
			default:
			}
		},
	})
	return w, fatal
}

// startPolling starts w, naming a missing namespace as such: it is the
// likeliest mistake in a new deployment.
func startPolling(w worker.Worker, taskQueue string, opts client.Options) error {
	err := w.Start()
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*serviceerror.NamespaceNotFound](err); ok {
		return fmt.Errorf("namespace %q does not exist at %s; create it (temporal operator namespace create) or set TEMPORAL_NAMESPACE",
			opts.Namespace, opts.HostPort)
	}
	// Dialing reads only the server's system info, open to anyone; starting the worker is
	// the first call that needs the namespace, so a token without it is refused here.
	if denied, ok := errors.AsType[*serviceerror.PermissionDenied](err); ok {
		return fmt.Errorf("the Temporal server at %s refused access to namespace %q (%s): the credentials given (TEMPORAL_API_KEY, the TLS client certificate or the profile) do not grant it; use ones that do",
			opts.HostPort, opts.Namespace, denied.Message)
	}
	return fmt.Errorf("cannot start polling task queue %q in namespace %q at %s: %s",
		taskQueue, opts.Namespace, opts.HostPort, rootCause(err))
}

// awaitStop blocks until ctx is cancelled (a requested stop: nil) or the
// worker or the probe server fails (that failure).
func awaitStop(ctx context.Context, cfg Config, fatal, httpErr <-chan error, logger *slog.Logger) error {
	select {
	case <-ctx.Done():
		logger.Info("stopping worker")
		return nil
	case err := <-fatal:
		return fmt.Errorf("worker stopped polling task queue %q: %s", cfg.TaskQueue, rootCause(err))
	case err := <-httpErr:
		return fmt.Errorf("health probe server on %s failed: %w", cfg.HTTPAddr, err)
	}
}

// loadSeed syncs the seed documents into SeedCollection. The collection
// exists even when there are none, so that searches return no hits rather
// than an unknown-collection error until documents are indexed.
func loadSeed(ctx context.Context, st backend.Backend, cfg Config, docs []index.Document, logger *slog.Logger) error {
	embedded, isEmbedded := st.(backend.EmbeddedStore)
	if cfg.SeedDir == "" || !isEmbedded {
		// Without a seed directory the seed documents indexed earlier stay;
		// an empty directory, in contrast, removes them. (LoadConfig allows
		// a seed directory with the embedded backend only.)
		if err := st.CreateCollection(ctx, SeedCollection, 0); err != nil {
			return fmt.Errorf("%s backend: %w", cfg.Backend, err)
		}
		logger.Info("no seed directory configured", "collection", SeedCollection)
		return nil
	}
	res, err := seed.Sync(embedded.Store, SeedCollection, docs)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	switch {
	case len(docs) == 0:
		logger.Warn("seed directory holds no *.md files", "dir", cfg.SeedDir, "collection", SeedCollection)
	default:
		logger.Info("synced seed documents", "dir", cfg.SeedDir, "collection", SeedCollection, "documents", len(docs),
			"added", res.Added, "replaced", res.Replaced, "unchanged", res.Unchanged, "deleted", res.Deleted)
	}
	return nil
}

func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("cannot serve health probes on %s: the port is already in use; stop the other process or set RETRIEVAL_HTTP_ADDR", addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot serve health probes on %s: permission denied; use a port above 1023 in RETRIEVAL_HTTP_ADDR", addr)
	}
	return fmt.Errorf("cannot serve health probes on %s: %s; check RETRIEVAL_HTTP_ADDR", addr, rootCause(err))
}

func shutdownTracing(t *tracing.Tracing, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		logger.Warn("could not export the last trace spans", "error", err)
	}
}

func shutdownHTTP(srv *http.Server, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("health probe server did not stop cleanly", "error", err)
	}
}

// describeDialError boils a failed dial down to the reason a person can act
// on; gRPC wraps it in transport details that bury it.
func describeDialError(err error) string {
	msg := rootCause(err)
	if st, ok := status.FromError(err); ok {
		if st.Code() == codes.DeadlineExceeded {
			return fmt.Sprintf("no answer within %s", dialTimeout)
		}
		msg = st.Message()
	}
	for _, r := range []struct{ substr, reason string }{
		{"connection refused", "connection refused"},
		{"no such host", "host not found"},
		// gRPC's resolver says this when a host name resolves to nothing.
		{"no children to pick from", "host not found"},
		{"produced zero addresses", "host not found"},
		{"network is unreachable", "network is unreachable"},
		{"i/o timeout", "connection timed out"},
	} {
		if strings.Contains(msg, r.substr) {
			return r.reason
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", dialTimeout)
	}
	return msg
}

// rootCause returns the innermost error message, which for gRPC and network
// errors is the part a person can act on ("connection refused") rather than
// a chain of wrappers.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
