package testenv

import "github.com/clima-dev/clima/internal/config"

// Env is a function's environment of exactly these variables.
func Env(vars map[string]string) *config.Env {
	return config.New(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}
