package codec

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// NewDataConverter returns the default data converter wrapped with an encrypting codec for
// namespace. Unlike New it fails when the ring cannot encrypt for namespace: a client or
// worker always encodes, and the error is better at startup than on the first workflow task.
func NewDataConverter(ring *KeyRing, namespace string, opts ...Option) (converter.DataConverter, error) {
	c, err := New(ring, namespace, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := ring.ActiveKey(namespace); err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c), nil
}

// NewFailureConverter returns a failure converter that moves failure messages and stack traces
// into an encoded attributes payload (SPEC §6). dc must be the encrypting data converter: the
// SDK encodes that payload with the failure converter's own data converter, so with the
// default one messages would be stored as plain JSON.
func NewFailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// Apply sets the encrypting DataConverter and FailureConverter on opts, for the namespace in
// opts.Namespace ("default" when empty, as the SDK does). It lets a worker adopt the codec in
// one line after loading its client options:
//
//	opts, err := envconfig.LoadDefaultClientOptions()
//	...
//	if err := codec.Apply(&opts, ring); err != nil { ... }
func Apply(opts *client.Options, ring *KeyRing, codecOpts ...Option) error {
	ns := opts.Namespace
	if ns == "" {
		ns = client.DefaultNamespace
	}
	dc, err := NewDataConverter(ring, ns, codecOpts...)
	if err != nil {
		return err
	}
	opts.DataConverter = dc
	opts.FailureConverter = NewFailureConverter(dc)
	return nil
}

// ClientOptions returns client options for namespace with the encrypting converters set.
func ClientOptions(ring *KeyRing, namespace string, codecOpts ...Option) (client.Options, error) {
	opts := client.Options{Namespace: namespace}
	if err := Apply(&opts, ring, codecOpts...); err != nil {
		return client.Options{}, err
	}
	return opts, nil
}
