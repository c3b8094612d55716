package network

import "github.com/wharfd/wharfd/modules/config"

// DefaultBridgeName is the default bridge's interface when -b/--bridge is
// not given.
const DefaultBridgeName = "docker0"

// BridgeMode says whether the daemon sets up its default bridge network,
// and on which interface.
type BridgeMode struct {
	// Disabled is true with --bridge=none: containers get no default
	// bridge network, as in dockerd.
	Disabled bool
	// Name is the bridge interface: -b/--bridge, or docker0 (created by the
	// daemon) when not given; empty when Disabled.
	Name string
}

// NewBridgeMode is stage 3.3 bridge-mode: it reads -b/--bridge ("bridge").
func NewBridgeMode(c *config.Config) BridgeMode {
	switch {
	case c.BridgeDisabled():
		return BridgeMode{Disabled: true}
	case c.Bridge != "":
		return BridgeMode{Name: c.Bridge}
	default:
		return BridgeMode{Name: DefaultBridgeName}
	}
}
