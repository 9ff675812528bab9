package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// ScratchDatabase creates a new database named prefix plus a random suffix
// on the server serverURL points at, for a test or a benchmark that must
// start from nothing, and migrates it if asked. It returns the database's
// URL and a function that drops it.
func ScratchDatabase(ctx context.Context, serverURL, prefix string, migrate bool) (string, func() error, error) {
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("cannot reach PostgreSQL: %s", connError(err))
	}
	defer admin.Close(ctx)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := pgx.Identifier{prefix + hex.EncodeToString(suffix[:])}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() error {
		c, err := pgx.Connect(context.WithoutCancel(ctx), serverURL)
		if err != nil {
			return err
		}
		defer c.Close(context.WithoutCancel(ctx))
		_, err = c.Exec(context.WithoutCancel(ctx), "DROP DATABASE "+name+" WITH (FORCE)")
		return err
	}
	cfg := admin.Config()
	u := url.URL{
		Scheme:   "postgresql",
		User:     url.UserPassword(cfg.User, cfg.Password),
		Host:     net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))),
		Path:     "/" + prefix + hex.EncodeToString(suffix[:]),
		RawQuery: "sslmode=disable",
	}
	dbURL := u.String()
	if !migrate {
		return dbURL, drop, nil
	}
	pool, err := Connect(ctx, dbURL)
	if err == nil {
		_, err = Migrate(ctx, pool)
		pool.Close()
	}
	if err != nil {
		_ = drop()
		return "", nil, err
	}
	return dbURL, drop, nil
}
