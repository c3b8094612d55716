package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name     string
		giveName string
		want     string
		wantErr  bool
	}{
		{name: "plain", giveName: "web", want: "/web"},
		{name: "slash", giveName: "/web.1_a-b", want: "/web.1_a-b"},
		{name: "one character", giveName: "a", wantErr: true},
		{name: "leading dash", giveName: "-x", wantErr: true},
		{name: "space", giveName: "a b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkName(tt.giveName)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("checkName(%q) = %q, %v", tt.giveName, got, err)
			}
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Errorf("error %v is not InvalidArgument", err)
			}
		})
	}
}

func TestNewIDAndRandomName(t *testing.T) {
	for range 100 {
		id := newID()
		if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("newID() = %q", id)
		}
		if !validName.MatchString(randomName(1)) {
			t.Fatalf("random name %q is not a valid name", randomName(1))
		}
	}
}

func TestParseDetachKeys(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []byte
		wantErr bool
	}{
		{name: "default", give: "", want: []byte{16, 17}},
		{name: "letters", give: "ctrl-a,x", want: []byte{1, 'x'}},
		{name: "ctrl-@", give: "ctrl-@", want: []byte{0}},
		{name: "bad", give: "ctrl-1", wantErr: true},
		{name: "word", give: "abc", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDetachKeys(tt.give)
			if (err != nil) != tt.wantErr || !bytes.Equal(got, tt.want) {
				t.Errorf("ParseDetachKeys(%q) = %v, %v", tt.give, got, err)
			}
		})
	}
}

func TestCopyStdin(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantOut    string
		wantDetach bool
	}{
		{name: "plain", give: "hello", wantOut: "hello"},
		{name: "detach", give: "ab\x10\x11cd", wantOut: "ab", wantDetach: true},
		{name: "broken sequence passed on", give: "a\x10b\x10\x11", wantOut: "a\x10b", wantDetach: true},
		{name: "sequence restarted", give: "\x10\x10\x11", wantOut: "\x10", wantDetach: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := copyStdin(&out, strings.NewReader(tt.give), []byte{16, 17})
			if errors.Is(err, ErrDetached) != tt.wantDetach || out.String() != tt.wantOut {
				t.Errorf("copyStdin(%q): %q, %v", tt.give, out.String(), err)
			}
		})
	}
}

