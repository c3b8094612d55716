package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// record is a network as persisted in <root>/network/<id>.json.
type record struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Created    time.Time         `json:"created"`
	Subnet     netip.Prefix      `json:"subnet,omitzero"`
	IPRange    netip.Prefix      `json:"ip_range,omitzero"`
	Gateway    netip.Addr        `json:"gateway,omitzero"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	// IPAMConfigured records whether the subnet was asked for (it is
	// shown in inspect's IPAM.Config either way, as dockerd).
	IPAMConfigured bool `json:"ipam_configured,omitempty"`

	// Bridge driver state.
	Bridge     string `json:"bridge,omitempty"`
	MTU        int    `json:"mtu,omitempty"`
	ICC        bool   `json:"icc"`
	Masquerade bool   `json:"masquerade"`
	// OwnsBridge is true when wharfd created the link (and removes it).
	OwnsBridge bool `json:"owns_bridge,omitempty"`

	Endpoints map[string]*Endpoint `json:"endpoints,omitempty"`
}

// store keeps one JSON file per network under dir, written atomically
// (temporary file, fsync, rename, directory fsync) so a crash leaves the
// old or the new file, never a torn one.
type store struct {
	dir string
}

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("network store: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) path(id string) string { return filepath.Join(s.dir, id+".json") }

func (s *store) save(r *record) error { return s.write(r, true) }

// saveEndpoints writes r after a change of its endpoints only: replaced
// atomically (rename) but not fsynced. Endpoints live no longer than
// their containers' processes, which a reboot ends too, and the daemon
// releases every container endpoint it finds at boot; what matters is
// that the file is never torn, and the rename sees to that. It saves
// two fsyncs (about 10 ms each here) per container start and stop.
func (s *store) saveEndpoints(r *record) error { return s.write(r, false) }

func (s *store) write(r *record, durable bool) error {
	b, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return fmt.Errorf("save network %s: %w", r.Name, err)
	}
	if err := writeFileAtomic(s.path(r.ID), b, durable); err != nil {
		return fmt.Errorf("save network %s: %w", r.Name, err)
	}
	return nil
}

func (s *store) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network file: %w", err)
	}
	return syncDir(s.dir)
}

// load reads every network file; an unreadable one is reported in bad
// (its path) and skipped rather than stopping the daemon.
func (s *store) load() (recs []*record, bad []string, err error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("network store: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			if strings.HasPrefix(name, ".tmp-") {
				os.Remove(filepath.Join(s.dir, name)) // a crash's leftover
			}
			continue
		}
		p := filepath.Join(s.dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			bad = append(bad, p)
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.ID+".json" != name || r.Name == "" {
			bad = append(bad, p)
			continue
		}
		recs = append(recs, &r)
	}
	return recs, bad, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced (when durable), renamed over path, then the
// directory synced (when durable).
func writeFileAtomic(path string, data []byte, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil && durable {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o600)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
