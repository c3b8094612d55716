package host

import (
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestDecideSELinux(t *testing.T) {
	tests := []struct {
		name        string
		giveWant    bool
		giveHostHas bool
		wantEnabled bool
		wantSkip    string
		wantWarning bool
	}{
		{name: "not asked", giveHostHas: true, wantSkip: "--selinux-enabled is not set"},
		{name: "asked, host has it", giveWant: true, giveHostHas: true, wantEnabled: true},
		{name: "asked, host lacks it", giveWant: true, wantSkip: "SELinux is not available on this host", wantWarning: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			got := decideSELinux(tt.giveWant, tt.giveHostHas, zap.New(core))
			if got.Enabled != tt.wantEnabled || got.SkipReason() != tt.wantSkip {
				t.Errorf("got %+v (skip %q), want enabled %v skip %q", got, got.SkipReason(), tt.wantEnabled, tt.wantSkip)
			}
			if warned := logs.FilterMessage("wharfd could not enable SELinux on the host system").Len() == 1; warned != tt.wantWarning {
				t.Errorf("warning logged: %v, want %v", warned, tt.wantWarning)
			}
		})
	}
}

func TestSecurityOptions(t *testing.T) {
	tests := []struct {
		name string
		give [3]bool // apparmor, selinux, userns
		want []string
	}{
		{name: "none"},
		{name: "all", give: [3]bool{true, true, true}, want: []string{"name=apparmor", "name=selinux", "name=userns"}},
		{name: "userns only", give: [3]bool{false, false, true}, want: []string{"name=userns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var aa AppArmor
			if tt.give[0] {
				aa.Profile = DefaultAppArmorProfile
			}
			se := SELinux{Enabled: tt.give[1]}
			var id Identity
			if tt.give[2] {
				id.UIDMaps = []IDMap{{0, 1, 1}}
			}
			if got := SecurityOptions(aa, se, id); !slices.Equal(got, tt.want) {
				t.Errorf("SecurityOptions = %v, want %v", got, tt.want)
			}
		})
	}
}
