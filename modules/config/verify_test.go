package config

import "testing"

func TestVerify(t *testing.T) {
	base := func() *Config { return &Config{ICC: true, IPTables: true} }
	tests := []struct {
		name    string
		give    func(c *Config)
		wantErr string
	}{
		{name: "defaults", give: func(*Config) {}},
		{name: "bridge alone", give: func(c *Config) { c.Bridge = "br0" }},
		{name: "bip alone", give: func(c *Config) { c.BIP = "192.0.2.1/24" }},
		{
			name:    "bridge and bip",
			give:    func(c *Config) { c.Bridge, c.BIP = "br0", "192.0.2.1/24" },
			wantErr: "You specified -b & --bip, mutually exclusive options. Please specify only one",
		},
		{name: "icc off with iptables", give: func(c *Config) { c.ICC = false }},
		{name: "iptables off with icc", give: func(c *Config) { c.IPTables = false }},
		{
			name:    "icc and iptables off",
			give:    func(c *Config) { c.ICC, c.IPTables = false, false },
			wantErr: "You specified --iptables=false with --icc=false. ICC=false uses iptables to function. Please set --icc or --iptables to true",
		},
		{
			name:    "unknown cgroup driver",
			give:    func(c *Config) { c.ExecOpts = []string{"native.cgroupdriver=cgroupv3"} },
			wantErr: "native.cgroupdriver option cgroupv3 not supported",
		},
		{
			name:    "cgroup driver none",
			give:    func(c *Config) { c.ExecOpts = []string{"native.cgroupdriver=none"} },
			wantErr: "native.cgroupdriver option none is internally used and cannot be specified manually",
		},
		{name: "cgroupfs with any parent", give: func(c *Config) { c.CgroupParent = "/mygroup" }},
		{
			name:    "systemd with a path parent",
			give:    func(c *Config) { c.ExecOpts, c.CgroupParent = []string{"native.cgroupdriver=systemd"}, "/mygroup" },
			wantErr: `cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"`,
		},
		{
			name:    "systemd with a bare .slice",
			give:    func(c *Config) { c.ExecOpts, c.CgroupParent = []string{"Native.CgroupDriver = systemd"}, ".slice" },
			wantErr: `cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"`,
		},
		{
			name: "systemd with a slice",
			give: func(c *Config) { c.ExecOpts, c.CgroupParent = []string{"native.cgroupdriver=systemd"}, "a.slice" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.give(c)
			_, err := Verify(c)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Verify error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
