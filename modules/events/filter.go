package events

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
)

// Filter selects events, built by ParseFilter. The zero Filter matches
// every event. A Filter may be used by several goroutines at once.
type Filter struct {
	clauses []clause
	images  *imageCache // stripped image names; nil without an image clause
}

// clause is one filter key with its values, all of which are
// alternatives.
type clause struct {
	key  string
	vals map[string]bool
	list []string // vals' keys, for prefix matching without map iteration
	// fuzzy: the event clause matches by prefix (health_status,
	// exec_create, exec_start carry a suffix).
	fuzzy bool
}

// nameKeys are the filter keys matched against the actor's ID or "name"
// attribute by prefix; each is also an event type.
var nameKeys = []events.Type{
	events.ConfigEventType,
	events.ContainerEventType,
	events.DaemonEventType,
	events.NetworkEventType,
	events.NodeEventType,
	events.PluginEventType,
	events.SecretEventType,
	events.ServiceEventType,
	events.VolumeEventType,
}

// validKey reports whether ParseFilter accepts key.
func validKey(key string) bool {
	switch key {
	case "type", "event", "image", "label", "scope":
		return true
	}
	return slices.Contains(nameKeys, events.Type(key))
}

// ParseFilter builds a Filter from the /events "filters" argument, key to
// values. Keys are config, container, daemon, event, image, label,
// network, node, plugin, scope, secret, service, type and volume; any
// other is an errdefs InvalidArgument error worded as dockerd's
// ("invalid filter 'x'"). Values under one key are alternatives; the keys
// must all match (see Match). A key with no values matches everything.
func ParseFilter(args map[string][]string) (Filter, error) {
	var f Filter
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if !validKey(k) {
			return Filter{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter '%s'", k))
		}
		if len(args[k]) == 0 {
			continue
		}
		c := clause{key: k, vals: make(map[string]bool, len(args[k]))}
		for _, v := range args[k] {
			if !c.vals[v] {
				c.vals[v] = true
				c.list = append(c.list, v)
			}
		}
		if k == "event" {
			c.fuzzy = c.vals[string(events.ActionHealthStatus)] || c.vals[string(events.ActionExecCreate)] || c.vals[string(events.ActionExecStart)]
		}
		if k == "image" {
			f.images = &imageCache{m: map[string]string{}}
		}
		f.clauses = append(f.clauses, c)
	}
	return f, nil
}

// IsZero reports whether f matches every event.
func (f Filter) IsZero() bool { return len(f.clauses) == 0 }

// Match reports whether m passes the filter, with dockerd's rules:
//   - type, scope: the event's type or scope is one of the values;
//   - event: the action is one of the values, or, when a value is
//     health_status, exec_create or exec_start, starts with one (those
//     actions carry a suffix such as "exec_start: sh");
//   - container, daemon, network, volume, plugin, node, service, secret,
//     config: the actor's ID or its "name" attribute starts with one of
//     the values (so an ID prefix or a full name works, for any event
//     type);
//   - image: one of the values is the actor's ID, its image name (the
//     "name" attribute of image events, "image" of others), or either
//     without its tag ("busybox" matches "busybox:latest");
//   - label: the actor's attributes have every key (for "key") or every
//     key=value given.
func (f Filter) Match(m events.Message) bool {
	for _, c := range f.clauses {
		var ok bool
		switch c.key {
		case "type":
			ok = c.vals[string(m.Type)]
		case "scope":
			ok = c.vals[m.Scope]
		case "event":
			ok = c.vals[string(m.Action)] || (c.fuzzy && hasPrefix(c.list, string(m.Action)))
		case "image":
			ok = f.matchImage(c.vals, m)
		case "label":
			ok = matchLabels(c.list, m.Actor.Attributes)
		default: // a name key
			ok = hasPrefix(c.list, m.Actor.ID) || hasPrefix(c.list, m.Actor.Attributes["name"])
		}
		if !ok {
			return false
		}
	}
	return true
}

// hasPrefix reports whether s starts with one of the values.
func hasPrefix(list []string, s string) bool {
	for _, p := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (f Filter) matchImage(vals map[string]bool, m events.Message) bool {
	attr := "image"
	if m.Type == events.ImageEventType {
		attr = "name"
	}
	name := m.Actor.Attributes[attr]
	if vals[m.Actor.ID] || vals[name] || vals[f.images.strip(name)] {
		return true
	}
	// Only an image event's ID may be an image reference; other actors'
	// IDs (containers, volumes, …) are never stripped to anything else.
	return m.Type == events.ImageEventType && vals[f.images.strip(m.Actor.ID)]
}

func matchLabels(want []string, attrs map[string]string) bool {
	for _, kv := range want {
		k, v, hasValue := strings.Cut(kv, "=")
		got, ok := attrs[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// imageCache remembers stripTag's results: parsing a reference costs
// microseconds, and a subscriber sees the same few images again and
// again. It holds at most imageCacheSize names.
type imageCache struct {
	mu sync.Mutex
	m  map[string]string
}

const imageCacheSize = 512

func (c *imageCache) strip(image string) string {
	if image == "" {
		return ""
	}
	c.mu.Lock()
	s, ok := c.m[image]
	c.mu.Unlock()
	if ok {
		return s
	}
	s = stripTag(image)
	c.mu.Lock()
	if len(c.m) >= imageCacheSize {
		clear(c.m)
	}
	c.m[image] = s
	c.mu.Unlock()
	return s
}

// stripTag returns an image reference's familiar name without tag or
// digest ("docker.io/library/busybox:latest" → "busybox"); anything that
// is not a reference comes back unchanged.
func stripTag(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarName(ref)
}
