package events

import (
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
)

func TestParseFilterUnknownKey(t *testing.T) {
	_, err := ParseFilter(map[string][]string{"type": {"container"}, "colour": {"red"}})
	if err == nil || err.Error() != "invalid filter 'colour'" || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err = %v, want InvalidArgument \"invalid filter 'colour'\"", err)
	}
}

func TestFilterMatch(t *testing.T) {
	container := events.Message{Type: events.ContainerEventType, Action: events.ActionStart, Scope: "local",
		Actor: events.Actor{ID: "4d1e0c5a7b9f", Attributes: map[string]string{"name": "web", "image": "docker.io/library/busybox:latest", "tier": "front"}}}
	image := events.Message{Type: events.ImageEventType, Action: events.ActionPull, Scope: "local",
		Actor: events.Actor{ID: "sha256:0123abcd", Attributes: map[string]string{"name": "busybox:1.36"}}}
	volume := events.Message{Type: events.VolumeEventType, Action: events.ActionCreate, Scope: "local",
		Actor: events.Actor{ID: "data", Attributes: map[string]string{"driver": "local"}}}
	exec := events.Message{Type: events.ContainerEventType, Action: "exec_start: sh -c true", Scope: "local",
		Actor: events.Actor{ID: "4d1e0c5a7b9f", Attributes: map[string]string{"name": "web"}}}
	daemon := events.Message{Type: events.DaemonEventType, Action: events.ActionReload, Scope: "local",
		Actor: events.Actor{ID: "TLJS:KDKS", Attributes: map[string]string{"name": "host1"}}}

	tests := []struct {
		name      string
		giveArgs  map[string][]string
		giveEvent events.Message
		want      bool
	}{
		{name: "no filter", giveEvent: container, want: true},
		{name: "empty values match", giveArgs: map[string][]string{"type": {}}, giveEvent: container, want: true},
		{name: "type", giveArgs: map[string][]string{"type": {"container"}}, giveEvent: container, want: true},
		{name: "type alternatives", giveArgs: map[string][]string{"type": {"image", "volume"}}, giveEvent: volume, want: true},
		{name: "other type", giveArgs: map[string][]string{"type": {"image"}}, giveEvent: container},
		{name: "event", giveArgs: map[string][]string{"event": {"start"}}, giveEvent: container, want: true},
		{name: "other event", giveArgs: map[string][]string{"event": {"stop"}}, giveEvent: container},
		{name: "event prefix is not enough", giveArgs: map[string][]string{"event": {"sta"}}, giveEvent: container},
		{name: "exec_start matches its suffixed action", giveArgs: map[string][]string{"event": {"exec_start"}}, giveEvent: exec, want: true},
		{name: "container by id", giveArgs: map[string][]string{"container": {"4d1e0c5a7b9f"}}, giveEvent: container, want: true},
		{name: "container by id prefix", giveArgs: map[string][]string{"container": {"4d1e"}}, giveEvent: container, want: true},
		{name: "container by name", giveArgs: map[string][]string{"container": {"web"}}, giveEvent: container, want: true},
		{name: "other container", giveArgs: map[string][]string{"container": {"db"}}, giveEvent: container},
		{name: "container filter drops volumes", giveArgs: map[string][]string{"container": {"web"}}, giveEvent: volume},
		{name: "volume by name", giveArgs: map[string][]string{"volume": {"data"}}, giveEvent: volume, want: true},
		{name: "network filter drops containers", giveArgs: map[string][]string{"network": {"bridge"}}, giveEvent: container},
		{name: "daemon by engine id", giveArgs: map[string][]string{"daemon": {"TLJS:KDKS"}}, giveEvent: daemon, want: true},
		{name: "daemon by host name", giveArgs: map[string][]string{"daemon": {"host1"}}, giveEvent: daemon, want: true},
		{name: "image of a container, familiar name", giveArgs: map[string][]string{"image": {"busybox"}}, giveEvent: container, want: true},
		{name: "image of a container, full reference", giveArgs: map[string][]string{"image": {"docker.io/library/busybox:latest"}}, giveEvent: container, want: true},
		{name: "image event by name without tag", giveArgs: map[string][]string{"image": {"busybox"}}, giveEvent: image, want: true},
		{name: "image event by id", giveArgs: map[string][]string{"image": {"sha256:0123abcd"}}, giveEvent: image, want: true},
		{name: "image id prefix is not enough", giveArgs: map[string][]string{"image": {"sha256:0123"}}, giveEvent: image},
		{name: "other image", giveArgs: map[string][]string{"image": {"alpine"}}, giveEvent: container},
		{name: "label key", giveArgs: map[string][]string{"label": {"tier"}}, giveEvent: container, want: true},
		{name: "label key=value", giveArgs: map[string][]string{"label": {"tier=front"}}, giveEvent: container, want: true},
		{name: "label other value", giveArgs: map[string][]string{"label": {"tier=back"}}, giveEvent: container},
		{name: "labels all required", giveArgs: map[string][]string{"label": {"tier", "owner"}}, giveEvent: container},
		{name: "scope", giveArgs: map[string][]string{"scope": {"local"}}, giveEvent: container, want: true},
		{name: "swarm scope", giveArgs: map[string][]string{"scope": {"swarm"}}, giveEvent: container},
		{name: "keys combine", giveArgs: map[string][]string{"type": {"container"}, "event": {"start"}, "container": {"web"}}, giveEvent: container, want: true},
		{name: "one key fails", giveArgs: map[string][]string{"type": {"container"}, "event": {"die"}}, giveEvent: container},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter(tt.giveArgs)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(tt.giveEvent); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}
