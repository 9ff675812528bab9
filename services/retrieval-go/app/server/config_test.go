package server

import (
	"errors"
	"flag"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

type fakeEnv map[string]string

func (e fakeEnv) Environ() []string {
	var out []string
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func (e fakeEnv) LookupEnv(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// baseEnv keeps the tests away from any temporal.toml on the machine.
func baseEnv(kv ...string) fakeEnv {
	e := fakeEnv{
		"TEMPORAL_CONFIG_FILE": filepath.Join("testdata", "does-not-exist.toml"),
		EnvPayloadEncryption:   "off",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		e[kv[i]] = kv[i+1]
	}
	return e
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  fakeEnv
		want Config
	}{
		{
			name: "defaults",
			env:  baseEnv(),
			want: Config{TaskQueue: "retrieval", HTTPAddr: "127.0.0.1:8401", DataDir: ".data/retrieval", LogLevel: slog.LevelInfo, LogFormat: "text"},
		},
		{
			name: "environment",
			env: baseEnv("RETRIEVAL_TASK_QUEUE", "tq", "RETRIEVAL_HTTP_ADDR", ":9000", "RETRIEVAL_SEED_DIR", "/kb",
				"RETRIEVAL_LOG_LEVEL", "debug", "RETRIEVAL_LOG_FORMAT", "json", "RETRIEVAL_DATA_DIR", "/var/lib/retrieval"),
			want: Config{TaskQueue: "tq", HTTPAddr: ":9000", SeedDir: "/kb", DataDir: "/var/lib/retrieval", LogLevel: slog.LevelDebug, LogFormat: "json"},
		},
		{
			name: "flags beat environment",
			args: []string{"--seed-dir", "/flag-kb", "-task-queue=flag-tq", "--http-addr", "127.0.0.1:0", "--log-level", "WARN", "--data-dir", "/flag-data"},
			env:  baseEnv("RETRIEVAL_TASK_QUEUE", "env-tq", "RETRIEVAL_SEED_DIR", "/env-kb", "RETRIEVAL_DATA_DIR", "/env-data"),
			want: Config{TaskQueue: "flag-tq", HTTPAddr: "127.0.0.1:0", SeedDir: "/flag-kb", DataDir: "/flag-data", LogLevel: slog.LevelWarn, LogFormat: "text"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got.DataDir != tt.want.DataDir {
				t.Errorf("DataDir = %q, want %q", got.DataDir, tt.want.DataDir)
			}
			if got.TaskQueue != tt.want.TaskQueue || got.HTTPAddr != tt.want.HTTPAddr || got.SeedDir != tt.want.SeedDir ||
				got.LogLevel != tt.want.LogLevel || got.LogFormat != tt.want.LogFormat {
				t.Errorf("LoadConfig = task queue %q, http %q, seed %q, level %v, format %q; want %q, %q, %q, %v, %q",
					got.TaskQueue, got.HTTPAddr, got.SeedDir, got.LogLevel, got.LogFormat,
					tt.want.TaskQueue, tt.want.HTTPAddr, tt.want.SeedDir, tt.want.LogLevel, tt.want.LogFormat)
			}
			if client := got.Client; client.HostPort != "localhost:7233" || client.Namespace != "retrieval" {
				t.Errorf("client address %q namespace %q, want localhost:7233 and retrieval", client.HostPort, client.Namespace)
			}
		})
	}
}

func TestLoadConfigTemporalSettings(t *testing.T) {
	cfg, err := LoadConfig(nil, baseEnv("TEMPORAL_ADDRESS", "temporal:7233", "TEMPORAL_NAMESPACE", "prod-retrieval"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Client.HostPort != "temporal:7233" || cfg.Client.Namespace != "prod-retrieval" {
		t.Errorf("client address %q namespace %q, want the TEMPORAL_* values", cfg.Client.HostPort, cfg.Client.Namespace)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  fakeEnv
		want string
	}{
		{"unknown flag", []string{"--nope"}, baseEnv(), "flag provided but not defined: -nope (run with --help for usage)"},
		{"stray argument", []string{"extra"}, baseEnv(), `unexpected argument "extra"`},
		{"empty task queue", nil, baseEnv("RETRIEVAL_TASK_QUEUE", " "), "task queue must not be empty"},
		{"bad log level", []string{"--log-level", "loud"}, baseEnv(), `log level "loud"`},
		{"bad log format", nil, baseEnv("RETRIEVAL_LOG_FORMAT", "xml"), `log format "xml"`},
		{"empty data dir", []string{"--data-dir", ""}, baseEnv(), "data directory must not be empty"},
		{"unknown stop words", nil, baseEnv("RETRIEVAL_STOP_WORDS", "french"), `stop-word list "french"`},
		{"unknown stemmer", []string{"--stemmer", "lovins"}, baseEnv(), `stemmer "lovins"`},
		{"missing profile", nil, baseEnv("TEMPORAL_PROFILE", "nope"), "load Temporal client settings"},
		{"unknown backend", nil, baseEnv("RETRIEVAL_BACKEND", "sqlite"), `backend "sqlite" is not embedded or postgres`},
		{"seed with postgres", []string{"--backend", "postgres", "--seed-dir", "kb"}, baseEnv(), "seed documents are for the embedded backend only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := LoadConfig([]string{"-h"}, baseEnv()); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: error = %v, want flag.ErrHelp", err)
	}
}

func TestPrintUsageNamesEveryVariable(t *testing.T) {
	var b strings.Builder
	PrintUsage(&b, "retrieval-worker")
	for _, v := range []string{"RETRIEVAL_TASK_QUEUE", "RETRIEVAL_HTTP_ADDR", "RETRIEVAL_SEED_DIR", "RETRIEVAL_DATA_DIR", "RETRIEVAL_STOP_WORDS", "RETRIEVAL_STEMMER", "RETRIEVAL_LOG_LEVEL", "RETRIEVAL_LOG_FORMAT", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} {
		if !strings.Contains(b.String(), v) {
			t.Errorf("usage does not mention %s", v)
		}
	}
}

func TestLoadConfigPayloadEncryption(t *testing.T) {
	const ring = `{"keys": {"k1": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, "active": {"*": "k1"}}`
	t.Setenv("CODEC_KEYRING_FILE", "")
	t.Setenv("CODEC_KEYRING_DIR", "")

	t.Setenv("CODEC_KEYRING", ring)
	cfg, err := LoadConfig(nil, baseEnv(EnvPayloadEncryption, "on"))
	if err != nil {
		t.Fatalf("LoadConfig with a key ring: %v", err)
	}
	if !cfg.PayloadEncryption || cfg.Client.DataConverter == nil || cfg.Client.FailureConverter == nil {
		t.Fatalf("encryption on = %v, data converter %v, failure converter %v; want all set",
			cfg.PayloadEncryption, cfg.Client.DataConverter, cfg.Client.FailureConverter)
	}

	t.Setenv("CODEC_KEYRING", "")
	_, err = LoadConfig(nil, baseEnv(EnvPayloadEncryption, "on"))
	if err == nil || !strings.Contains(err.Error(), "payload encryption") || !strings.Contains(err.Error(), "PAYLOAD_ENCRYPTION=off") {
		t.Fatalf("LoadConfig without keys: err = %v; want a payload encryption error naming the opt-out", err)
	}
}

func TestLoadMigrateConfigNeedsNoTemporalSettings(t *testing.T) {
	// No key ring and a profile that does not exist: the worker refuses both, migrate needs neither.
	env := fakeEnv{"RETRIEVAL_BACKEND": "postgres", "RETRIEVAL_DATABASE_URL": "postgresql://r@db/r", "TEMPORAL_CONFIG_FILE": filepath.Join("testdata", "does-not-exist.toml")}
	cfg, err := LoadMigrateConfig(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backend != "postgres" || cfg.DatabaseURL != "postgresql://r@db/r" {
		t.Errorf("config %+v", cfg)
	}
	if _, err := LoadConfig(nil, env); err == nil {
		t.Error("the worker's LoadConfig accepted settings without a key ring")
	}
}
