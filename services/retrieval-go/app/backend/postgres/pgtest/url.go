package pgtest

import (
	"net"
	"net/url"
	"os"
	"strconv"

	"github.com/jackc/pgx/v5"
)

var lookupEnv = os.LookupEnv

// pgxURL writes a connection config back as a URL (TLS settings aside: the
// test server is on loopback without TLS).
func pgxURL(cfg *pgx.ConnConfig) string {
	u := url.URL{
		Scheme:   "postgresql",
		User:     url.UserPassword(cfg.User, cfg.Password),
		Host:     net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))),
		Path:     "/" + cfg.Database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}
