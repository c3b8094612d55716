package network

import "github.com/wharfd/wharfd/modules/config"

// MTU is the default MTU of container interfaces on the default bridge,
// in bytes.
type MTU int

// DefaultMTU is the MTU used when --mtu is 0 or not given.
const DefaultMTU MTU = config.DefaultMTU

// NewMTU is stage 3.1 mtu: the configured --mtu ("mtu"), or 1500 when it
// is 0 or unset, as dockerd. The configuration refuses a negative MTU.
func NewMTU(c *config.Config) MTU {
	if c.MTU <= 0 {
		return DefaultMTU
	}
	return MTU(c.MTU)
}
