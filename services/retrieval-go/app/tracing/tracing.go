// Package tracing sets up OpenTelemetry tracing for the retrieval worker from
// the standard OTEL_* environment variables, and hands the Temporal client
// the SDK's tracing interceptor so that the worker's spans join the trace the
// caller started: the Python agent workflow's Nexus call carries a W3C
// traceparent in the Nexus request headers, and the interceptor starts the
// "RunStartNexusOperationHandler:retrieval/<operation>" span from it.
//
// Export is opt-in, as in the Python workers (workerkit.tracing): nothing is
// set up unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or OTEL_TRACES_EXPORTER=otlp.
// OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true switch it off. The
// OTLP exporters read the remaining settings (headers, timeout, TLS)
// themselves.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// DefaultServiceName is the service.name of the worker's spans unless
// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says
// otherwise.
const DefaultServiceName = "retrieval-worker"

// Protocols accepted in OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Settings is what the environment asks for.
type Settings struct {
	// Enabled is false when no OTLP trace export was asked for.
	Enabled bool
	// Protocol is ProtocolHTTP or ProtocolGRPC.
	Protocol string
}

// Tracing is the worker's tracing set-up. The zero value traces nothing.
type Tracing struct {
	provider    *sdktrace.TracerProvider
	interceptor interceptor.Interceptor
}

// ParseEnv reads the OTEL_* variables that decide whether and how traces are
// exported; getenv is os.Getenv outside tests. Unsupported values are an
// error naming the variable.
func ParseEnv(getenv func(string) string) (Settings, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Settings{}, nil
	}
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	switch exporter {
	case "none":
		return Settings{}, nil
	case "", "otlp":
	default:
		return Settings{}, fmt.Errorf("OTEL_TRACES_EXPORTER=%q is not supported; use otlp or none", exporter)
	}
	// The SDK's default exporter is OTLP to localhost, but an unset
	// environment must not make every dev stack process dial a collector
	// nobody runs: an endpoint or an explicit exporter turns export on.
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" && exporter == "" {
		return Settings{}, nil
	}
	protocol := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if protocol == "" {
		protocol = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	switch protocol {
	case "":
		protocol = ProtocolHTTP
	case ProtocolHTTP, ProtocolGRPC:
	default:
		return Settings{}, fmt.Errorf("OTLP protocol %q is not supported; set OTEL_EXPORTER_OTLP_PROTOCOL to %s or %s", protocol, ProtocolHTTP, ProtocolGRPC)
	}
	return Settings{Enabled: true, Protocol: protocol}, nil
}

// Setup configures tracing as the environment asks. With export enabled it
// installs the global tracer provider and W3C propagator (trace context and
// baggage, the Python SDK's default), so that spans started with otel.Tracer
// in handlers join the trace. It reads the process environment, as the OTLP
// exporters do.
func Setup(ctx context.Context) (*Tracing, error) {
	s, err := ParseEnv(os.Getenv)
	if err != nil || !s.Enabled {
		return &Tracing{}, err
	}
	var exporter sdktrace.SpanExporter
	if s.Protocol == ProtocolGRPC {
		exporter, err = otlptracegrpc.New(ctx)
	} else {
		exporter, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot set up OTLP trace export (check OTEL_EXPORTER_OTLP_* settings): %w", err)
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the default name.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(temporalotel.DefaultTextMapPropagator)
	icpt, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: provider.Tracer("temporal-sdk-go"),
		// A partner on an older tracing set-up must not fail requests.
		AllowInvalidParentSpans: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create the Temporal tracing interceptor: %w", err)
	}
	return &Tracing{provider: provider, interceptor: icpt}, nil
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t.provider != nil }

// Interceptors returns the client interceptors to add: none when tracing is
// off.
func (t *Tracing) Interceptors() []interceptor.ClientInterceptor {
	if t.interceptor == nil {
		return nil
	}
	return []interceptor.ClientInterceptor{t.interceptor}
}

// Shutdown exports the spans still buffered; call it after the worker has
// stopped so that the last requests' spans are not lost.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}
