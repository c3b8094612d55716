package system

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	eventtypes "github.com/moby/moby/api/types/events"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/events"
)

// Events is the event bus as GET /events consumes it; *events.Bus
// (stage 3.18) implements it.
type Events interface {
	// Subscribe returns the recorded events between since and until that
	// match filter, and a channel of the matching events from now on,
	// closed by cancel or when the bus drops the subscriber.
	Subscribe(since, until time.Time, filter events.Filter) (past []eventtypes.Message, live <-chan eventtypes.Message, cancel func())
}

var _ Events = (*events.Bus)(nil)

// legacyEvent is an event as API < 1.52 sends it: the fields deprecated
// in API 1.22 (status, id, from) that the docker CLI read until v25 and
// that dockerd still fills for container and image events.
type legacyEvent struct {
	eventtypes.Message
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
}

// getEvents answers GET /events as dockerd: the recorded events from since
// (and up to until), then the live ones; the stream ends at until, when
// the client goes away, or when the server shuts down. since and until
// are Unix times, "seconds[.nanoseconds]"; filters is the JSON filter
// argument (type, event, container, image, label, …).
func (s *Router) getEvents(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(r); err != nil {
		return err
	}
	since, err := eventTime("since", r.Form.Get("since"))
	if err != nil {
		return err
	}
	until, err := eventTime("until", r.Form.Get("until"))
	if err != nil {
		return err
	}
	var (
		timeout  <-chan time.Time
		pastOnly bool
	)
	if !until.IsZero() {
		if until.Before(since) {
			return invalidParam(fmt.Errorf("`since` time (%s) cannot be after `until` time (%s)", r.Form.Get("since"), r.Form.Get("until")))
		}
		now := time.Now()
		pastOnly = until.Before(now)
		if !pastOnly {
			t := time.NewTimer(until.Sub(now))
			defer t.Stop()
			timeout = t.C
		}
	}
	args, err := apiserver.Filters(r)
	if err != nil {
		return err
	}
	filter, err := events.ParseFilter(args)
	if err != nil {
		return err
	}

	var (
		past []eventtypes.Message
		live <-chan eventtypes.Message
	)
	if s.events != nil {
		var cancel func()
		past, live, cancel = s.events.Subscribe(since, until, filter)
		defer cancel()
	}
	s.listeners.Add(1)
	defer s.listeners.Add(-1)

	legacy := apiserver.VersionLess(apiserver.APIVersion(ctx), "1.52")
	skipImageCreate := apiserver.VersionLess(apiserver.APIVersion(ctx), "1.46")
	out := apiserver.NewJSONStream(w)
	if err := out.Start(); err != nil {
		return nil // the client is gone
	}
	send := func(m eventtypes.Message) error {
		if skipImageCreate && m.Type == eventtypes.ImageEventType && m.Action == eventtypes.ActionCreate {
			return nil // image create events came with API 1.46
		}
		if legacy {
			return out.Encode(backfill(m))
		}
		return out.Encode(m)
	}
	for _, m := range past {
		if err := send(m); err != nil {
			return nil
		}
	}
	if pastOnly {
		return nil
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return nil
			}
			if err := send(m); err != nil {
				return nil
			}
		case <-timeout:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// backfill adds the legacy fields to container and image events.
func backfill(m eventtypes.Message) any {
	switch m.Type {
	case eventtypes.ContainerEventType:
		return legacyEvent{Message: m, Status: string(m.Action), ID: m.Actor.ID, From: m.Actor.Attributes["image"]}
	case eventtypes.ImageEventType:
		return legacyEvent{Message: m, Status: string(m.Action), ID: m.Actor.ID}
	}
	return m
}

// eventTime parses a since/until value as dockerd's timestamp parser:
// "seconds" or "seconds.fraction" since the Unix epoch; "" is the zero
// time. A malformed value is InvalidArgument (400).
func eventTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	secs, frac, hasFrac := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, invalidParam(fmt.Errorf("invalid %s time %q: want seconds[.nanoseconds] since the Unix epoch", name, v))
	}
	var nsec int64
	if hasFrac && frac != "" {
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || n < 0 || len(frac) > 9 {
			return time.Time{}, invalidParam(fmt.Errorf("invalid %s time %q: want seconds[.nanoseconds] since the Unix epoch", name, v))
		}
		nsec = int64(float64(n) * math.Pow10(9-len(frac)))
	}
	return time.Unix(sec, nsec), nil
}
