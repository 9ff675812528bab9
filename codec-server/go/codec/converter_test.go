package codec

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

func TestDataConverter(t *testing.T) {
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	dc, err := NewDataConverter(ring, "agents")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]string{"card": "4111 1111 1111 1111"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata[MetadataEncoding]) != EncodingEncrypted || bytes.Contains(p.Data, []byte("4111")) {
		t.Fatalf("payload is not encrypted: %v", p)
	}
	var out map[string]string
	if err := dc.FromPayload(p, &out); err != nil || out["card"] != in["card"] {
		t.Fatalf("FromPayload = %v, %v", out, err)
	}

	if _, err := NewDataConverter(mustRing(t, map[string]string{"business": "k1"}, "k1"), "agents"); !errors.Is(err, ErrNoActiveKey) {
		t.Fatalf("NewDataConverter without an active key: err = %v, want ErrNoActiveKey", err)
	}
}

// TestFailureConverterEncryptsMessages: failure messages and stack traces leave the process only
// inside an encrypted payload (SPEC §6), and come back intact.
func TestFailureConverterEncryptsMessages(t *testing.T) {
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	opts, err := ClientOptions(ring, "agents")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Namespace != "agents" || opts.DataConverter == nil || opts.FailureConverter == nil {
		t.Fatalf("ClientOptions = %+v", opts)
	}
	const secret = "refund for card 4111 failed"
	cause := temporal.NewApplicationError(secret, "RefundError", "detail 4111")
	f := opts.FailureConverter.ErrorToFailure(cause)
	if f.Message != "Encoded failure" || f.StackTrace != "" {
		t.Errorf("failure message/stack not moved out: %q / %q", f.Message, f.StackTrace)
	}
	ea := f.GetEncodedAttributes()
	if string(ea.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
		t.Fatalf("encoded attributes are not encrypted: %v", ea)
	}
	if bytes.Contains(ea.Data, []byte("4111")) {
		t.Fatal("encoded attributes contain the message in clear")
	}
	details := f.GetApplicationFailureInfo().GetDetails().GetPayloads()
	if len(details) != 1 || string(details[0].Metadata[MetadataEncoding]) != EncodingEncrypted {
		t.Fatalf("failure details are not encrypted: %v", details)
	}
	back := opts.FailureConverter.FailureToError(f)
	var app *temporal.ApplicationError
	if !errors.As(back, &app) || app.Message() != secret || app.Type() != "RefundError" {
		t.Fatalf("FailureToError = %v", back)
	}
	var detail string
	if err := app.Details(&detail); err != nil || detail != "detail 4111" {
		t.Fatalf("details = %q, %v", detail, err)
	}
}

func TestApply(t *testing.T) {
	ring := mustRing(t, map[string]string{"default": "k1"}, "k1")
	opts := client.Options{HostPort: "localhost:7233"}
	if err := Apply(&opts, ring); err != nil {
		t.Fatalf("Apply with empty Namespace (SDK default %q): %v", client.DefaultNamespace, err)
	}
	if opts.HostPort != "localhost:7233" || opts.DataConverter == nil || opts.FailureConverter == nil {
		t.Fatalf("Apply = %+v", opts)
	}
	opts = client.Options{Namespace: "agents"}
	if err := Apply(&opts, ring); err == nil || !strings.Contains(err.Error(), `namespace "agents"`) {
		t.Fatalf("Apply for a namespace without key: err = %v", err)
	}
	if opts.DataConverter != nil {
		t.Fatal("Apply changed options on error")
	}
}
