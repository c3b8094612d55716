package network

import (
	"testing"

	"github.com/wharfd/wharfd/modules/config"
)

func TestNewBridgeMode(t *testing.T) {
	tests := []struct {
		name       string
		giveBridge string
		want       BridgeMode
	}{
		{name: "default", giveBridge: "", want: BridgeMode{Name: "docker0"}},
		{name: "named", giveBridge: "br-test", want: BridgeMode{Name: "br-test"}},
		{name: "none", giveBridge: "none", want: BridgeMode{Disabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewBridgeMode(&config.Config{Bridge: tt.giveBridge}); got != tt.want {
				t.Errorf("NewBridgeMode(%q) = %+v, want %+v", tt.giveBridge, got, tt.want)
			}
		})
	}
}
