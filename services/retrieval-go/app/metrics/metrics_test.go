package metrics

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// The SDK's metric names come out as the Python SDK's do with
// durations_as_seconds: counters end in _total, timers are histograms in
// seconds ending in _seconds, gauges keep their names.
func TestTemporalSDKNames(t *testing.T) {
	m := New(nil)
	h, closer := m.TemporalHandler(slog.New(slog.DiscardHandler))
	h.WithTags(map[string]string{"namespace": "retrieval", "task_queue": "retrieval"}).Counter("temporal_workflow_completed").Inc(1)
	h.Timer("temporal_request_latency").Record(250 * time.Millisecond)
	h.Gauge("temporal_worker_task_slots_available").Update(3)
	closer.Close() // flushes the scope
	body := scrape(t, m)
	for _, want := range []string{
		`temporal_workflow_completed_total{namespace="retrieval",task_queue="retrieval"} 1`,
		`temporal_request_latency_seconds_bucket{le="0.25"} 1`,
		`temporal_request_latency_seconds_sum 0.25`,
		`temporal_worker_task_slots_available 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, grep(body, "temporal_"))
		}
	}
}

func TestWorkerMetrics(t *testing.T) {
	sizes := []CollectionSize{{Name: "kb", Documents: 4, Bytes: 1000}}
	for i := range MaxCollectionLabels + 1 {
		sizes = append(sizes, CollectionSize{Name: fmt.Sprintf("c%03d", i), Documents: 1, Bytes: 10})
	}
	m := New(func() []CollectionSize { return sizes })
	m.ObserveSearch("bm25", OutcomeOK, 3*time.Millisecond)
	m.Error("search", KindTimeout)
	body := scrape(t, m)
	for _, want := range []string{
		`retrieval_search_duration_seconds_bucket{mode="bm25",outcome="ok",le="0.005"} 1`,
		`retrieval_errors_total{kind="timeout",operation="search"} 1`,
		`retrieval_index_documents{collection="kb"} 4`,
		`retrieval_index_bytes{collection="kb"} 1000`,
		// 51 collections beyond "kb": the first 49 get series, 2 fold into _other.
		`retrieval_index_documents{collection="_other"} 2`,
		`retrieval_index_bytes{collection="_other"} 20`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, grep(body, "retrieval_"))
		}
	}
	if n := strings.Count(body, "retrieval_index_documents{"); n != MaxCollectionLabels+1 {
		t.Errorf("%d collection series, want %d", n, MaxCollectionLabels+1)
	}
	var nilMetrics *Metrics
	nilMetrics.ObserveSearch("bm25", OutcomeOK, time.Second) // must not panic
	nilMetrics.Error("search", KindInternal)
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Codec metrics carry the Python names, and the constant labels reach every series, the
// SDK's included, so an error rate can be split by worker version.
func TestCodecMetricsAndConstantLabels(t *testing.T) {
	labels := ConstantLabels(func(name string) (string, bool) {
		return map[string]string{"TEMPORAL_WORKER_BUILD_ID": " b7 ", "TEMPORAL_DEPLOYMENT_NAME": ""}[name], true
	})
	if len(labels) != 1 || labels["build_id"] != "b7" {
		t.Fatalf("ConstantLabels = %v, want only build_id=b7", labels)
	}
	m := New(nil, WithConstantLabels(labels))
	o := m.CodecObserver()
	o.Succeeded("encode", "k1", 100)
	o.Failed("decode", "unknown", "unknown_key")
	h, closer := m.TemporalHandler(slog.New(slog.DiscardHandler))
	h.Counter("temporal_workflow_completed").Inc(1)
	closer.Close()
	body := scrape(t, m)
	for _, want := range []string{
		`codec_payloads_total{build_id="b7",key_id="k1",operation="encode",outcome="ok"} 1`,
		`codec_payload_bytes_total{build_id="b7",key_id="k1",operation="encode"} 100`,
		`codec_payloads_total{build_id="b7",key_id="unknown",operation="decode",outcome="error"} 1`,
		`codec_failures_total{build_id="b7",key_id="unknown",operation="decode",reason="unknown_key"} 1`,
		`temporal_workflow_completed_total{build_id="b7"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q:\n%s", want, grep(body, "codec_")+"\n"+grep(body, "temporal_"))
		}
	}
	if strings.Contains(body, "\ngo_goroutines ") {
		t.Error("a runtime series lacks the constant labels")
	}
}
