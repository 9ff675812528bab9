package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres/pgtest"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

func TestRunStartupFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// A port that was free a moment ago and that nothing listens on, so a
	// dial to it is refused at once.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	busyDir := t.TempDir()
	holder, err := store.Open(busyDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	base := func(mod func(*Config)) Config {
		cfg, err := LoadConfig(nil, baseEnv("TEMPORAL_ADDRESS", refused))
		if err != nil {
			t.Fatal(err)
		}
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.SeedDir = "../../../../ops/demo/knowledge-base"
		cfg.DataDir = t.TempDir()
		mod(&cfg)
		return cfg
	}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"seed dir missing", base(func(c *Config) { c.SeedDir = "/no/such/kb" }), []string{"seed directory /no/such/kb does not exist"}},
		{"port taken", base(func(c *Config) { c.HTTPAddr = busy.Addr().String() }), []string{busy.Addr().String(), "already in use", "RETRIEVAL_HTTP_ADDR"}},
		{"bad listen address", base(func(c *Config) { c.HTTPAddr = "not-an-address" }), []string{"cannot serve health probes on not-an-address"}},
		{"temporal unreachable", base(func(*Config) {}), []string{"cannot reach Temporal at " + refused, "connection refused", "TEMPORAL_ADDRESS"}},
		{"data dir in use", base(func(c *Config) { c.DataDir = busyDir }), []string{"data directory " + busyDir + " is in use by another process", "RETRIEVAL_DATA_DIR"}},
		{"data dir not creatable", base(func(c *Config) { c.DataDir = "/proc/no/such/dir" }), []string{"create data directory /proc/no/such/dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var h Health
			err := run(ctx, tt.cfg, slog.New(slog.DiscardHandler), &h)
			if err == nil {
				t.Fatal("run succeeded")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines", msg)
			}
			if h.State() == StateReady {
				t.Error("health reports ready after a failed start")
			}
		})
	}
}

func TestRunStopsQuietlyWhenCancelledDuringStartup(t *testing.T) {
	cfg, err := LoadConfig(nil, baseEnv("TEMPORAL_ADDRESS", "127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("Run with a cancelled context = %v, want nil", err)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		format, want string
	}{
		{"json", `"msg":"hello"`},
		{"text", `msg=hello`},
	}
	for _, tt := range tests {
		var b strings.Builder
		NewLogger(&b, Config{LogFormat: tt.format, LogLevel: slog.LevelInfo}).Info("hello")
		NewLogger(&b, Config{LogFormat: tt.format, LogLevel: slog.LevelWarn}).Info("filtered")
		if !strings.Contains(b.String(), tt.want) || strings.Contains(b.String(), "filtered") {
			t.Errorf("%s logger wrote %q", tt.format, b.String())
		}
	}
}

// Seed documents survive a restart without being written again, and the
// /metrics endpoint serves the worker's metrics while Temporal is still
// being dialled.
func TestRunSeedsDurablyAndServesMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A Temporal address that accepts connections and never answers keeps
	// the worker dialling, with its HTTP server up.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg, err := LoadConfig(nil, baseEnv("TEMPORAL_ADDRESS", silent.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPAddr = addr
	cfg.SeedDir = "../../../../ops/demo/knowledge-base"
	cfg.DataDir = t.TempDir()

	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler), &Health{}) }()
		var body string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); strings.Contains(body, `retrieval_index_documents{collection="kb"}`) {
				break
			}
		}
		cancel()
		<-done
		if !strings.Contains(body, `retrieval_index_documents{collection="kb"}`) || !strings.Contains(body, "go_goroutines") {
			t.Fatalf("round %d: /metrics lacks the collection gauges:\n%.2000s", round, body)
		}
	}
	st, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, ok := st.Index().Get(SeedCollection, "refund-policy")
	if !ok || d.Version != 1 {
		t.Errorf("after two starts, refund-policy = %+v, %v; want version 1", d, ok)
	}
}

// TestRunPostgresStartupFailures: a worker with the postgres backend names
// what to fix when the database is unreachable or not migrated, and never
// shows the password of the URL.
func TestRunPostgresStartupFailures(t *testing.T) {
	unmigrated := pgtest.Database(t, false)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	for _, tt := range []struct {
		name, url string
		want      []string
	}{
		{"not migrated", unmigrated, []string{"the database is at version 0", "run retrieval-worker migrate"}},
		{"unreachable", "postgresql://retrieval:s3cret-pw@" + refused + "/retrieval?connect_timeout=2", []string{"cannot reach PostgreSQL", "RETRIEVAL_DATABASE_URL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(nil, baseEnv("RETRIEVAL_BACKEND", "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.HTTPAddr, cfg.DatabaseURL = "127.0.0.1:0", tt.url
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			err = run(ctx, cfg, slog.New(slog.DiscardHandler), &Health{})
			if err == nil {
				t.Fatal("run succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}
