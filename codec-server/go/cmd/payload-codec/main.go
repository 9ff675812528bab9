// Command payload-codec encodes or decodes Temporal payloads with the encryption codec of
// codec-server/SPEC.md. It reads the codec server's JSON body on stdin,
//
//	{"payloads":[{"metadata":{"encoding":"<base64>"},"data":"<base64>"}]}
//
// and writes the same shape on stdout. Keys come from CODEC_KEYRING_FILE, CODEC_KEYRING_DIR
// or CODEC_KEYRING (SPEC §5).
//
//	payload-codec encode [--namespace NS] [--compression-threshold N] < plain.json
//	payload-codec decode [--inflate-limit N] < encrypted.json
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/durable-agents/reference/codec-server/go/codec"
)

const usage = `usage: payload-codec encode [--namespace NS] [--compression-threshold N] < payloads.json
       payload-codec decode [--inflate-limit N] < payloads.json

Reads {"payloads":[{"metadata":{"k":"<base64>"},"data":"<base64>"}]} on stdin and writes the
same shape on stdout. Keys: set exactly one of CODEC_KEYRING_FILE, CODEC_KEYRING_DIR or
CODEC_KEYRING (see codec-server/SPEC.md §5).
`

// maxInput bounds stdin; the codec server accepts far less per request.
const maxInput = 512 << 20

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "encode" && args[0] != "decode") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("payload-codec "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defaultNS := os.Getenv("TEMPORAL_NAMESPACE")
	if defaultNS == "" {
		defaultNS = "default"
	}
	namespace := fs.String("namespace", defaultNS, "namespace whose active key encrypts (encode)")
	threshold := fs.Int("compression-threshold", -1, "compress payloads at least this large before encryption; 0 disables; default: the key ring's setting for the namespace, off when it has none (encode)")
	limit := fs.Int64("inflate-limit", codec.DefaultInflateLimit, "largest decompressed payload accepted, in bytes (decode)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "payload-codec: %v\n%s", err, usage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "payload-codec: unexpected argument %q\n%s", fs.Arg(0), usage)
		return 2
	}
	if err := process(cmd, *namespace, *threshold, *limit, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "payload-codec %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func process(cmd, namespace string, threshold int, limit int64, stdin io.Reader, stdout io.Writer) error {
	ring, err := codec.LoadKeyRingFromEnv(context.Background())
	if err != nil {
		return err
	}
	opts := []codec.Option{codec.WithInflateLimit(limit)}
	if threshold >= 0 {
		opts = append(opts, codec.WithCompressionThreshold(threshold))
	}
	c, err := codec.New(ring, namespace, opts...)
	if err != nil {
		return err
	}
	in, err := readPayloads(stdin)
	if err != nil {
		return err
	}
	var out []*commonpb.Payload
	if cmd == "encode" {
		out, err = c.Encode(in)
	} else {
		out, err = c.Decode(in)
	}
	if err != nil {
		return err
	}
	return writePayloads(stdout, out)
}

// jsonPayload is the proto3 JSON form of a Payload, limited to the fields the codec server
// exchanges. Values stay strings so that base64 errors can name the field without echoing it.
type jsonPayload struct {
	Metadata map[string]string `json:"metadata,omitempty"`
	Data     string            `json:"data,omitempty"`
}

type jsonBody struct {
	Payloads []jsonPayload `json:"payloads"`
}

func readPayloads(r io.Reader) ([]*commonpb.Payload, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	if len(raw) > maxInput {
		return nil, fmt.Errorf("stdin is larger than %d bytes", maxInput)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return nil, errors.New(`stdin is empty: expected {"payloads":[{"metadata":{...},"data":"<base64>"}]}`)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var body jsonBody
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf(`stdin is not {"payloads":[{"metadata":{...},"data":"<base64>"}]}: %s`, describeJSONError(err))
	}
	if dec.More() {
		return nil, errors.New("stdin has data after the JSON document")
	}
	if body.Payloads == nil {
		return nil, errors.New(`stdin has no "payloads" array`)
	}
	out := make([]*commonpb.Payload, len(body.Payloads))
	for i, jp := range body.Payloads {
		p := &commonpb.Payload{}
		if len(jp.Metadata) > 0 {
			p.Metadata = make(map[string][]byte, len(jp.Metadata))
		}
		for _, k := range slices.Sorted(maps.Keys(jp.Metadata)) {
			v, err := decodeBase64(jp.Metadata[k])
			if err != nil {
				return nil, fmt.Errorf("payloads[%d].metadata[%q] is not base64", i, k)
			}
			p.Metadata[k] = v
		}
		if p.Data, err = decodeBase64(jp.Data); err != nil {
			return nil, fmt.Errorf("payloads[%d].data is not base64", i)
		}
		out[i] = p
	}
	return out, nil
}

// decodeBase64 accepts what proto3 JSON parsers accept: standard or URL alphabet, padded or not.
func decodeBase64(s string) ([]byte, error) {
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	return enc.DecodeString(s)
}

func writePayloads(w io.Writer, payloads []*commonpb.Payload) error {
	body := jsonBody{Payloads: make([]jsonPayload, len(payloads))}
	for i, p := range payloads {
		jp := jsonPayload{Data: base64.StdEncoding.EncodeToString(p.GetData())}
		if md := p.GetMetadata(); len(md) > 0 {
			jp.Metadata = make(map[string]string, len(md))
			for k, v := range md {
				jp.Metadata[k] = base64.StdEncoding.EncodeToString(v)
			}
		}
		body.Payloads[i] = jp
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(body); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// describeJSONError reports where the JSON is wrong without quoting it: stdin may be plaintext.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "the document must be a JSON object"
		}
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "malformed JSON"
	}
}
