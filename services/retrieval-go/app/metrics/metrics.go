// Package metrics serves the retrieval worker's Prometheus metrics: the
// Temporal SDK's, named as the Python SDK names them, and the worker's own.
//
// The Temporal Go SDK reports through a tally scope. The scope here prefixes
// nothing, sanitises names to Prometheus' alphabet, adds "_total" to
// counters and "_seconds" to timers (contrib/tally's naming scope), and
// reports timers as histograms in seconds, so that the names match what the
// Python SDK exports with durations_as_seconds: for example
// temporal_request_latency_seconds (a histogram), temporal_workflow_completed_total,
// temporal_activity_execution_latency_seconds and
// temporal_worker_task_slots_available (a gauge).
//
// The worker's own metrics:
//
//	retrieval_search_duration_seconds{mode, outcome}  histogram; mode bm25|vector|hybrid|unknown,
//	                                                  outcome ok|bad_request|internal|timeout
//	retrieval_errors_total{operation, kind}           counter; operation search|index|delete|stats|index_batch,
//	                                                  kind bad_request|internal|timeout
//	retrieval_index_documents{collection}             gauge, read from the index at scrape time
//	retrieval_index_bytes{collection}                 gauge, bytes of the collection on disk
//
// Collection names come from callers, so only the first MaxCollectionLabels
// collections (in name order) get their own series; the rest are summed
// under collection="_other".
package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Label values, the only ones the worker uses.
const (
	OutcomeOK           = "ok"
	KindBadRequest      = "bad_request"
	KindInternal        = "internal"
	KindTimeout         = "timeout"
	ModeUnknown         = "unknown"
	OtherCollection     = "_other"
	MaxCollectionLabels = 50
)

// searchBuckets cover a sub-millisecond BM25 lookup up to the 2 s deadline.
var searchBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5}

// temporalBuckets are the SDK's timer buckets, in seconds.
var temporalBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// CollectionSize is one collection's size, for the gauges.
type CollectionSize struct {
	Name      string
	Documents int
	Bytes     int64
}

// Metrics owns a Prometheus registry. A nil *Metrics records nothing, so
// tests need not build one.
type Metrics struct {
	reg            *prometheus.Registry
	searchDuration *prometheus.HistogramVec
	errors         *prometheus.CounterVec
}

// New returns a registry with the Go runtime and process collectors and the
// worker's metrics. sizes is called at every scrape for the gauges; nil
// means no collections.
func New(sizes func() []CollectionSize) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		searchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "retrieval_search_duration_seconds",
			Help:    "Time the search operation's handler took, by mode and outcome.",
			Buckets: searchBuckets,
		}, []string{"mode", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "retrieval_errors_total",
			Help: "Failed retrieval operations, by operation and kind (bad_request, internal, timeout).",
		}, []string{"operation", "kind"}),
	}
	if sizes == nil {
		sizes = func() []CollectionSize { return nil }
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.searchDuration,
		m.errors,
		&sizeCollector{sizes: sizes},
	)
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveSearch records one search.
func (m *Metrics) ObserveSearch(mode, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.searchDuration.WithLabelValues(mode, outcome).Observe(d.Seconds())
}

// Error counts a failed operation.
func (m *Metrics) Error(operation, kind string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(operation, kind).Inc()
}

// TemporalHandler returns the SDK metrics handler to put in client.Options,
// and a closer that flushes it. logger receives registration conflicts,
// which the tally reporter would otherwise turn into panics.
func (m *Metrics) TemporalHandler(logger *slog.Logger) (client.MetricsHandler, io.Closer) {
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              m.reg,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: temporalBuckets,
		OnRegisterError: func(err error) {
			logger.Warn("a Temporal SDK metric could not be registered", "error", err)
		},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer
}

type sizeCollector struct {
	sizes func() []CollectionSize
}

var (
	documentsDesc = prometheus.NewDesc("retrieval_index_documents", "Documents in the collection.", []string{"collection"}, nil)
	bytesDesc     = prometheus.NewDesc("retrieval_index_bytes", "Bytes of the collection's records on disk (snapshot and journal).", []string{"collection"}, nil)
)

func (c *sizeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- documentsDesc
	ch <- bytesDesc
}

func (c *sizeCollector) Collect(ch chan<- prometheus.Metric) {
	var other CollectionSize
	folded := false
	for i, s := range c.sizes() {
		// A collection that happens to be named "_other" is folded in too,
		// so that no series is reported twice.
		if i >= MaxCollectionLabels || s.Name == OtherCollection {
			other.Documents += s.Documents
			other.Bytes += s.Bytes
			folded = true
			continue
		}
		ch <- prometheus.MustNewConstMetric(documentsDesc, prometheus.GaugeValue, float64(s.Documents), s.Name)
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.GaugeValue, float64(s.Bytes), s.Name)
	}
	if folded {
		ch <- prometheus.MustNewConstMetric(documentsDesc, prometheus.GaugeValue, float64(other.Documents), OtherCollection)
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.GaugeValue, float64(other.Bytes), OtherCollection)
	}
}
