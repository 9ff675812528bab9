// Command temporal-ui serves the Temporal Web UI (github.com/temporalio/ui-server, whose module
// embeds the built UI) for a cluster whose frontend authorizes every call with a JWT.
//
// The stock ui-server sends a token only when it logs users in through OIDC. Without an identity
// provider, this build gives every call the UI makes to the frontend the UI's own token, read
// from TEMPORAL_UI_TOKEN_FILE at each call (so a renewed token applies without a restart); grant
// that token read access only. Everything else is the stock server and its configuration file
// (--root, --config, --env, as ui-server's own command takes them).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/labstack/echo/v4"
	"github.com/temporalio/ui-server/v2/plugins/fs_config_provider"
	"github.com/temporalio/ui-server/v2/server"
	"github.com/temporalio/ui-server/v2/server/api"
	"github.com/temporalio/ui-server/v2/server/headers"
	"github.com/temporalio/ui-server/v2/server/server_options"
	"google.golang.org/grpc/metadata"
)

// TokenFileEnv names the file holding the UI's JWT.
const TokenFileEnv = "TEMPORAL_UI_TOKEN_FILE"

func main() {
	root := flag.String("root", ".", "root directory of the configuration")
	configDir := flag.String("config", "config", "configuration directory, relative to --root")
	env := flag.String("env", "development", "configuration environment: the file <env>.yaml")
	flag.Parse()
	if err := run(filepath.Join(*root, *configDir), *env, os.Getenv(TokenFileEnv)); err != nil {
		fmt.Fprintf(os.Stderr, "temporal-ui: %v\n", err)
		os.Exit(1)
	}
}

func run(configDir, env, tokenFile string) error {
	provider := fs_config_provider.NewFSConfigProvider(configDir, env)
	cfg, err := provider.GetConfig()
	if err != nil {
		return fmt.Errorf("read the configuration in %s: %w", configDir, err)
	}
	middleware := []api.Middleware{headers.WithForwardHeaders(cfg.ForwardHeaders)}
	if tokenFile != "" {
		if _, err := readToken(tokenFile); err != nil {
			return err
		}
		middleware = append(middleware, withToken(tokenFile))
	}
	s := server.NewServer(
		server_options.WithConfigProvider(provider),
		server_options.WithAPIMiddleware(middleware),
	)
	defer s.Stop()
	if err := s.Start(); err != nil {
		return fmt.Errorf("start the UI server: %w", err)
	}
	return nil
}

func readToken(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the UI's token (%s): %w", TokenFileEnv, err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return "", fmt.Errorf("the UI's token file %s (%s) is empty", path, TokenFileEnv)
	}
	return token, nil
}

// withToken adds the UI's token to every call to the frontend.
func withToken(path string) api.Middleware {
	return func(echo.Context) runtime.ServeMuxOption {
		return runtime.WithMetadata(func(context.Context, *http.Request) metadata.MD {
			token, err := readToken(path)
			if err != nil {
				// The frontend then refuses the call, which the UI shows; the log says why.
				fmt.Fprintf(os.Stderr, "temporal-ui: %v\n", err)
				return nil
			}
			return metadata.Pairs("authorization", "Bearer "+token)
		})
	}
}
