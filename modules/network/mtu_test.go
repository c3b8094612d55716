package network

import (
	"testing"

	"github.com/wharfd/wharfd/modules/config"
)

func TestNewMTU(t *testing.T) {
	tests := []struct {
		name    string
		giveMTU int
		wantMTU MTU
	}{
		{name: "unset", giveMTU: 0, wantMTU: 1500},
		{name: "jumbo", giveMTU: 9000, wantMTU: 9000},
		{name: "small", giveMTU: 1280, wantMTU: 1280},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewMTU(&config.Config{MTU: tt.giveMTU}); got != tt.wantMTU {
				t.Errorf("NewMTU(%d) = %d, want %d", tt.giveMTU, got, tt.wantMTU)
			}
		})
	}
}
