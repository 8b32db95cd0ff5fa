package amocrm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// tokens is the content of the OAuth token file.
type tokens struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// readTokens loads the token file; a missing file is not an error (ok is false).
func readTokens(path string) (t tokens, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokens{}, false, nil
	}
	if err != nil {
		return tokens{}, false, fmt.Errorf("amocrm: read token file: %w", err)
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return tokens{}, false, fmt.Errorf("amocrm: token file %s is not valid JSON: %w", path, err)
	}
	if t.AccessToken == "" || t.RefreshToken == "" {
		return tokens{}, false, fmt.Errorf("amocrm: token file %s lacks access_token or refresh_token", path)
	}
	return t, true, nil
}

// writeTokens replaces the token file atomically: a crash leaves either the old or the new
// tokens, never a torn file, which matters because the old refresh token dies on refresh.
func writeTokens(path string, t tokens) (err error) {
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("amocrm: encode tokens: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("amocrm: write token file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("amocrm: write token file: %w", err)
	}
	if _, err = f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("amocrm: write token file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("amocrm: write token file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("amocrm: write token file: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("amocrm: write token file: %w", err)
	}
	// Make the rename itself durable; not every platform can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
