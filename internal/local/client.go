package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

// ReadEndpoints reads the endpoints file a running clima dev wrote in its
// state folder.
func ReadEndpoints(stateDir string) (Endpoints, error) {
	var e Endpoints
	data, err := os.ReadFile(filepath.Join(stateDir, EndpointsFile))
	if err == nil {
		err = json.Unmarshal(data, &e)
	}
	if err != nil {
		return e, fmt.Errorf("no running clima dev in %s (start it with make run): %w", stateDir, err)
	}
	return e, nil
}

// FetchStatus reads a running clima dev's GET /status.
func FetchStatus(ctx context.Context, url string) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("reading clima dev's status: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("reading clima dev's status: %w", err)
	}
	return st, nil
}