func TestShouldRestart(t *testing.T) {
	policy := func(name string, n int) containerRestartPolicy {
		return containerRestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: n}
	}
	tests := []struct {
		name         string
		givePolicy   containerRestartPolicy
		giveExit     int
		giveManual   bool
		giveRestarts int
		giveBoot     bool
		want         bool
	}{
		{name: "no", givePolicy: policy("no", 0), giveExit: 1},
		{name: "always", givePolicy: policy("always", 0), want: true},
		{name: "always stopped by hand", givePolicy: policy("always", 0), giveManual: true},
		{name: "always stopped by hand at boot", givePolicy: policy("always", 0), giveManual: true, giveBoot: true, want: true},
		{name: "unless-stopped at boot", givePolicy: policy("unless-stopped", 0), giveBoot: true, want: true},
		{name: "unless-stopped stopped by hand at boot", givePolicy: policy("unless-stopped", 0), giveManual: true, giveBoot: true},
		{name: "on-failure success", givePolicy: policy("on-failure", 0)},
		{name: "on-failure failure", givePolicy: policy("on-failure", 0), giveExit: 2, want: true},
		{name: "on-failure retries left", givePolicy: policy("on-failure", 3), giveExit: 2, giveRestarts: 2, want: true},
		{name: "on-failure retries spent", givePolicy: policy("on-failure", 3), giveExit: 2, giveRestarts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shouldRestart(tt.givePolicy, tt.giveExit, tt.giveManual, tt.giveRestarts, tt.giveBoot); got != tt.want {
				t.Errorf("shouldRestart = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJSONLogRotationAndRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	opts, err := parseLogConfig(LogDriverJSONFile, map[string]string{"max-size": "200", "max-file": "3"})
	if err != nil {
		t.Fatal(err)
	}
	l := newJSONLog(path, opts)
	if err := l.open(); err != nil {
		t.Fatal(err)
	}
	out := &streamWriter{l: l, stream: "stdout"}
	errW := &streamWriter{l: l, stream: "stderr"}
	for i := range 20 {
		w := out
		if i%2 == 1 {
			w = errW
		}
		if _, err := w.Write([]byte("line " + strings.Repeat("x", i) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = out.Write([]byte("partial"))
	out.flush()
	l.close()
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 {
		t.Errorf("log files %v, want the current one and 2 rotated", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() > 200 {
			t.Errorf("%s: %v bytes, want at most max-size", f, st.Size())
		}
	}
	var got []LogMessage
	err = l.read(context.Background(), LogsOptions{Stdout: true, Tail: 2}, func(m LogMessage) error {
		got = append(got, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Log != "line "+strings.Repeat("x", 18)+"\n" || got[1].Log != "partial" || got[1].Stream != "stdout" {
		t.Errorf("tail 2 of stdout: %+v", got)
	}
	if time.Since(got[1].Time) > time.Minute {
		t.Errorf("message time %v", got[1].Time)
	}
}

func TestParseLogConfig(t *testing.T) {
	tests := []struct {
		name    string
		giveTyp string
		giveCfg map[string]string
		wantErr string
	}{
		{name: "defaults"},
		{name: "size and files", giveCfg: map[string]string{"max-size": "10m", "max-file": "3"}},
		{name: "files without size", giveCfg: map[string]string{"max-file": "3"}, wantErr: "max-file cannot be set when max-size is not set"},
		{name: "unknown option", giveCfg: map[string]string{"nope": "1"}, wantErr: "unknown log opt 'nope' for json-file log driver"},
		{name: "other driver", giveTyp: "syslog", wantErr: "logger: no log driver named 'syslog' is registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseLogConfig(tt.giveTyp, tt.giveCfg)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("parseLogConfig: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParsePS(t *testing.T) {
	out := []byte("UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sh -c sleep 1\nroot 11 10 0 10:00 ? 00:00:00 other\n")
	got, err := parsePS(out, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Processes) != 1 || got.Processes[0][1] != "10" || got.Processes[0][7] != "sh -c sleep 1" {
		t.Errorf("parsePS: %+v", got)
	}
	if _, err := parsePS([]byte("UID CMD\nroot x\n"), nil); err == nil {
		t.Error("ps output without PID accepted")
	}
}

func TestResolvConf(t *testing.T) {
	host := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(host, []byte("nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{o: Options{ResolvConf: host}}
	tests := []struct {
		name string
		give container.HostConfig
		want string
	}{
		{name: "loopback dropped", give: container.HostConfig{NetworkMode: NetworkNone}, want: "nameserver 10.0.0.2\nsearch example.com\noptions edns0\n"},
		{name: "host keeps all", give: container.HostConfig{NetworkMode: NetworkHost}, want: "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions edns0\n"},
		{name: "dns search replaced", give: container.HostConfig{NetworkMode: NetworkBridge, DNSSearch: []string{"a.test"}}, want: "nameserver 10.0.0.2\nsearch a.test\noptions edns0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.resolvConf(&tt.give)
			if err != nil || got != tt.want {
				t.Errorf("resolvConf = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestWriteJSONAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	if err := writeJSONAtomic(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := writeJSONAtomic(p, map[string]int{"a": 2}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != `{"a":2}` {
		t.Errorf("file %q, %v", b, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := writeJSONAtomic(filepath.Join(p, "sub", "y.json"), 1); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestParseSignal(t *testing.T) {
	for give, want := range map[string]int{"9": 9, "KILL": 9, "sigterm": 15, "SIGHUP": 1} {
		if got, err := ParseSignal(give); err != nil || int(got) != want {
			t.Errorf("ParseSignal(%q) = %d, %v", give, got, err)
		}
	}
	for _, give := range []string{"0", "NOPE", "99"} {
		if _, err := ParseSignal(give); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseSignal(%q): %v, want InvalidArgument", give, err)
		}
	}
}
