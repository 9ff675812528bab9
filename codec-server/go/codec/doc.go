// Package codec is the Go implementation of the payload encryption codec specified in
// codec-server/SPEC.md: AES-256-GCM with the key id in payload metadata, optional zlib
// compression inside the ciphertext, key rings with a per-namespace active key, and key
// sources for files, mounted Kubernetes Secrets and environment variables.
//
// It is byte-compatible with the Python library in codec-server/python; both are tested
// against codec-server/testdata/vectors.json.
package codec
