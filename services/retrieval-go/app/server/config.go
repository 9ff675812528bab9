package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/worker"

	"github.com/durable-agents/reference/codec-server/go/codec"
	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/metrics"
	"github.com/durable-agents/reference/services/retrieval-go/app/retrieval"
)

// Defaults for settings not given by flag or environment variable.
const (
	DefaultHTTPAddr = "127.0.0.1:8401"
	// DefaultDataDir is relative to the working directory, like the dev
	// stack's other state under .data/.
	DefaultDataDir = ".data/retrieval"
	// SeedCollection is the collection the seed documents are loaded into.
	SeedCollection = "kb"
)

// Config is everything Run needs.
type Config struct {
	// Client holds the Temporal connection settings, loaded the way every
	// Temporal SDK and the CLI load them: TEMPORAL_* environment variables
	// over an optional TOML profile.
	Client client.Options
	// TaskQueue is the queue the Nexus endpoint "retrieval" targets.
	TaskQueue string
	// HTTPAddr is where /healthz, /readyz and /metrics are served.
	HTTPAddr string
	// Backend is where the index lives: backend.Embedded (DataDir) or
	// backend.Postgres (DatabaseURL).
	Backend string
	// DataDir holds the embedded index's snapshot and journal.
	DataDir string
	// DatabaseURL is the PostgreSQL backend's libpq URL; PG* environment
	// variables fill in what it leaves out. It may hold a password: never
	// log it.
	DatabaseURL string
	// SeedDir, if set, is a directory of *.md files indexed into
	// SeedCollection at start-up.
	SeedDir string
	// Analyzer chooses stop words and stemming; see index.AnalyzerConfig.
	Analyzer index.AnalyzerConfig
	// LogLevel and LogFormat ("text" or "json") shape the logs on stderr.
	LogLevel  slog.Level
	LogFormat string
	// PayloadEncryption is false only when PAYLOAD_ENCRYPTION=off.
	PayloadEncryption bool
	// KeyRing is the payload key ring, nil when encryption is off.
	KeyRing *codec.KeyRing
	// MetricLabels are put on every metric series (see metrics.ConstantLabels).
	MetricLabels map[string]string
	// Deployment is the Worker Deployment Versioning version of the worker
	// (TEMPORAL_DEPLOYMENT_NAME and TEMPORAL_WORKER_BUILD_ID); zero means
	// unversioned.
	Deployment worker.DeploymentOptions
}

type setting struct {
	flag, env, def, usage string
	dst                   *string
}

func settings(c *Config, logLevel *string) []setting {
	return []setting{
		{"task-queue", "RETRIEVAL_TASK_QUEUE", retrieval.DefaultTaskQueue, "Temporal task queue to poll", &c.TaskQueue},
		{"http-addr", "RETRIEVAL_HTTP_ADDR", DefaultHTTPAddr, "address for the /healthz, /readyz and /metrics endpoints", &c.HTTPAddr},
		{"backend", "RETRIEVAL_BACKEND", backend.Embedded, "where the index lives: embedded (this process, RETRIEVAL_DATA_DIR; one replica) or postgres (RETRIEVAL_DATABASE_URL; any number of replicas)", &c.Backend},
		{"database-url", "RETRIEVAL_DATABASE_URL", "", "PostgreSQL URL for the postgres backend (postgresql://user@host:5432/db?pool_max_conns=8); PG* variables and PGPASSWORD fill in the rest", &c.DatabaseURL},
		{"data-dir", "RETRIEVAL_DATA_DIR", DefaultDataDir, "directory of the index's snapshot and journal (created if missing; one worker per directory)", &c.DataDir},
		{"seed-dir", "RETRIEVAL_SEED_DIR", "", "directory of *.md files to index into collection \"" + SeedCollection + "\" at start-up (none if empty)", &c.SeedDir},
		{"stop-words", "RETRIEVAL_STOP_WORDS", index.StopWordsExtended, "stop words to drop: extended (a long English list that keeps negations), lucene (Lucene's 33 words) or none", &c.Analyzer.StopWords},
		{"stemmer", "RETRIEVAL_STEMMER", index.StemmerPorter2, "stemmer: porter2 (Snowball English) or none", &c.Analyzer.Stemmer},
		{"log-level", "RETRIEVAL_LOG_LEVEL", "info", "log level: debug, info, warn or error", logLevel},
		{"log-format", "RETRIEVAL_LOG_FORMAT", "text", "log format on stderr: text or json", &c.LogFormat},
	}
}

