package codec

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Sentinel errors. Every error the codec returns for a bad payload matches one of these with
// errors.Is; the typed errors below add the key id for errors.As.
var (
	// ErrMissingKeyID: an encrypted payload carries no encryption-key-id.
	ErrMissingKeyID = errors.New("missing encryption-key-id")
	// ErrUnknownKey: the payload names a key id the key ring does not hold.
	ErrUnknownKey = errors.New("unknown encryption key id")
	// ErrCiphertextTooShort: the data cannot hold a nonce and a GCM tag.
	ErrCiphertextTooShort = errors.New("ciphertext too short")
	// ErrDecryptionFailed: GCM authentication failed (wrong key or tampered data).
	ErrDecryptionFailed = errors.New("decryption failed")
	// ErrDecompressedTooLarge: a compressed payload inflates beyond the configured limit.
	ErrDecompressedTooLarge = errors.New("decompressed payload exceeds limit")
	// ErrMalformedPayload: the plaintext is not a valid Payload or not valid zlib.
	ErrMalformedPayload = errors.New("malformed payload")
	// ErrNoActiveKey: the key ring has no active key for the namespace (nor a "*" default).
	ErrNoActiveKey = errors.New("no active encryption key")
	// ErrInvalidKeyRing: a key ring document, directory or key is invalid.
	ErrInvalidKeyRing = errors.New("invalid key ring")
)

// UnknownKeyError reports a key id that is not in the key ring.
type UnknownKeyError struct {
	KeyID string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("unknown encryption key id %s", quoteID(e.KeyID))
}

func (e *UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// DecryptionError reports a GCM authentication failure for the named key.
type DecryptionError struct {
	KeyID string
}

func (e *DecryptionError) Error() string {
	return fmt.Sprintf("decryption failed for key id %s (wrong key or tampered data)", quoteID(e.KeyID))
}

func (e *DecryptionError) Is(target error) bool { return target == ErrDecryptionFailed }

// NoActiveKeyError reports a namespace the key ring cannot encrypt for.
type NoActiveKeyError struct {
	Namespace string
}

func (e *NoActiveKeyError) Error() string {
	return fmt.Sprintf("no active encryption key for namespace %q: add it (or \"*\") to the key ring's active map", e.Namespace)
}

func (e *NoActiveKeyError) Is(target error) bool { return target == ErrNoActiveKey }

// maxQuotedID bounds how much of an attacker-supplied key id ends up in an error message.
const maxQuotedID = 80

// quoteID quotes a key id for an error message. Ids are public, but an operator who swaps ids
// and values in a key ring document would otherwise see a key echoed in an error, so anything
// that looks like key material (base64 or hex of 32 bytes) is redacted.
func quoteID(id string) string {
	if looksLikeKeyMaterial(id) {
		return "<redacted: looks like key material>"
	}
	if len(id) > maxQuotedID {
		return fmt.Sprintf("%q...", id[:maxQuotedID])
	}
	return fmt.Sprintf("%q", id)
}

func looksLikeKeyMaterial(s string) bool {
	switch len(s) {
	case 43, 44:
		for _, enc := range []*base64.Encoding{
			base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
		} {
			if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
				return true
			}
		}
	case 64:
		if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
			return true
		}
	}
	return false
}
