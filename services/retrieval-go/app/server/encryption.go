package server

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/durable-agents/reference/codec-server/go/codec"
)

// EnvPayloadEncryption turns payload encryption off when set to "off". It
// exists for local experiments only: with it off, the Temporal server stores
// search queries and documents in plain text.
const EnvPayloadEncryption = "PAYLOAD_ENCRYPTION"

// applyPayloadEncryption installs the encrypting data converter and failure
// converter (codec-server/SPEC.md) on opts, with keys from the key source the
// environment names (CODEC_KEYRING_FILE, CODEC_KEYRING_DIR or CODEC_KEYRING).
// It returns the key ring, nil when encryption is off.
func applyPayloadEncryption(opts *client.Options, env envconfig.EnvLookup) (*codec.KeyRing, error) {
	if v, _ := env.LookupEnv(EnvPayloadEncryption); v == "off" {
		return nil, nil
	}
	ring, err := codec.LoadKeyRingFromEnv(context.Background())
	if err != nil {
		return nil, fmt.Errorf("payload encryption: %w (set %s=off to run without it, never in production)", err, EnvPayloadEncryption)
	}
	if err := codec.Apply(opts, ring); err != nil {
		return nil, fmt.Errorf("payload encryption: %w", err)
	}
	return ring, nil
}

// observePayloadEncryption installs the converters again with the codec reporting to
// observer: the metrics registry exists only once the worker runs, after LoadConfig.
func observePayloadEncryption(opts *client.Options, ring *codec.KeyRing, observer codec.Observer) error {
	if ring == nil {
		return nil
	}
	if err := codec.Apply(opts, ring, codec.WithObserver(observer)); err != nil {
		return fmt.Errorf("payload encryption: %w", err)
	}
	return nil
}
