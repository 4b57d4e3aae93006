package store

import (
	"time"

	"github.com/clima-dev/clima/internal/config"
)

// ConfigFromEnv reads a store's settings: STORE_URL and STORE_PASSWORD (from
// a Secret), with retention settings that default to a week of reports and
// two weeks of dedupe markers (longer than the brokers keep a message).
func ConfigFromEnv(env *config.Env, path string) Config {
	return Config{
		URL:          env.Required("STORE_URL"),
		Password:     env.Secret("STORE_PASSWORD", ""),
		Path:         path,
		Retention:    env.Duration("REPORT_RETENTION", 7*24*time.Hour),
		DedupeWindow: env.Duration("DEDUPE_WINDOW", 14*24*time.Hour),
		RecentMax:    env.Int("RECENT_MAX", 1000, 1, 1_000_000),
	}
}
