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

func run(ctx context.Context, cfg Config, logger *slog.Logger, health *Health) error {
	// Local problems are reported before the network is touched, so a typo
	// in the seed directory is not hidden behind a connection timeout.
	var docs []index.Document
	if cfg.SeedDir != "" {
		var err error
		if docs, err = seed.LoadMarkdownDir(cfg.SeedDir); err != nil {
			return err
		}
	}
	// The store is opened after the probes are served: rebuilding a large
	// index takes a while, and a liveness probe must not kill the worker
	// meanwhile (readiness stays "starting").
	var opened atomic.Pointer[store.Store]
	m := metrics.New(func() []metrics.CollectionSize {
		st := opened.Load()
		if st == nil {
			return nil
		}
		var out []metrics.CollectionSize
		for _, s := range st.Stats() {
			out = append(out, metrics.CollectionSize{Name: s.Name, Documents: s.Documents, Bytes: s.BytesOnDisk})
		}
		return out
	}, metrics.WithConstantLabels(cfg.MetricLabels))

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return listenError(cfg.HTTPAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", health.Handler())
	mux.Handle("GET /metrics", m.Handler())
	httpSrv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	httpErr := make(chan error, 1)
	go func() {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			httpErr <- err
		}
	}()
	defer shutdownHTTP(httpSrv, logger)
	logger.Info("serving health probes and metrics", "addr", ln.Addr().String())

	analyzer, err := index.NewAnalyzer(cfg.Analyzer)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.DataDir, store.Options{Logger: logger, Index: index.Options{Analyzer: analyzer}})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Warn("closing the data directory failed", "error", err)
		}
	}()
	if err := loadSeed(st, cfg, docs, logger); err != nil {
		return err
	}
	opened.Store(st)
	opts := retrieval.Options{Logger: logger, Metrics: m}

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
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	c, err := client.DialContext(dialCtx, clientOpts)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach Temporal at %s: %s; check TEMPORAL_ADDRESS and that the server is running", clientOpts.HostPort, describeDialError(err))
	}
	defer c.Close()

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
	if err := retrieval.Register(w, st, opts); err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		if _, ok := errors.AsType[*serviceerror.NamespaceNotFound](err); ok {
			return fmt.Errorf("namespace %q does not exist at %s; create it (temporal operator namespace create) or set TEMPORAL_NAMESPACE",
				clientOpts.Namespace, clientOpts.HostPort)
		}
		// Dialing reads only the server's system info, open to anyone; starting the worker is
		// the first call that needs the namespace, so a token without it is refused here.
		if denied, ok := errors.AsType[*serviceerror.PermissionDenied](err); ok {
			return fmt.Errorf("the Temporal server at %s refused access to namespace %q (%s): the credentials given (TEMPORAL_API_KEY, the TLS client certificate or the profile) do not grant it; use ones that do",
				clientOpts.HostPort, clientOpts.Namespace, denied.Message)
		}
		return fmt.Errorf("cannot start polling task queue %q in namespace %q at %s: %s",
			cfg.TaskQueue, clientOpts.Namespace, clientOpts.HostPort, rootCause(err))
	}
	health.Set(StateReady)
	logger.Info("worker started", "namespace", clientOpts.Namespace, "task_queue", cfg.TaskQueue,
		"service", retrieval.ServiceName, "address", clientOpts.HostPort, "data_dir", cfg.DataDir)

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("stopping worker")
	case err := <-fatal:
		runErr = fmt.Errorf("worker stopped polling task queue %q: %s", cfg.TaskQueue, rootCause(err))
	case err := <-httpErr:
		runErr = fmt.Errorf("health probe server on %s failed: %w", cfg.HTTPAddr, err)
	}
	// Report not-ready first so that probes stop routing work here while
	// in-flight requests drain.
	health.Set(StateStopping)
	w.Stop()
	logger.Info("worker stopped")
	return runErr
}

// loadSeed syncs the seed documents into SeedCollection. The collection
// exists even when there are none, so that searches return no hits rather
// than an unknown-collection error until documents are indexed.
func loadSeed(st *store.Store, cfg Config, docs []index.Document, logger *slog.Logger) error {
	if cfg.SeedDir == "" {
		// Without a seed directory the seed documents indexed earlier stay;
		// an empty directory, in contrast, removes them.
		if err := st.CreateCollection(SeedCollection, 0); err != nil {
			return fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
		}
		logger.Info("no seed directory configured", "collection", SeedCollection)
		return nil
	}
	res, err := seed.Sync(st, SeedCollection, docs)
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
