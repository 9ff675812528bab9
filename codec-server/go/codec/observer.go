package codec

import "errors"

// Metric names and label values every observer exports, the same as the Python library's
// (payload_codec.observe), so one dashboard covers both languages.
const (
	MetricPayloads = "codec_payloads"
	MetricBytes    = "codec_payload_bytes"
	MetricFailures = "codec_failures"

	OperationEncode = "encode"
	OperationDecode = "decode"
	OutcomeOK       = "ok"
	OutcomeError    = "error"

	// UnknownKeyID labels a payload naming a key id the ring does not hold: ids come from the
	// wire, so reporting them verbatim would let a forger mint metric series.
	UnknownKeyID = "unknown"
	// NoKeyID labels a payload (or an encode) without a key id.
	NoKeyID = "none"
)

// Observer is told about every payload the codec encrypts or decrypts and every one it cannot.
// It keeps the library free of any metrics backend: a worker wires it to its registry.
// Implementations must be safe for concurrent use.
type Observer interface {
	// Succeeded reports one payload done; size is its ciphertext length in bytes.
	Succeeded(operation, keyID string, size int)
	// Failed reports one payload refused; reason is FailureReason(err).
	Failed(operation, keyID, reason string)
}

// WithObserver reports every payload to o.
func WithObserver(o Observer) Option {
	return func(c *Codec) error {
		if o == nil {
			return errors.New("nil observer")
		}
		c.observer = o
		return nil
	}
}

// FailureReason is the bounded metrics label for an error the codec returned.
func FailureReason(err error) string {
	for _, r := range []struct {
		target error
		reason string
	}{
		{ErrNoActiveKey, "no_active_key"},
		{ErrMissingKeyID, "missing_key_id"},
		{ErrUnknownKey, "unknown_key"},
		{ErrCiphertextTooShort, "too_short"},
		{ErrDecryptionFailed, "auth_failed"},
		{ErrDecompressedTooLarge, "decompression_limit"},
	} {
		if errors.Is(err, r.target) {
			return r.reason
		}
	}
	return "malformed"
}
