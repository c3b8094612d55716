package host

import (
	"errors"
	"testing"
)

func TestCheckRoot(t *testing.T) {
	tests := []struct {
		name    string
		giveUID int
		wantErr string
	}{
		{name: "root", giveUID: 0},
		{name: "user", giveUID: 1000, wantErr: "wharfd needs to be started with root privileges"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkRoot(tt.giveUID)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkRoot(%d) = %v, want nil", tt.giveUID, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrNotRoot) {
				t.Fatalf("checkRoot(%d) = %v, want %q", tt.giveUID, err, tt.wantErr)
			}
		})
	}
}
