package metrics

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporalnexus"
)

// Handler-side Nexus metrics per service and operation. The Python workers record the same
// names with the same labels (workerkit.nexus_metrics), so one panel covers both languages:
//
//	nexus_handler_operations_total{nexus_service, nexus_operation, task_queue, method, outcome}  counter
//	nexus_handler_operation_latency_seconds{nexus_service, nexus_operation, task_queue, method}  histogram
//
// method is start or cancel; the latency runs until the handler answered (for a workflow-run
// operation, until its workflow was started). The SDK's own temporal_nexus_task_* series say
// much the same in Go, but the Python SDK's carry no operation label, and the Go SDK's add
// labels the Python ones lack; these two read the same in both languages.
const (
	NexusHandlerOperations = "nexus_handler_operations_total"
	NexusHandlerLatency    = "nexus_handler_operation_latency_seconds"

	OutcomeInternal     = "internal"
	OutcomeTaskCanceled = "task_canceled"
)

var nexusLabels = []string{"nexus_service", "nexus_operation", "task_queue", "method"}

func newNexusVecs() (*prometheus.CounterVec, *prometheus.HistogramVec) {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NexusHandlerOperations,
			Help: "Nexus handler calls, by method and outcome.",
		}, append(append([]string{}, nexusLabels...), "outcome")),
		prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NexusHandlerLatency,
			Help:    "Time a Nexus handler took to answer.",
			Buckets: temporalBuckets,
		}, nexusLabels)
}

// NexusOutcome names the outcome of a handler call: ok, operation_failed, operation_canceled,
// a handler error type in lower case (bad_request, not_found, internal ...), task_canceled when
// the task's context ended, or internal for any other error (as the SDK maps it).
func NexusOutcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	if he, ok := errors.AsType[*nexus.HandlerError](err); ok {
		return strings.ToLower(string(he.Type))
	}
	if oe, ok := errors.AsType[*nexus.OperationError](err); ok {
		return "operation_" + strings.ToLower(string(oe.State))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return OutcomeTaskCanceled
	}
	return OutcomeInternal
}

// NexusInterceptor records every Nexus handler call of the worker it is given to
// (worker.Options.Interceptors).
func (m *Metrics) NexusInterceptor() interceptor.WorkerInterceptor {
	return &nexusInterceptor{m: m}
}

type nexusInterceptor struct {
	interceptor.WorkerInterceptorBase
	m *Metrics
}

func (i *nexusInterceptor) InterceptNexusOperation(
	_ context.Context, next interceptor.NexusOperationInboundInterceptor,
) interceptor.NexusOperationInboundInterceptor {
	return &nexusRecording{NexusOperationInboundInterceptorBase: interceptor.NexusOperationInboundInterceptorBase{Next: next}, m: i.m}
}

type nexusRecording struct {
	interceptor.NexusOperationInboundInterceptorBase
	m *Metrics
}

func (r *nexusRecording) StartOperation(
	ctx context.Context, input interceptor.NexusStartOperationInput,
) (nexus.HandlerStartOperationResult[any], error) {
	started := time.Now()
	result, err := r.Next.StartOperation(ctx, input)
	r.m.observeNexusCall(ctx, "start", time.Since(started), err)
	return result, err
}

func (r *nexusRecording) CancelOperation(ctx context.Context, input interceptor.NexusCancelOperationInput) error {
	started := time.Now()
	err := r.Next.CancelOperation(ctx, input)
	r.m.observeNexusCall(ctx, "cancel", time.Since(started), err)
	return err
}

func (m *Metrics) observeNexusCall(ctx context.Context, method string, d time.Duration, err error) {
	if m == nil {
		return
	}
	info := nexus.ExtractHandlerInfo(ctx)
	labels := []string{info.Service, info.Operation, temporalnexus.GetOperationInfo(ctx).TaskQueue, method}
	m.nexusCalls.WithLabelValues(append(labels, NexusOutcome(err))...).Inc()
	m.nexusLatency.WithLabelValues(labels...).Observe(d.Seconds())
}
