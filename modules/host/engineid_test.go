package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/zap"
)

// testKeyJSON is a libtrust-style key.json (public part of a P-256 key);
// testKeyID is its key ID as computed by openssl, independently:
//
//	openssl ec -pubout -outform DER | openssl dgst -sha256 -binary |
//	head -c 30 | base32 | tr -d '=\n' | fold -w4 | paste -sd:
const (
	testKeyJSON = `{"crv":"P-256","kid":"TLJS:KDKS:VYJA:25BK:BHNP:D4ZI:4LXT:QTF2:R5NH:5QWD:D5SU:7PMJ","kty":"EC",` +
		`"x":"Q7RXhj8Nx1cQ3hqGE5Bs_G1v6MwSx_jdyNr0vZ3i69Y","y":"YjskcvLyjh9W1L07BlQo8Q3AD17vrDATOCnGxl7zRiM"}`
	testKeyID = "TLJS:KDKS:VYJA:25BK:BHNP:D4ZI:4LXT:QTF2:R5NH:5QWD:D5SU:7PMJ"
)

func TestLoadEngineID(t *testing.T) {
	tests := []struct {
		name       string
		giveKey    string // key.json content; "" for none
		giveIDFile string // existing engine-id; "" for none
		wantID     string // "" for a new UUID
		wantErr    string
	}{
		{name: "new engine"},
		{name: "existing engine ID kept", giveIDFile: "4f6b1a52-3c2e-4a37-9e4c-6f2a7f7e0b11\n", giveKey: testKeyJSON,
			wantID: "4f6b1a52-3c2e-4a37-9e4c-6f2a7f7e0b11"},
		{name: "migrated from key.json", giveKey: testKeyJSON, wantID: testKeyID},
		{name: "key.json without kid", giveKey: strings.Replace(testKeyJSON, `"kid":"`+testKeyID+`",`, "", 1), wantID: testKeyID},
		{name: "key.json with a wrong kid", giveKey: strings.Replace(testKeyJSON, "TLJS", "AAAA", 1), wantErr: "does not match the key"},
		{name: "malformed key.json", giveKey: "{", wantErr: "migrate engine ID from "},
		{name: "unsupported key type", giveKey: `{"kty":"oct"}`, wantErr: `unsupported key type "oct"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, conf := t.TempDir(), t.TempDir()
			keyPath := filepath.Join(conf, "key.json")
			if tt.giveKey != "" {
				os.WriteFile(keyPath, []byte(tt.giveKey), 0o600)
			}
			if tt.giveIDFile != "" {
				os.WriteFile(filepath.Join(root, "engine-id"), []byte(tt.giveIDFile), 0o600)
			}
			got, err := LoadEngineID(root, keyPath, zap.NewNop())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(filepath.Join(root, "engine-id")); !os.IsNotExist(err) {
					t.Errorf("engine-id written despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantID == "" {
				u, err := uuid.Parse(got.ID)
				if err != nil || u.Version() != 4 {
					t.Fatalf("new engine ID %q is not a UUID v4 (%v)", got.ID, err)
				}
			} else if got.ID != tt.wantID {
				t.Fatalf("engine ID %q, want %q", got.ID, tt.wantID)
			}
			if mode, _, _ := owner(t, filepath.Join(root, "engine-id")); mode != 0o600 {
				t.Errorf("engine-id mode %v, want 0600", mode)
			}
			// A second boot reads the same ID, and key.json no longer
			// matters.
			os.WriteFile(keyPath, []byte("{"), 0o600)
			again, err := LoadEngineID(root, keyPath, zap.NewNop())
			if err != nil || again != got {
				t.Fatalf("second boot: %q, %v; want %q", again.ID, err, got.ID)
			}
			if left, _ := filepath.Glob(filepath.Join(root, ".engine-id-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}
