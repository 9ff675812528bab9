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
//	codec_payloads_total{operation, key_id, outcome}  counter; the payload codec's, named as in Python
//	codec_payload_bytes_total{operation, key_id}      counter
//	codec_failures_total{operation, key_id, reason}   counter
//	nexus_handler_operations_total, nexus_handler_operation_latency_seconds: see nexus.go
//
// With WithConstantLabels (build_id and deployment_name from TEMPORAL_WORKER_BUILD_ID and
// TEMPORAL_DEPLOYMENT_NAME, see ConstantLabels) every series carries the worker's version, as
// the Python workers' do. The catalogue of every name is ops/metrics/catalogue.yaml.
//
// Collection names come from callers, so only the first MaxCollectionLabels
// collections (in name order) get their own series; the rest are summed
// under collection="_other".
package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/durable-agents/reference/codec-server/go/codec"
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
	registerer     prometheus.Registerer // reg, adding the constant labels
	searchDuration *prometheus.HistogramVec
	errors         *prometheus.CounterVec
	codecPayloads  *prometheus.CounterVec
	codecBytes     *prometheus.CounterVec
	codecFailures  *prometheus.CounterVec
	nexusCalls     *prometheus.CounterVec
	nexusLatency   *prometheus.HistogramVec
}

// Option configures New.
type Option func(*Metrics)

// WithConstantLabels adds labels to every series of the process (SDK metrics included).
func WithConstantLabels(labels map[string]string) Option {
	return func(m *Metrics) {
		if len(labels) > 0 {
			m.registerer = prometheus.WrapRegistererWith(labels, m.reg)
		}
	}
}

// ConstantLabelEnv maps each constant label to the environment variable that sets it: the
// Worker Deployment Versioning settings, so error rates can be split by version.
var ConstantLabelEnv = map[string]string{
	"build_id":        "TEMPORAL_WORKER_BUILD_ID",
	"deployment_name": "TEMPORAL_DEPLOYMENT_NAME",
}

// ConstantLabels reads the constant labels from the environment; unset or empty ones are left out.
func ConstantLabels(lookup func(string) (string, bool)) map[string]string {
	out := map[string]string{}
	for label, env := range ConstantLabelEnv {
		if v, ok := lookup(env); ok && strings.TrimSpace(v) != "" {
			out[label] = strings.TrimSpace(v)
		}
	}
	return out
}

// New returns a registry with the Go runtime and process collectors and the
// worker's metrics. sizes is called at every scrape for the gauges; nil
// means no collections.
func New(sizes func() []CollectionSize, opts ...Option) *Metrics {
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
		codecPayloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: codec.MetricPayloads + "_total",
			Help: "Payloads encrypted or decrypted, by outcome.",
		}, []string{"operation", "key_id", "outcome"}),
		codecBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: codec.MetricBytes + "_total",
			Help: "Ciphertext bytes produced or opened.",
		}, []string{"operation", "key_id"}),
		codecFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: codec.MetricFailures + "_total",
			Help: "Payloads the codec could not process, by reason.",
		}, []string{"operation", "key_id", "reason"}),
	}
	m.nexusCalls, m.nexusLatency = newNexusVecs()
	m.registerer = m.reg
	for _, opt := range opts {
		opt(m)
	}
	if sizes == nil {
		sizes = func() []CollectionSize { return nil }
	}
	m.registerer.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.searchDuration,
		m.errors,
		m.codecPayloads,
		m.codecBytes,
		m.codecFailures,
		m.nexusCalls,
		m.nexusLatency,
		&sizeCollector{sizes: sizes},
	)
	return m
}

// CodecObserver reports the payload codec's work to the registry (codec.WithObserver).
func (m *Metrics) CodecObserver() codec.Observer { return codecObserver{m} }

type codecObserver struct{ m *Metrics }

func (o codecObserver) Succeeded(operation, keyID string, size int) {
	o.m.codecPayloads.WithLabelValues(operation, keyID, codec.OutcomeOK).Inc()
	o.m.codecBytes.WithLabelValues(operation, keyID).Add(float64(size))
}

func (o codecObserver) Failed(operation, keyID, reason string) {
	o.m.codecPayloads.WithLabelValues(operation, keyID, codec.OutcomeError).Inc()
	o.m.codecFailures.WithLabelValues(operation, keyID, reason).Inc()
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
		Registerer:              m.registerer,
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
		// tally's own bookkeeping series (tally_internal_*) mean nothing to an operator and
		// have no counterpart in the Python workers.
		OmitCardinalityMetrics: true,
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