// LoadConfig builds the configuration from command-line arguments (without
// the program name) and the environment; a flag beats its environment
// variable, which beats the default. It returns flag.ErrHelp if help was
// asked for.
func LoadConfig(args []string, env envconfig.EnvLookup) (Config, error) {
	return loadConfig(args, env, true)
}

// LoadMigrateConfig is LoadConfig for the migrate command, which needs the
// backend's settings only: no Temporal connection, no payload keys.
func LoadMigrateConfig(args []string, env envconfig.EnvLookup) (Config, error) {
	return loadConfig(args, env, false)
}

func loadConfig(args []string, env envconfig.EnvLookup, temporal bool) (Config, error) {
	if env == nil {
		env = envconfig.EnvLookupOS
	}
	var cfg Config
	var logLevel string
	fs := newFlagSet(&cfg, &logLevel, env)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w (run with --help for usage)", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (run with --help for usage)", fs.Arg(0))
	}
	if strings.TrimSpace(cfg.TaskQueue) == "" {
		return Config{}, errors.New("the task queue must not be empty; set RETRIEVAL_TASK_QUEUE or --task-queue")
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return Config{}, fmt.Errorf("log level %q is not one of debug, info, warn, error", logLevel)
	}
	switch cfg.Backend {
	case backend.Embedded:
	case backend.Postgres:
		if cfg.SeedDir != "" {
			return Config{}, errors.New("seed documents are for the embedded backend only; unset RETRIEVAL_SEED_DIR or use RETRIEVAL_BACKEND=embedded")
		}
	default:
		return Config{}, fmt.Errorf("backend %q is not embedded or postgres; set RETRIEVAL_BACKEND", cfg.Backend)
	}
	if strings.TrimSpace(cfg.DataDir) == "" {
		return Config{}, errors.New("the data directory must not be empty; set RETRIEVAL_DATA_DIR or --data-dir")
	}
	if _, err := index.NewAnalyzer(cfg.Analyzer); err != nil {
		return Config{}, err
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return Config{}, fmt.Errorf("log format %q is not text or json", cfg.LogFormat)
	}
	if !temporal {
		return cfg, nil
	}

	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{EnvLookup: env})
	if err != nil {
		return Config{}, fmt.Errorf("load Temporal client settings (TEMPORAL_* variables, config file): %w", err)
	}
	if opts.HostPort == "" {
		opts.HostPort = client.DefaultHostPort
	}
	// The SDK would fall back to "default"; this worker belongs in the
	// namespace its Nexus endpoint targets.
	if opts.Namespace == "" {
		opts.Namespace = retrieval.DefaultNamespace
	}
	if cfg.KeyRing, err = applyPayloadEncryption(&opts, env); err != nil {
		return Config{}, err
	}
	cfg.PayloadEncryption = cfg.KeyRing != nil
	cfg.MetricLabels = metrics.ConstantLabels(env.LookupEnv)
	if cfg.Deployment, err = loadDeployment(env); err != nil {
		return Config{}, err
	}
	cfg.Client = opts
	return cfg, nil
}

// PrintUsage writes the command-line help to w.
func PrintUsage(w io.Writer, program string) {
	var cfg Config
	var logLevel string
	fs := newFlagSet(&cfg, &logLevel, emptyEnv{})
	fmt.Fprintf(w, "Usage: %s [migrate] [flags]\n\nServes the %q Nexus service on a Temporal task queue; with migrate, applies the\nPostgreSQL backend's schema (idempotent) and exits.\n\nFlags (each can also be set by the environment variable shown):\n", program, retrieval.ServiceName)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nThe Temporal connection comes from TEMPORAL_ADDRESS (default %s), TEMPORAL_NAMESPACE\n(default %s), TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE.\n",
		client.DefaultHostPort, retrieval.DefaultNamespace)
}

func newFlagSet(cfg *Config, logLevel *string, env envconfig.EnvLookup) *flag.FlagSet {
	fs := flag.NewFlagSet("retrieval-worker", flag.ContinueOnError)
	// Errors are returned and reported by the caller as one line; help is
	// printed by PrintUsage.
	fs.SetOutput(io.Discard)
	for _, s := range settings(cfg, logLevel) {
		def := s.def
		if v, ok := env.LookupEnv(s.env); ok {
			def = v
		}
		fs.StringVar(s.dst, s.flag, def, fmt.Sprintf("%s (%s)", s.usage, s.env))
	}
	return fs
}

type emptyEnv struct{}

func (emptyEnv) Environ() []string               { return nil }
func (emptyEnv) LookupEnv(string) (string, bool) { return "", false }
